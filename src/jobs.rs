//! Scheduled maintenance: retention, garbage collection and backups at the
//! intervals the configuration sets, and webhook delivery. At shutdown the
//! schedules stop, a run under way gets what is left of the shutdown
//! deadline, and one still going after it is dropped: a run cut short is
//! finished by the next one (GC records its deletions under way in
//! `gc_pending`; retention works in transactions).
//!
//! Several nodes on one database: GC, retention, backup and the webhook
//! dispatcher each run on one node at a time, the holder of the job's lease
//! (`job_leases`, named by `node.id`); a node that does not get it skips the
//! tick. The backup gauge and release-diff resumption stay per node (reads,
//! and work each node left itself).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::Actor;
use crate::registry::{LeaseState, Registry, RunTrigger};

/// How long a lease lasts unless renewed. Fixed rather than derived from a
/// schedule: it bounds how long a node that died mid-run keeps the job from
/// the others, and a run of any length keeps it by renewing (below).
const LEASE_TTL: Duration = Duration::from_secs(30);
/// A run renews its lease this often, well before it expires: two renewals
/// may fail (a database blip) before the lease is lost.
const LEASE_RENEW: Duration = Duration::from_secs(10);

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
        let lease = Lease::per_run(&registry, "retention");
        jobs.every_interval(every, "retention", Some(lease), move || {
            let registry = registry.clone();
            async move { registry.run_retention(&Actor::system(), RunTrigger::Schedule, false).await.map(drop) }
        });
    }
    if let (Some(every), Some(dest)) = (m.backup.schedule, &m.backup.destination) {
        // Validated with the configuration; a bad one never reaches here.
        if let Ok(dest) = crate::config::backup::Destination::parse(dest) {
            let registry = registry.clone();
            let lease = Lease::per_run(&registry, "backup");
            jobs.every_interval(every, "backup", Some(lease), move || {
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
        jobs.every_interval_from(Duration::ZERO, Duration::from_secs(60), "backup-gauge", None, move || {
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
            // Kept between polls (a poll is short and frequent): deliveries
            // stay on one node while it lives.
            let lease = Lease::kept(registry, "events");
            jobs.every_interval_from(Duration::ZERO, every, "events", Some(lease), move || {
                let dispatcher = dispatcher.clone();
                async move { dispatcher.run().await }
            });
        }
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "webhook delivery cannot start"),
    }
    if let Some(every) = m.gc.schedule {
        let registry = registry.clone();
        let lease = Lease::per_run(&registry, "gc");
        jobs.every_interval(every, "gc", Some(lease), move || {
            let registry = registry.clone();
            async move { registry.run_gc(&Actor::system(), RunTrigger::Schedule, false).await.map(drop) }
        });
    }
    jobs
}

/// The lease a scheduled job runs under.
struct Lease {
    registry: Registry,
    job: &'static str,
    /// Held from one tick to the next (released at shutdown) rather than
    /// given up after each run.
    keep: bool,
}

/// How one tick of a leased job went (`wharf_job_runs_total{outcome}`).
fn count(job: &'static str, outcome: &'static str) {
    metrics::counter!("wharf_job_runs_total", "job" => job, "outcome" => outcome).increment(1);
}

impl Lease {
    fn per_run(registry: &Registry, job: &'static str) -> Self {
        Self { registry: registry.clone(), job, keep: false }
    }

    fn kept(registry: &Registry, job: &'static str) -> Self {
        Self { registry: registry.clone(), job, keep: true }
    }

    /// Whether this node holds the lease for at least `LEASE_TTL -
    /// LEASE_RENEW` more: a read first, so a node that is not the holder
    /// skips without a write, then take-or-renew.
    async fn acquire(&self) -> Result<bool, crate::registry::RegistryError> {
        let fresh = LEASE_TTL.saturating_sub(LEASE_RENEW).as_millis() as i64;
        match self.registry.job_lease_state(self.job).await? {
            LeaseState::Other { holder } => {
                tracing::debug!(job = self.job, holder = %holder, "another node holds the job's lease");
                Ok(false)
            }
            LeaseState::Mine { expires_at } if expires_at - crate::domain::now_ms() > fresh => Ok(true),
            _ => self.registry.take_job_lease(self.job, LEASE_TTL).await,
        }
    }

    /// Runs `run` if this node gets the lease, renewing it while the run
    /// goes on; drops the run if the lease is lost (another node may then
    /// start the job: GC and retention are safe to cut off, see the module
    /// doc). A per-run lease is released after the run.
    async fn run<Fut, E>(&self, run: Fut)
    where
        Fut: std::future::Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let job = self.job;
        match self.acquire().await {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(job, "not the lease holder; tick skipped");
                return count(job, "skipped_not_holder");
            }
            Err(e) => {
                tracing::warn!(job, error = %e, "could not take the job's lease; tick skipped");
                return count(job, "lease_error");
            }
        }
        let mut held_until = tokio::time::Instant::now() + LEASE_TTL.saturating_sub(LEASE_RENEW);
        let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + LEASE_RENEW, LEASE_RENEW);
        let mut run = std::pin::pin!(run);
        let outcome = loop {
            tokio::select! {
                result = &mut run => break match result {
                    Ok(()) => "ok",
                    Err(e) => {
                        tracing::error!(job, error = %e, "scheduled run failed; the next run retries");
                        "error"
                    }
                },
                _ = renew.tick() => {
                    let asked = tokio::time::Instant::now();
                    match self.registry.take_job_lease(job, LEASE_TTL).await {
                        Ok(true) => held_until = asked + LEASE_TTL,
                        Ok(false) => {
                            tracing::warn!(job, "the job's lease went to another node; this run stopped");
                            break "lease_lost";
                        }
                        Err(e) if tokio::time::Instant::now() + LEASE_RENEW >= held_until => {
                            tracing::warn!(job, error = %e, "could not renew the job's lease before it expires; this run stopped");
                            break "lease_lost";
                        }
                        Err(e) => tracing::warn!(job, error = %e, "could not renew the job's lease; retrying"),
                    }
                }
            }
        };
        count(job, outcome);
        if !self.keep {
            self.release().await;
        }
    }

    async fn release(&self) {
        if let Err(e) = self.registry.release_job_lease(self.job).await {
            tracing::warn!(job = self.job, error = %e, "could not release the job's lease; it expires on its own");
        }
    }
}

impl Jobs {
    fn every_interval<F, Fut, E>(&mut self, every: Duration, name: &'static str, lease: Option<Lease>, job: F)
    where
        F: Fn() -> Fut + 'static,
        Fut: std::future::Future<Output = Result<(), E>> + 'static,
        E: std::fmt::Display,
    {
        tracing::info!(job = name, every = %humantime::format_duration(every), "scheduled");
        self.every_interval_from(every, every, name, lease, job);
    }

    /// Runs `job` first after `first`, then every `every`; under `lease`
    /// when given, on this node only while it holds it.
    fn every_interval_from<F, Fut, E>(&mut self, first: Duration, every: Duration, name: &'static str, lease: Option<Lease>, job: F)
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
                match &lease {
                    Some(lease) => lease.run(job()).await,
                    None => {
                        if let Err(e) = job().await {
                            tracing::error!(job = name, error = %e, "scheduled run failed; the next run retries");
                        }
                    }
                }
            }
            // A kept lease goes at shutdown, so another node takes over at once.
            if let Some(lease) = lease.filter(|l| l.keep) {
                lease.release().await;
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
