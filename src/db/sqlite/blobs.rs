use rusqlite::{params, OptionalExtension};

use super::SqliteTx;
use crate::db::{now_ms, Blobs, DbError, RepoId};
use crate::domain::Digest;

impl Blobs for SqliteTx<'_> {
    fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, DbError> {
        Ok(self.conn.prepare_cached("SELECT size FROM blobs WHERE digest = ?1")?.query_row([digest], |r| r.get(0)).optional()?)
    }

    fn insert_blob(&self, digest: &Digest, size: u64) -> Result<(), DbError> {
        self.conn
            .prepare_cached("INSERT INTO blobs (digest, size, created_at) VALUES (?1, ?2, ?3) ON CONFLICT (digest) DO NOTHING")?
            .execute(params![digest, size, now_ms()])?;
        Ok(())
    }

    fn link_blob(&self, repo: RepoId, digest: &Digest) -> Result<(), DbError> {
        self.conn
            .prepare_cached(
                "INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
            )?
            .execute(params![repo, digest, now_ms()])?;
        Ok(())
    }

    fn linked_blob_size(&self, repo: RepoId, digest: &Digest) -> Result<Option<u64>, DbError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
                 WHERE rb.repository_id = ?1 AND rb.digest = ?2",
            )?
            .query_row(params![repo, digest], |r| r.get(0))
            .optional()?)
    }

    fn unlink_blob(&self, repo: RepoId, digest: &Digest) -> Result<bool, DbError> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM repository_blobs WHERE repository_id = ?1 AND digest = ?2")?
            .execute(params![repo, digest])?;
        Ok(n > 0)
    }

    fn repositories_linking(&self, digest: &Digest) -> Result<Vec<RepoId>, DbError> {
        let mut stmt = self.conn.prepare_cached("SELECT repository_id FROM repository_blobs WHERE digest = ?1 ORDER BY repository_id")?;
        let rows = stmt.query_map([digest], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
