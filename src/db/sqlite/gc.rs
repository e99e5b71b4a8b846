use rusqlite::{params, OptionalExtension};

use super::SqliteTx;
use crate::db::{now_ms, Backups, DbError, Gc};
use crate::domain::{Digest, UploadId};

/// The one rule for a collectable blob `b`, shared by the candidate scan and
/// the re-check that acts on it: pushed before `?2` (the grace cutoff), no
/// manifest references it, and no upload claim newer than `?3` holds it.
macro_rules! collectable {
    () => {
        "b.created_at < ?2
         AND NOT EXISTS (SELECT 1 FROM manifest_references r WHERE r.target_digest = b.digest)
         AND NOT EXISTS (SELECT 1 FROM blob_claims c WHERE c.digest = b.digest AND c.created_at >= ?3)"
    };
}

// The check-then-act pairs here (claim vs pending, take's re-check, stray's
// re-check) are exact because SQLite runs one write transaction at a time.
impl Gc for SqliteTx<'_> {
    fn claim_blob(&self, claim_id: &str, digest: &Digest) -> Result<bool, DbError> {
        if self.gc_is_pending(digest)? {
            return Ok(false);
        }
        self.conn.prepare_cached("INSERT INTO blob_claims (claim_id, digest, created_at) VALUES (?1, ?2, ?3)")?.execute(params![
            claim_id,
            digest,
            now_ms()
        ])?;
        Ok(true)
    }

    fn release_claim(&self, claim_id: &str) -> Result<(), DbError> {
        self.conn.prepare_cached("DELETE FROM blob_claims WHERE claim_id = ?1")?.execute([claim_id])?;
        Ok(())
    }

    fn gc_is_pending(&self, digest: &Digest) -> Result<bool, DbError> {
        Ok(self.conn.prepare_cached("SELECT 1 FROM gc_pending WHERE digest = ?1")?.query_row([digest], |_| Ok(())).optional()?.is_some())
    }

    fn touch_blob(&self, digest: &Digest) -> Result<(), DbError> {
        self.conn.prepare_cached("UPDATE blobs SET created_at = ?2 WHERE digest = ?1")?.execute(params![digest, now_ms()])?;
        Ok(())
    }

    fn gc_candidates(&self, after: &str, cutoff: i64, claims_since: i64, limit: u32) -> Result<Vec<(Digest, u64)>, DbError> {
        if self.backup_fence_active(now_ms())? {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare_cached(concat!(
            "SELECT b.digest, b.size FROM blobs b WHERE b.digest > ?1 AND ",
            collectable!(),
            " ORDER BY b.digest LIMIT ?4"
        ))?;
        let rows = stmt.query_map(params![after, cutoff, claims_since, limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn gc_take(&self, digest: &Digest, cutoff: i64, claims_since: i64) -> Result<Option<u64>, DbError> {
        // Re-checked here, in the writer's transaction: a fence taken after
        // the candidate scan still stops the take.
        if self.backup_fence_active(now_ms())? {
            return Ok(None);
        }
        let size: Option<u64> = self
            .conn
            .query_row(
                concat!("SELECT b.size FROM blobs b WHERE b.digest = ?1 AND ", collectable!()),
                params![digest, cutoff, claims_since],
                |r| r.get(0),
            )
            .optional()?;
        let Some(size) = size else { return Ok(None) };
        self.conn.prepare_cached("DELETE FROM repository_blobs WHERE digest = ?1")?.execute([digest])?;
        self.conn.prepare_cached("DELETE FROM blobs WHERE digest = ?1")?.execute([digest])?;
        self.conn
            .prepare_cached("INSERT INTO gc_pending (digest, size, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")?
            .execute(params![digest, size, now_ms()])?;
        Ok(Some(size))
    }

    fn gc_pending(&self, limit: u32) -> Result<Vec<(Digest, u64)>, DbError> {
        let mut stmt = self.conn.prepare_cached("SELECT digest, size FROM gc_pending ORDER BY digest LIMIT ?1")?;
        let rows = stmt.query_map([limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn gc_finish(&self, digest: &Digest) -> Result<(), DbError> {
        self.conn.prepare_cached("DELETE FROM gc_pending WHERE digest = ?1")?.execute([digest])?;
        Ok(())
    }

    fn drop_stale_claims(&self, before: i64) -> Result<usize, DbError> {
        Ok(self.conn.prepare_cached("DELETE FROM blob_claims WHERE created_at < ?1")?.execute([before])?)
    }

    fn stale_uploads(&self, before: i64, limit: u32) -> Result<Vec<(UploadId, Vec<String>)>, DbError> {
        let mut stmt = self.conn.prepare_cached("SELECT id FROM uploads WHERE updated_at < ?1 ORDER BY updated_at LIMIT ?2")?;
        let ids: Vec<UploadId> = stmt.query_map(params![before, limit], |r| r.get(0))?.collect::<Result<_, _>>()?;
        let mut parts = self.conn.prepare_cached("SELECT object_key FROM upload_parts WHERE upload_id = ?1 ORDER BY seq")?;
        ids.into_iter()
            .map(|id| {
                let keys = parts.query_map([&id], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
                Ok((id, keys))
            })
            .collect()
    }

    fn delete_stale_upload(&self, id: &UploadId, before: i64) -> Result<bool, DbError> {
        Ok(self.conn.prepare_cached("DELETE FROM uploads WHERE id = ?1 AND updated_at < ?2")?.execute(params![id, before])? > 0)
    }

    fn stray_is_known(&self, digest: &Digest, claims_since: i64) -> Result<bool, DbError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM blobs WHERE digest = ?1)
                 OR EXISTS (SELECT 1 FROM gc_pending WHERE digest = ?1)
                 OR EXISTS (SELECT 1 FROM blob_claims WHERE digest = ?1 AND created_at >= ?2)",
            )?
            .query_row(params![digest, claims_since], |r| r.get(0))?)
    }

    fn take_stray(&self, digest: &Digest, size: u64, claims_since: i64) -> Result<bool, DbError> {
        if self.stray_is_known(digest, claims_since)? || self.backup_fence_active(now_ms())? {
            return Ok(false);
        }
        self.conn.prepare_cached("INSERT INTO gc_pending (digest, size, created_at) VALUES (?1, ?2, ?3)")?.execute(params![
            digest,
            size,
            now_ms()
        ])?;
        Ok(true)
    }

    fn upload_exists(&self, id: &UploadId) -> Result<bool, DbError> {
        Ok(self.conn.prepare_cached("SELECT 1 FROM uploads WHERE id = ?1")?.query_row([id], |_| Ok(())).optional()?.is_some())
    }
}
