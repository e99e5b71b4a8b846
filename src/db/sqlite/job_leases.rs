use rusqlite::{params, OptionalExtension};

use super::SqliteTx;
use crate::db::job_leases::{JobLease, JobLeases};
use crate::db::DbError;

/// Inserts a free lease; otherwise changes the row only where the lease
/// expired or is the holder's own, so "changed one row" means "held".
const TAKE: &str = "INSERT INTO job_leases (job, holder, taken_at, expires_at) VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (job) DO UPDATE SET
         taken_at = CASE WHEN job_leases.holder = excluded.holder THEN job_leases.taken_at ELSE excluded.taken_at END,
         holder = excluded.holder,
         expires_at = excluded.expires_at
     WHERE job_leases.holder = excluded.holder OR job_leases.expires_at <= excluded.taken_at";

impl JobLeases for SqliteTx<'_> {
    fn take_job_lease(&self, job: &str, holder: &str, now: i64, expires_at: i64) -> Result<bool, DbError> {
        Ok(self.conn.prepare_cached(TAKE)?.execute(params![job, holder, now, expires_at])? == 1)
    }

    fn release_job_lease(&self, job: &str, holder: &str) -> Result<bool, DbError> {
        Ok(self.conn.prepare_cached("DELETE FROM job_leases WHERE job = ?1 AND holder = ?2")?.execute([job, holder])? == 1)
    }

    fn job_lease(&self, job: &str) -> Result<Option<JobLease>, DbError> {
        Ok(self
            .conn
            .prepare_cached("SELECT job, holder, taken_at, expires_at FROM job_leases WHERE job = ?1")?
            .query_row([job], |r| Ok(JobLease { job: r.get(0)?, holder: r.get(1)?, taken_at: r.get(2)?, expires_at: r.get(3)? }))
            .optional()?)
    }
}
