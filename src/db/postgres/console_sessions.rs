use super::PgTx;
use crate::db::console_sessions::{ConsoleSessionRow, ConsoleSessions};
use crate::db::DbError;

impl ConsoleSessions for PgTx<'_> {
    fn create_console_session(&self, id_hash: &str, row: &ConsoleSessionRow) -> Result<(), DbError> {
        self.execute(
            "INSERT INTO console_sessions (id_hash, account, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            &[&id_hash, &row.account, &row.csrf, &row.created_at, &row.expires_at],
        )?;
        Ok(())
    }

    fn console_session(&self, id_hash: &str, now: i64) -> Result<Option<ConsoleSessionRow>, DbError> {
        let row = self.query_opt(
            "SELECT account, csrf, created_at, expires_at FROM console_sessions WHERE id_hash = $1 AND expires_at > $2",
            &[&id_hash, &now],
        )?;
        row.map(|r| {
            Ok(ConsoleSessionRow { account: r.try_get(0)?, csrf: r.try_get(1)?, created_at: r.try_get(2)?, expires_at: r.try_get(3)? })
        })
        .transpose()
    }

    fn delete_console_session(&self, id_hash: &str, now: i64) -> Result<(), DbError> {
        self.execute("DELETE FROM console_sessions WHERE id_hash = $1 OR expires_at <= $2", &[&id_hash, &now])?;
        Ok(())
    }
}
