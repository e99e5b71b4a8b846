use super::{big, repo_id, unsigned, PgTx};
use crate::db::{now_ms, Blobs, DbError, RepoId};
use crate::domain::Digest;

impl Blobs for PgTx<'_> {
    fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, DbError> {
        self.query_opt("SELECT size FROM blobs WHERE digest = $1", &[&digest.as_str()])?.map(|r| unsigned(&r, 0, "blobs.size")).transpose()
    }

    fn insert_blob(&self, digest: &Digest, size: u64) -> Result<(), DbError> {
        self.execute(
            "INSERT INTO blobs (digest, size, created_at) VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING",
            &[&digest.as_str(), &big(size), &now_ms()],
        )?;
        Ok(())
    }

    fn link_blob(&self, repo: RepoId, digest: &Digest) -> Result<(), DbError> {
        self.execute(
            "INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&repo.0, &digest.as_str(), &now_ms()],
        )?;
        Ok(())
    }

    fn linked_blob_size(&self, repo: RepoId, digest: &Digest) -> Result<Option<u64>, DbError> {
        self.query_opt(
            "SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest WHERE rb.repository_id = $1 AND rb.digest = $2",
            &[&repo.0, &digest.as_str()],
        )?
        .map(|r| unsigned(&r, 0, "blobs.size"))
        .transpose()
    }

    fn unlink_blob(&self, repo: RepoId, digest: &Digest) -> Result<bool, DbError> {
        Ok(self.execute("DELETE FROM repository_blobs WHERE repository_id = $1 AND digest = $2", &[&repo.0, &digest.as_str()])? > 0)
    }

    fn repositories_linking(&self, digest: &Digest) -> Result<Vec<RepoId>, DbError> {
        let rows =
            self.query("SELECT repository_id FROM repository_blobs WHERE digest = $1 ORDER BY repository_id", &[&digest.as_str()])?;
        rows.iter().map(|r| repo_id(r, 0)).collect()
    }
}
