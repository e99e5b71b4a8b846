//! Latency and failures of object store operations, by backend and
//! operation (see the series list in `observability::series`).

use std::future::Future;
use std::time::Instant;

use super::{StorageError, WriteError};

/// Whether an error is the store's fault (counted as a failed operation):
/// a missing object or a client's body that broke off is not.
pub(super) trait StoreFault {
    fn is_store_fault(&self) -> bool;
}

impl StoreFault for StorageError {
    fn is_store_fault(&self) -> bool {
        !matches!(self, StorageError::NotFound(_))
    }
}

impl StoreFault for WriteError {
    fn is_store_fault(&self) -> bool {
        matches!(self, WriteError::Storage(e) if e.is_store_fault())
    }
}

/// Runs one operation, recording its duration and whether the store failed it.
pub(super) async fn timed<T, E: StoreFault>(
    backend: &'static str,
    op: &'static str,
    operation: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let started = Instant::now();
    let result = operation.await;
    metrics::histogram!("wharf_storage_operation_duration_seconds", "backend" => backend, "op" => op)
        .record(started.elapsed().as_secs_f64());
    if result.as_ref().err().is_some_and(StoreFault::is_store_fault) {
        metrics::counter!("wharf_storage_operation_errors_total", "backend" => backend, "op" => op).increment(1);
    }
    result
}
