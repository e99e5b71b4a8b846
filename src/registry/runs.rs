//! Maintenance runs across nodes: the lease a scheduled job holds while it
//! runs (one node at a time per job), and the audit row of each GC and
//! retention run naming the node that ran it (`holder`), what started it,
//! when it started and finished, and what it deleted.

use std::time::Duration;

use serde_json::{json, Value};

use super::{record, Registry, RegistryError};
use crate::domain::{Actor, AuditAction, AuditEntry};

/// What started a GC or retention run, as its audit row says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunTrigger {
    /// A schedule of `wharf serve` (`gc.schedule`, `retention.schedule`).
    Schedule,
    /// `POST /api/v1/gc/runs` or `POST /api/v1/retention/runs`.
    Api,
    /// `wharf gc`, `wharf retention run`.
    Cli,
}

impl RunTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Api => "api",
            Self::Cli => "cli",
        }
    }
}

/// A job's lease as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseState {
    /// Nobody holds it, or the holder's lease expired.
    Free,
    /// This node holds it until the time given (Unix ms).
    Mine { expires_at: i64 },
    /// Another node holds it.
    Other { holder: String },
}

impl Registry {
    /// `node.id`: the holder of this process's leases.
    pub fn node_id(&self) -> &str {
        &self.maintenance.node_id
    }

    /// Takes (or renews) `job`'s lease for `ttl`: whether this node holds it now.
    pub async fn take_job_lease(&self, job: &'static str, ttl: Duration) -> Result<bool, RegistryError> {
        let holder = self.node_id().to_owned();
        let now = crate::domain::now_ms();
        let until = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        Ok(self.db.write(move |tx| tx.take_job_lease(job, &holder, now, until)).await?)
    }

    /// Gives `job`'s lease up if this node holds it.
    pub async fn release_job_lease(&self, job: &'static str) -> Result<bool, RegistryError> {
        let holder = self.node_id().to_owned();
        Ok(self.db.write(move |tx| tx.release_job_lease(job, &holder)).await?)
    }

    /// Who holds `job`'s lease, read without a write: a node that is not
    /// the holder skips its tick without queueing on the writer.
    pub async fn job_lease_state(&self, job: &'static str) -> Result<LeaseState, RegistryError> {
        let lease = self.db.read(move |tx| tx.job_lease(job)).await?;
        let now = crate::domain::now_ms();
        Ok(match lease {
            Some(l) if l.expires_at > now && l.holder == self.node_id() => LeaseState::Mine { expires_at: l.expires_at },
            Some(l) if l.expires_at > now => LeaseState::Other { holder: l.holder },
            _ => LeaseState::Free,
        })
    }

    /// Appends the audit row of a finished run (`gc.run`, `retention.run`):
    /// `counts` (what it deleted) with the holder, trigger and times.
    pub(super) async fn record_run(
        &self,
        actor: &Actor,
        action: AuditAction,
        trigger: RunTrigger,
        started_at: i64,
        counts: Value,
    ) -> Result<(), RegistryError> {
        let mut details = json!({
            "holder": self.node_id(),
            "trigger": trigger.as_str(),
            "started_at": started_at,
            "finished_at": crate::domain::now_ms(),
        });
        if let (Some(details), Value::Object(counts)) = (details.as_object_mut(), counts) {
            details.extend(counts);
        }
        let entry = AuditEntry::new(actor, action).details(details);
        self.db.write(move |tx| record(tx, &entry)).await
    }
}
