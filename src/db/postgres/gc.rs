use super::{big, text, unsigned, PgTx};
use crate::db::{now_ms, Backups, DbError, Gc};
use crate::domain::{Digest, UploadId};

/// The one rule for a collectable blob `b` (as in `../sqlite/gc.rs`):
/// pushed before `$2`, no manifest references it, no claim newer than `$3`.
macro_rules! collectable {
    () => {
        "b.created_at < $2
         AND NOT EXISTS (SELECT 1 FROM manifest_references r WHERE r.target_digest = b.digest)
         AND NOT EXISTS (SELECT 1 FROM blob_claims c WHERE c.digest = b.digest AND c.created_at >= $3)"
    };
}

fn digest_sizes(rows: &[postgres::Row], what: &'static str) -> Result<Vec<(Digest, u64)>, DbError> {
    rows.iter().map(|r| Ok((text(r, 0, what)?, unsigned(r, 1, what)?))).collect()
}

// The check-then-act pairs (claim vs pending, take's re-check, stray's
// re-check, take vs a manifest PUT's blob check) are exact because every
// write transaction holds the writer lock (see the module doc).
impl Gc for PgTx<'_> {
    fn claim_blob(&self, claim_id: &str, digest: &Digest) -> Result<bool, DbError> {
        if self.gc_is_pending(digest)? {
            return Ok(false);
        }
        self.execute(
            "INSERT INTO blob_claims (claim_id, digest, created_at) VALUES ($1, $2, $3)",
            &[&claim_id, &digest.as_str(), &now_ms()],
        )?;
        Ok(true)
    }

    fn release_claim(&self, claim_id: &str) -> Result<(), DbError> {
        self.execute("DELETE FROM blob_claims WHERE claim_id = $1", &[&claim_id])?;
        Ok(())
    }

    fn gc_is_pending(&self, digest: &Digest) -> Result<bool, DbError> {
        Ok(self.query_opt("SELECT 1 FROM gc_pending WHERE digest = $1", &[&digest.as_str()])?.is_some())
    }

    fn touch_blob(&self, digest: &Digest) -> Result<(), DbError> {
        self.execute("UPDATE blobs SET created_at = $2 WHERE digest = $1", &[&digest.as_str(), &now_ms()])?;
        Ok(())
    }

    fn gc_candidates(&self, after: &str, cutoff: i64, claims_since: i64, limit: u32) -> Result<Vec<(Digest, u64)>, DbError> {
        if self.backup_fence_active(now_ms())? {
            return Ok(Vec::new());
        }
        let rows = self.query(
            concat!(
                "SELECT b.digest, b.size FROM blobs b WHERE b.digest COLLATE \"C\" > $1 AND ",
                collectable!(),
                " ORDER BY b.digest COLLATE \"C\" LIMIT $4"
            ),
            &[&after, &cutoff, &claims_since, &i64::from(limit)],
        )?;
        digest_sizes(&rows, "blobs")
    }

    fn gc_take(&self, digest: &Digest, cutoff: i64, claims_since: i64) -> Result<Option<u64>, DbError> {
        // Re-checked under the writer lock, which taking a fence also holds:
        // a fence taken after the candidate scan still stops the take.
        if self.backup_fence_active(now_ms())? {
            return Ok(None);
        }
        let row = self.query_opt(
            concat!("SELECT b.size FROM blobs b WHERE b.digest = $1 AND ", collectable!()),
            &[&digest.as_str(), &cutoff, &claims_since],
        )?;
        let Some(row) = row else { return Ok(None) };
        let size = unsigned(&row, 0, "blobs.size")?;
        self.execute("DELETE FROM repository_blobs WHERE digest = $1", &[&digest.as_str()])?;
        self.execute("DELETE FROM blobs WHERE digest = $1", &[&digest.as_str()])?;
        self.execute(
            "INSERT INTO gc_pending (digest, size, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&digest.as_str(), &big(size), &now_ms()],
        )?;
        Ok(Some(size))
    }

    fn gc_pending(&self, limit: u32) -> Result<Vec<(Digest, u64)>, DbError> {
        let rows = self.query("SELECT digest, size FROM gc_pending ORDER BY digest COLLATE \"C\" LIMIT $1", &[&i64::from(limit)])?;
        digest_sizes(&rows, "gc_pending")
    }

    fn gc_finish(&self, digest: &Digest) -> Result<(), DbError> {
        self.execute("DELETE FROM gc_pending WHERE digest = $1", &[&digest.as_str()])?;
        Ok(())
    }

    fn drop_stale_claims(&self, before: i64) -> Result<usize, DbError> {
        let n = self.execute("DELETE FROM blob_claims WHERE created_at < $1", &[&before])?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn stale_uploads(&self, before: i64, limit: u32) -> Result<Vec<(UploadId, Vec<String>)>, DbError> {
        let rows =
            self.query("SELECT id FROM uploads WHERE updated_at < $1 ORDER BY updated_at LIMIT $2", &[&before, &i64::from(limit)])?;
        rows.iter()
            .map(|r| {
                let id: UploadId = text(r, 0, "uploads.id")?;
                let keys = self
                    .query("SELECT object_key FROM upload_parts WHERE upload_id = $1 ORDER BY seq", &[&id.as_str()])?
                    .iter()
                    .map(|k| k.try_get(0))
                    .collect::<Result<Vec<String>, _>>()?;
                Ok((id, keys))
            })
            .collect()
    }

    fn delete_stale_upload(&self, id: &UploadId, before: i64) -> Result<bool, DbError> {
        Ok(self.execute("DELETE FROM uploads WHERE id = $1 AND updated_at < $2", &[&id.as_str(), &before])? > 0)
    }

    fn stray_is_known(&self, digest: &Digest, claims_since: i64) -> Result<bool, DbError> {
        Ok(self
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM blobs WHERE digest = $1)
                     OR EXISTS (SELECT 1 FROM gc_pending WHERE digest = $1)
                     OR EXISTS (SELECT 1 FROM blob_claims WHERE digest = $1 AND created_at >= $2)",
                &[&digest.as_str(), &claims_since],
            )?
            .try_get(0)?)
    }

    fn take_stray(&self, digest: &Digest, size: u64, claims_since: i64) -> Result<bool, DbError> {
        if self.stray_is_known(digest, claims_since)? || self.backup_fence_active(now_ms())? {
            return Ok(false);
        }
        self.execute("INSERT INTO gc_pending (digest, size, created_at) VALUES ($1, $2, $3)", &[&digest.as_str(), &big(size), &now_ms()])?;
        Ok(true)
    }

    fn upload_exists(&self, id: &UploadId) -> Result<bool, DbError> {
        Ok(self.query_opt("SELECT 1 FROM uploads WHERE id = $1", &[&id.as_str()])?.is_some())
    }
}
