use rusqlite::{params, OptionalExtension};

use super::SqliteTx;
use crate::db::console_sessions::{ConsoleSessionRow, ConsoleSessions};
use crate::db::DbError;

impl ConsoleSessions for SqliteTx<'_> {
    fn create_console_session(&self, id_hash: &str, row: &ConsoleSessionRow) -> Result<(), DbError> {
        self.conn
            .prepare_cached("INSERT INTO console_sessions (id_hash, account, csrf, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![id_hash, row.account, row.csrf, row.created_at, row.expires_at])?;
        Ok(())
    }

    fn console_session(&self, id_hash: &str, now: i64) -> Result<Option<ConsoleSessionRow>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT account, csrf, created_at, expires_at FROM console_sessions WHERE id_hash = ?1 AND expires_at > ?2")?;
        Ok(stmt
            .query_row(params![id_hash, now], |r| {
                Ok(ConsoleSessionRow { account: r.get(0)?, csrf: r.get(1)?, created_at: r.get(2)?, expires_at: r.get(3)? })
            })
            .optional()?)
    }

    fn delete_console_session(&self, id_hash: &str, now: i64) -> Result<(), DbError> {
        self.conn.prepare_cached("DELETE FROM console_sessions WHERE id_hash = ?1 OR expires_at <= ?2")?.execute(params![id_hash, now])?;
        Ok(())
    }
}
