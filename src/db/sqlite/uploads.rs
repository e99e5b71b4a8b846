use rusqlite::{params, OptionalExtension};

use super::SqliteTx;
use crate::db::uploads::{Upload, UploadPart};
use crate::db::{now_ms, DbError, RepoId, Uploads};
use crate::domain::UploadId;

impl Uploads for SqliteTx<'_> {
    fn create_upload(&self, id: &UploadId, repo: RepoId, hasher_state: &[u8]) -> Result<(), DbError> {
        let now = now_ms();
        self.conn
            .prepare_cached(
                "INSERT INTO uploads (id, repository_id, size, hasher_state, created_at, updated_at) VALUES (?1, ?2, 0, ?3, ?4, ?4)",
            )?
            .execute(params![id, repo, hasher_state, now])?;
        Ok(())
    }

    fn upload(&self, id: &UploadId) -> Result<Option<Upload>, DbError> {
        Ok(self
            .conn
            .prepare_cached("SELECT id, repository_id, size, hasher_state, created_at FROM uploads WHERE id = ?1")?
            .query_row([id], |r| {
                Ok(Upload { id: r.get(0)?, repository: r.get(1)?, size: r.get(2)?, hasher_state: r.get(3)?, created_at: r.get(4)? })
            })
            .optional()?)
    }

    fn upload_parts(&self, id: &UploadId) -> Result<Vec<UploadPart>, DbError> {
        let mut stmt = self.conn.prepare_cached("SELECT object_key, size FROM upload_parts WHERE upload_id = ?1 ORDER BY seq")?;
        let rows = stmt.query_map([id], |r| Ok(UploadPart { object_key: r.get(0)?, size: r.get(1)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn append_upload_part(&self, id: &UploadId, expected_size: u64, part: &UploadPart, hasher_state: &[u8]) -> Result<bool, DbError> {
        let new_size = expected_size + part.size;
        let updated = self
            .conn
            .prepare_cached("UPDATE uploads SET size = ?1, hasher_state = ?2, updated_at = ?3 WHERE id = ?4 AND size = ?5")?
            .execute(params![new_size, hasher_state, now_ms(), id, expected_size])?;
        if updated == 0 {
            return Ok(false);
        }
        self.conn
            .prepare_cached(
                "INSERT INTO upload_parts (upload_id, seq, object_key, size)
             VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM upload_parts WHERE upload_id = ?1), ?2, ?3)",
            )?
            .execute(params![id, part.object_key, part.size])?;
        Ok(true)
    }

    fn delete_upload(&self, id: &UploadId) -> Result<bool, DbError> {
        Ok(self.conn.prepare_cached("DELETE FROM uploads WHERE id = ?1")?.execute([id])? > 0)
    }
}
