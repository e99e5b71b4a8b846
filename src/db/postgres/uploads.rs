use super::{big, repo_id, text, unsigned, PgTx};
use crate::db::uploads::{Upload, UploadPart};
use crate::db::{now_ms, DbError, RepoId, Uploads};
use crate::domain::UploadId;

impl Uploads for PgTx<'_> {
    fn create_upload(&self, id: &UploadId, repo: RepoId, hasher_state: &[u8]) -> Result<(), DbError> {
        let now = now_ms();
        self.execute(
            "INSERT INTO uploads (id, repository_id, size, hasher_state, created_at, updated_at) VALUES ($1, $2, 0, $3, $4, $4)",
            &[&id.as_str(), &repo.0, &hasher_state, &now],
        )?;
        Ok(())
    }

    fn upload(&self, id: &UploadId) -> Result<Option<Upload>, DbError> {
        let row = self.query_opt("SELECT id, repository_id, size, hasher_state, created_at FROM uploads WHERE id = $1", &[&id.as_str()])?;
        row.map(|r| {
            Ok(Upload {
                id: text(&r, 0, "uploads.id")?,
                repository: repo_id(&r, 1)?,
                size: unsigned(&r, 2, "uploads.size")?,
                hasher_state: r.try_get(3)?,
                created_at: r.try_get(4)?,
            })
        })
        .transpose()
    }

    fn upload_parts(&self, id: &UploadId) -> Result<Vec<UploadPart>, DbError> {
        let rows = self.query("SELECT object_key, size FROM upload_parts WHERE upload_id = $1 ORDER BY seq", &[&id.as_str()])?;
        rows.iter().map(|r| Ok(UploadPart { object_key: r.try_get(0)?, size: unsigned(r, 1, "upload_parts.size")? })).collect()
    }

    // The conditional UPDATE row-locks the session (a concurrent one waits,
    // then sees the new size and matches nothing), so max(seq) + 1 is read
    // by one appender at a time even without the writer lock.
    fn append_upload_part(&self, id: &UploadId, expected_size: u64, part: &UploadPart, hasher_state: &[u8]) -> Result<bool, DbError> {
        let new_size = expected_size + part.size;
        let updated = self.execute(
            "UPDATE uploads SET size = $1, hasher_state = $2, updated_at = $3 WHERE id = $4 AND size = $5",
            &[&big(new_size), &hasher_state, &now_ms(), &id.as_str(), &big(expected_size)],
        )?;
        if updated == 0 {
            return Ok(false);
        }
        self.execute(
            "INSERT INTO upload_parts (upload_id, seq, object_key, size)
             VALUES ($1, (SELECT coalesce(max(seq), 0) + 1 FROM upload_parts WHERE upload_id = $1), $2, $3)",
            &[&id.as_str(), &part.object_key, &big(part.size)],
        )?;
        Ok(true)
    }

    fn delete_upload(&self, id: &UploadId) -> Result<bool, DbError> {
        Ok(self.execute("DELETE FROM uploads WHERE id = $1", &[&id.as_str()])? > 0)
    }
}
