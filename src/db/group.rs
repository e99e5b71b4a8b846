//! Group commit, what both engines share: the writer thread takes every
//! write job already queued (up to [`GROUP_MAX`]) into one transaction, runs
//! each in a savepoint of its own (a failed or panicking one rolls back
//! alone, as if each had its own transaction) and commits once; no caller
//! hears of success before that commit is done. Many small pushes at once
//! then share one commit (one fsync, and on PostgreSQL one hand-off of the
//! cluster-wide writer lock) instead of paying one each; a lone write is
//! never held back waiting for company.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::queue_metrics::timed;
use super::sqlite::engine::panic_message;
use super::{DbError, Sync};

/// Write jobs committed together at most, so one commit's wait stays short.
const GROUP_MAX: usize = 64;

/// One write of a group; `C` is what the engine runs it on (a savepoint).
pub(crate) trait GroupedWrite<C: ?Sized>: Send {
    /// Runs the write on `conn`, keeping its outcome; whether it succeeded
    /// (else the engine rolls its savepoint back).
    fn run(&mut self, conn: &C) -> bool;
    /// Tells the caller: its own outcome if the group committed, else why not.
    fn finish(self: Box<Self>, committed: Result<(), &Arc<DbError>>);
    fn sync(&self) -> Sync;
}

/// A caller's write closure, its outcome once run, and where to send it.
pub(crate) struct Write<T, E, F> {
    work: Option<F>,
    outcome: Option<Result<T, E>>,
    done: oneshot::Sender<Result<T, E>>,
    queued: Instant,
    sync: Sync,
    engine: &'static str,
}

/// A write job for `engine`'s writer, and where its outcome arrives.
pub(crate) fn write<T, E, F>(engine: &'static str, sync: Sync, work: F) -> (Write<T, E, F>, oneshot::Receiver<Result<T, E>>) {
    let (done, outcome) = oneshot::channel();
    (Write { work: Some(work), outcome: None, done, queued: Instant::now(), sync, engine }, outcome)
}

impl<C, T, E, F> GroupedWrite<C> for Write<T, E, F>
where
    C: ?Sized,
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
    F: FnOnce(&C) -> Result<T, E> + Send + 'static,
{
    fn run(&mut self, conn: &C) -> bool {
        let Some(work) = self.work.take() else { return false };
        let outcome = timed(self.engine, "write", self.queued, || {
            catch_unwind(AssertUnwindSafe(|| work(conn))).unwrap_or_else(|p| Err(DbError::Panicked(panic_message(p)).into()))
        });
        let succeeded = outcome.is_ok();
        self.outcome = Some(outcome);
        succeeded
    }

    fn finish(self: Box<Self>, committed: Result<(), &Arc<DbError>>) {
        let outcome = match (committed, self.outcome) {
            (Ok(()), Some(outcome)) => outcome,
            // Its own error says more than the group's.
            (Err(_), Some(Err(own))) => Err(own),
            (Err(e), _) => Err(DbError::GroupCommit(e.clone()).into()),
            (Ok(()), None) => Err(DbError::Closed.into()),
        };
        // The caller may have gone (request cancelled); nothing to tell.
        let _ = self.done.send(outcome);
    }

    fn sync(&self) -> Sync {
        self.sync
    }
}

/// The next group for the writer: waits for one job, then takes those
/// already queued behind it. `None` once every sender is gone.
pub(crate) fn next_group<J>(queue: &mut mpsc::Receiver<J>) -> Option<Vec<J>> {
    let mut group = vec![queue.blocking_recv()?];
    while group.len() < GROUP_MAX {
        match queue.try_recv() {
            Ok(job) => group.push(job),
            Err(_) => break,
        }
    }
    Some(group)
}

/// What a group's commit must do, from its writes' own needs: sync unless
/// every write in it defers.
pub(crate) fn group_sync(engine: &'static str, mut writes: impl ExactSizeIterator<Item = Sync>) -> Sync {
    metrics::histogram!("wharf_db_writes_per_commit", "engine" => engine).record(writes.len() as f64);
    if writes.any(|sync| sync == Sync::Now) {
        Sync::Now
    } else {
        Sync::Deferred
    }
}
