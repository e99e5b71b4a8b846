use rusqlite::{params, OptionalExtension};

use super::SqliteTx;
use crate::db::{now_ms, DbError, LayerIndex};
use crate::domain::Digest;

impl LayerIndex for SqliteTx<'_> {
    fn layer_index(&self, digest: &Digest) -> Result<Option<Vec<u8>>, DbError> {
        let mut stmt = self.conn.prepare_cached("SELECT entries FROM layer_index WHERE digest = ?1")?;
        Ok(stmt.query_row([digest], |r| r.get(0)).optional()?)
    }

    fn insert_layer_index(&self, digest: &Digest, entry_count: u64, total_size: u64, entries: &[u8]) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT INTO layer_index (digest, entry_count, total_size, entries, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (digest) DO NOTHING",
            params![digest, entry_count, total_size, entries, now_ms()],
        )?;
        Ok(())
    }

    fn layer_index_count(&self) -> Result<u64, DbError> {
        Ok(self.conn.query_row("SELECT count(*) FROM layer_index", [], |r| r.get(0))?)
    }
}
