use super::{big, opt_text, text, unsigned, PgTx};
use crate::db::layer_index::{PendingReleaseDiff, ReleaseDiffRow, ReleaseDiffState};
use crate::db::{now_ms, DbError, LayerIndex, RepoId};
use crate::domain::{Digest, Stage};

impl LayerIndex for PgTx<'_> {
    fn layer_index(&self, digest: &Digest) -> Result<Option<Vec<u8>>, DbError> {
        Ok(self.query_opt("SELECT entries FROM layer_index WHERE digest = $1", &[&digest.as_str()])?.map(|r| r.try_get(0)).transpose()?)
    }

    fn insert_layer_index(&self, digest: &Digest, entry_count: u64, total_size: u64, entries: &[u8]) -> Result<(), DbError> {
        self.execute(
            "INSERT INTO layer_index (digest, entry_count, total_size, entries, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (digest) DO NOTHING",
            &[&digest.as_str(), &big(entry_count), &big(total_size), &entries, &now_ms()],
        )?;
        Ok(())
    }

    fn layer_index_count(&self) -> Result<u64, DbError> {
        unsigned(&self.query_one("SELECT count(*) FROM layer_index", &[])?, 0, "layer_index count")
    }

    fn set_release_diff(&self, repo: RepoId, stage: &Stage, row: &ReleaseDiffRow) -> Result<(), DbError> {
        self.execute(
            "INSERT INTO release_diff (repository_id, stage, sequence, state, from_digest, summary, reason, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (repository_id, stage, sequence) DO UPDATE SET state = excluded.state,
               from_digest = excluded.from_digest, summary = excluded.summary, reason = excluded.reason, updated_at = excluded.updated_at",
            &[
                &repo.0,
                &stage.as_str(),
                &row.sequence,
                &row.state.as_str(),
                &row.from_digest.as_ref().map(Digest::as_str),
                &row.summary,
                &row.reason,
                &row.updated_at,
            ],
        )?;
        Ok(())
    }

    fn release_diffs(&self, repo: RepoId, stage: &Stage, sequences: &[i64]) -> Result<Vec<ReleaseDiffRow>, DbError> {
        let rows = self.query(
            "SELECT sequence, state, from_digest, summary, reason, updated_at FROM release_diff
             WHERE repository_id = $1 AND stage = $2 AND sequence = ANY($3) ORDER BY sequence",
            &[&repo.0, &stage.as_str(), &sequences],
        )?;
        rows.iter()
            .map(|r| {
                Ok(ReleaseDiffRow {
                    sequence: r.try_get(0)?,
                    state: ReleaseDiffState::parse(r.try_get(1)?)?,
                    from_digest: opt_text(r, 2, "release_diff.from_digest")?,
                    summary: r.try_get(3)?,
                    reason: r.try_get(4)?,
                    updated_at: r.try_get(5)?,
                })
            })
            .collect()
    }

    fn pending_release_diffs(&self) -> Result<Vec<PendingReleaseDiff>, DbError> {
        let rows = self.query(
            "SELECT r.name, d.stage, d.sequence FROM release_diff d JOIN repositories r ON r.id = d.repository_id
             WHERE d.state = 'pending' ORDER BY d.updated_at, d.sequence",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                Ok(PendingReleaseDiff {
                    repo: text(r, 0, "repositories.name")?,
                    stage: text(r, 1, "release_diff.stage")?,
                    sequence: r.try_get(2)?,
                })
            })
            .collect()
    }
}
