use rusqlite::{params, params_from_iter};

use super::SqliteTx;
use crate::db::login_failures::{excess, LoginFailureRow, LoginFailures};
use crate::db::DbError;

fn count(v: i64) -> Result<u32, DbError> {
    u32::try_from(v).map_err(|_| DbError::Corrupt("login_failures.failures"))
}

impl LoginFailures for SqliteTx<'_> {
    fn login_failures(&self, keys: &[&str], since: i64) -> Result<Vec<LoginFailureRow>, DbError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let marks = (2..keys.len() + 2).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
        let sql = format!("SELECT key, failures, window_start FROM login_failures WHERE window_start > ?1 AND key IN ({marks})");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let values: Vec<rusqlite::types::Value> =
            std::iter::once(since.into()).chain(keys.iter().map(|k| rusqlite::types::Value::Text((*k).to_owned()))).collect();
        let rows = stmt.query_map(params_from_iter(values), |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))?;
        rows.map(|row| {
            let (key, failures, window_start) = row?;
            Ok(LoginFailureRow { key, failures: count(failures)?, window_start })
        })
        .collect()
    }

    fn record_login_failure(&self, keys: &[&str], now: i64, since: i64, max_rows: u64) -> Result<Vec<u32>, DbError> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO login_failures (key, failures, window_start) VALUES (?1, 1, ?2)
             ON CONFLICT (key) DO UPDATE SET
                 failures = CASE WHEN login_failures.window_start <= ?3 THEN 1 ELSE login_failures.failures + 1 END,
                 window_start = CASE WHEN login_failures.window_start <= ?3 THEN ?2 ELSE login_failures.window_start END
             RETURNING failures",
        )?;
        let mut counts = Vec::with_capacity(keys.len());
        for key in keys {
            counts.push(count(stmt.query_row(params![key, now, since], |r| r.get(0))?)?);
        }
        if counts.contains(&1) {
            self.conn.prepare_cached("DELETE FROM login_failures WHERE window_start <= ?1")?.execute(params![since])?;
            let rows: i64 = self.conn.prepare_cached("SELECT count(*) FROM login_failures")?.query_row([], |r| r.get(0))?;
            let drop = excess(u64::try_from(rows).unwrap_or(0), max_rows);
            if drop > 0 {
                self.conn
                    .prepare_cached(
                        "DELETE FROM login_failures WHERE key IN (SELECT key FROM login_failures ORDER BY window_start, key LIMIT ?1)",
                    )?
                    .execute(params![i64::try_from(drop).unwrap_or(i64::MAX)])?;
            }
        }
        Ok(counts)
    }

    fn clear_login_failures(&self, keys: &[&str], prefix: Option<&str>) -> Result<(), DbError> {
        let mut stmt = self.conn.prepare_cached("DELETE FROM login_failures WHERE key = ?1")?;
        for key in keys {
            stmt.execute(params![key])?;
        }
        if let Some(prefix) = prefix {
            // substr, not LIKE: names may hold `_`, which LIKE would take as a wildcard.
            self.conn.prepare_cached("DELETE FROM login_failures WHERE substr(key, 1, length(?1)) = ?1")?.execute(params![prefix])?;
        }
        Ok(())
    }
}
