//! `job_leases` table: a scheduled job (GC, retention, backup, webhook
//! delivery) runs on one node at a time, the one holding its lease.

use super::DbError;

/// Who holds a job's lease, and until when (ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLease {
    pub job: String,
    pub holder: String,
    /// When `holder` took it; a renewal keeps it.
    pub taken_at: i64,
    pub expires_at: i64,
}

/// The leases' queries. Taking is one conditional upsert, so it is atomic on
/// its own; it also runs inside a write transaction, which SQLite's single
/// writer and PostgreSQL's writer lock serialize: of many nodes asking at
/// once, exactly one gets a free lease.
pub trait JobLeases {
    /// Takes `job`'s lease for `holder` until `expires_at` if it is free,
    /// expired at `now`, or already `holder`'s (a renewal); whether
    /// `holder` now holds it.
    fn take_job_lease(&self, job: &str, holder: &str, now: i64, expires_at: i64) -> Result<bool, DbError>;
    /// Gives `job`'s lease up if `holder` holds it; whether it did.
    fn release_job_lease(&self, job: &str, holder: &str) -> Result<bool, DbError>;
    /// The lease row of `job`, expired or not.
    fn job_lease(&self, job: &str) -> Result<Option<JobLease>, DbError>;
}
