//! Job leases on PostgreSQL, the same statements as `../sqlite/job_leases.rs`.
//! Several nodes asking at once cannot both win: the conditional upsert is
//! atomic by itself (a row lock on conflict, the condition re-checked on the
//! latest row), and every write transaction holds the writer lock anyway.

use super::PgTx;
use crate::db::job_leases::{JobLease, JobLeases};
use crate::db::DbError;

const TAKE: &str = "INSERT INTO job_leases (job, holder, taken_at, expires_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (job) DO UPDATE SET
         taken_at = CASE WHEN job_leases.holder = excluded.holder THEN job_leases.taken_at ELSE excluded.taken_at END,
         holder = excluded.holder,
         expires_at = excluded.expires_at
     WHERE job_leases.holder = excluded.holder OR job_leases.expires_at <= excluded.taken_at";

impl JobLeases for PgTx<'_> {
    fn take_job_lease(&self, job: &str, holder: &str, now: i64, expires_at: i64) -> Result<bool, DbError> {
        Ok(self.execute(TAKE, &[&job, &holder, &now, &expires_at])? == 1)
    }

    fn release_job_lease(&self, job: &str, holder: &str) -> Result<bool, DbError> {
        Ok(self.execute("DELETE FROM job_leases WHERE job = $1 AND holder = $2", &[&job, &holder])? == 1)
    }

    fn job_lease(&self, job: &str) -> Result<Option<JobLease>, DbError> {
        let row = self.query_opt("SELECT job, holder, taken_at, expires_at FROM job_leases WHERE job = $1", &[&job])?;
        row.map(|r| Ok(JobLease { job: r.try_get(0)?, holder: r.try_get(1)?, taken_at: r.try_get(2)?, expires_at: r.try_get(3)? }))
            .transpose()
    }
}
