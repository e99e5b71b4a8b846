//! The `wharf_db_*` series every engine records for its job queues: how long
//! a job waited for a connection thread, how long it ran, and how many wait.

use std::time::Instant;

/// Runs `job`, recording its wait since `queued` and its run time.
pub(crate) fn timed<T>(engine: &'static str, queue: &'static str, queued: Instant, job: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    metrics::histogram!("wharf_db_queue_wait_seconds", "engine" => engine, "queue" => queue).record((started - queued).as_secs_f64());
    let out = job();
    metrics::histogram!("wharf_db_job_duration_seconds", "engine" => engine, "queue" => queue).record(started.elapsed().as_secs_f64());
    out
}

/// Records how many jobs wait in a queue of `size` slots with `free` left.
pub(crate) fn record_depth(engine: &'static str, queue: &'static str, size: usize, free: usize) {
    metrics::gauge!("wharf_db_queue_depth", "engine" => engine, "queue" => queue).set(size.saturating_sub(free) as f64);
}
