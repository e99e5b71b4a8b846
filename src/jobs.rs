//! Scheduled maintenance: retention, garbage collection and backups at the
//! intervals the configuration sets. At shutdown the schedules stop, a run under way
//! gets what is left of the shutdown deadline, and one still going after it
//! is dropped: a run cut short is finished by the next one (GC records its
//! deletions under way in `gc_pending`; retention works in transactions).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::Actor;
use crate::registry::Registry;

/// The running schedules.
pub struct Jobs {
    stop: CancellationToken,
    tasks: Vec<(&'static str, tokio::task::JoinHandle<()>)>,
}

pub fn start(registry: &Registry) -> Jobs {
    let mut jobs = Jobs { stop: CancellationToken::new(), tasks: Vec::new() };
    // Release diff summaries a stopped server left pending (image diff).
    registry.resume_release_diffs();
    let m = registry.maintenance();
    // The revoked-key gauge reflects this configuration's revocations from the start.
    let gauge = registry.clone();
    actix_web::rt::spawn(async move {
        if let Err(e) = gauge.refresh_revoked_gauge().await {
            tracing::warn!(error = %e, "could not count releases signed by revoked keys");
        }
    });
    if let Some(every) = m.retention.schedule {
        let registry = registry.clone();
        jobs.every_interval(every, "retention", move || {
            let registry = registry.clone();
            async move { registry.run_retention(&Actor::system(), false).await.map(drop) }
        });
    }
    if let (Some(every), Some(dest)) = (m.backup.schedule, &m.backup.destination) {
        // Validated with the configuration; a bad one never reaches here.
        if let Ok(dest) = crate::config::backup::Destination::parse(dest) {
            let registry = registry.clone();
            jobs.every_interval(every, "backup", move || {
                let (registry, dest) = (registry.clone(), dest.clone());
                async move { registry.create_backup(&dest).await.map(drop) }
            });
        }
    }
    // The gauge of the last successful backup, also after one that
    // `wharf backup create` ran in another process: read from the database
    // in the background, never at scrape time.
    {
        let registry = registry.clone();
        jobs.every_interval_from(Duration::ZERO, Duration::from_secs(60), "backup-gauge", move || {
            let registry = registry.clone();
            async move {
                if let Some(ms) = registry.last_backup_at().await? {
                    metrics::gauge!("wharf_backup_last_success_timestamp_seconds").set(ms as f64 / 1000.0);
                }
                Ok::<(), crate::registry::RegistryError>(())
            }
        });
    }
    // Durable events: deliveries resume from the database at every start.
    match crate::events::Dispatcher::new(registry.db().clone(), &m.events) {
        Ok(Some(dispatcher)) => {
            let every = dispatcher.poll_interval();
            jobs.every_interval_from(Duration::ZERO, every, "events", move || {
                let dispatcher = dispatcher.clone();
                async move { dispatcher.run().await }
            });
        }
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "webhook delivery cannot start"),
    }
    if let Some(every) = m.gc.schedule {
        let registry = registry.clone();
        jobs.every_interval(every, "gc", move || {
            let registry = registry.clone();
            async move { registry.run_gc(&Actor::system(), false).await.map(drop) }
        });
    }
    jobs
}

impl Jobs {
    fn every_interval<F, Fut, E>(&mut self, every: Duration, name: &'static str, job: F)
    where
        F: Fn() -> Fut + 'static,
        Fut: std::future::Future<Output = Result<(), E>> + 'static,
        E: std::fmt::Display,
    {
        tracing::info!(job = name, every = %humantime::format_duration(every), "scheduled");
        self.every_interval_from(every, every, name, job);
    }

    /// Runs `job` first after `first`, then every `every`.
    fn every_interval_from<F, Fut, E>(&mut self, first: Duration, every: Duration, name: &'static str, job: F)
    where
        F: Fn() -> Fut + 'static,
        Fut: std::future::Future<Output = Result<(), E>> + 'static,
        E: std::fmt::Display,
    {
        let stop = self.stop.clone();
        let task = actix_web::rt::spawn(async move {
            let mut wait = first;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = every;
                if let Err(e) = job().await {
                    tracing::error!(job = name, error = %e, "scheduled run failed; the next run retries");
                }
            }
        });
        self.tasks.push((name, task));
    }

    /// A handle that stops the schedules (no new run starts) when cancelled.
    pub fn stopper(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Stops the schedules and waits up to `deadline` for runs under way;
    /// drops those still running after it.
    pub async fn shut_down(self, deadline: Duration) {
        self.stop.cancel();
        let until = tokio::time::Instant::now() + deadline;
        for (name, mut task) in self.tasks {
            if tokio::time::timeout_at(until, &mut task).await.is_err() {
                task.abort();
                tracing::warn!(job = name, "scheduled run cut off by the shutdown deadline; the next run finishes its work");
            }
        }
    }
}
