use super::PgTx;
use crate::db::login_failures::{excess, LoginFailureRow, LoginFailures};
use crate::db::DbError;

fn count(v: i64) -> Result<u32, DbError> {
    u32::try_from(v).map_err(|_| DbError::Corrupt("login_failures.failures"))
}

impl LoginFailures for PgTx<'_> {
    fn login_failures(&self, keys: &[&str], since: i64) -> Result<Vec<LoginFailureRow>, DbError> {
        let keys: Vec<&str> = keys.to_vec();
        let rows = self
            .query("SELECT key, failures, window_start FROM login_failures WHERE window_start > $1 AND key = ANY($2)", &[&since, &keys])?;
        rows.iter()
            .map(|r| Ok(LoginFailureRow { key: r.try_get(0)?, failures: count(r.try_get(1)?)?, window_start: r.try_get(2)? }))
            .collect()
    }

    fn record_login_failure(&self, keys: &[&str], now: i64, since: i64, max_rows: u64) -> Result<Vec<u32>, DbError> {
        let mut counts = Vec::with_capacity(keys.len());
        for key in keys {
            let row = self.query_one(
                "INSERT INTO login_failures (key, failures, window_start) VALUES ($1, 1, $2)
                 ON CONFLICT (key) DO UPDATE SET
                     failures = CASE WHEN login_failures.window_start <= $3 THEN 1 ELSE login_failures.failures + 1 END,
                     window_start = CASE WHEN login_failures.window_start <= $3 THEN $2 ELSE login_failures.window_start END
                 RETURNING failures",
                &[key, &now, &since],
            )?;
            counts.push(count(row.try_get(0)?)?);
        }
        if counts.contains(&1) {
            self.execute("DELETE FROM login_failures WHERE window_start <= $1", &[&since])?;
            let rows: i64 = self.query_one("SELECT count(*) FROM login_failures", &[])?.try_get(0)?;
            let drop = excess(u64::try_from(rows).unwrap_or(0), max_rows);
            if drop > 0 {
                self.execute(
                    "DELETE FROM login_failures WHERE key IN (SELECT key FROM login_failures ORDER BY window_start, key LIMIT $1)",
                    &[&i64::try_from(drop).unwrap_or(i64::MAX)],
                )?;
            }
        }
        Ok(counts)
    }

    fn clear_login_failures(&self, keys: &[&str], prefix: Option<&str>) -> Result<(), DbError> {
        let keys: Vec<&str> = keys.to_vec();
        self.execute("DELETE FROM login_failures WHERE key = ANY($1)", &[&keys])?;
        if let Some(prefix) = prefix {
            self.execute("DELETE FROM login_failures WHERE starts_with(key, $1)", &[&prefix])?;
        }
        Ok(())
    }
}
