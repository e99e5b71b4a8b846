use rusqlite::{params, OptionalExtension};

use super::SqliteTx;
use crate::db::layer_index::{PendingReleaseDiff, ReleaseDiffRow, ReleaseDiffState};
use crate::db::{now_ms, DbError, LayerIndex, RepoId};
use crate::domain::{Digest, Stage};

impl LayerIndex for SqliteTx<'_> {
    fn layer_index(&self, digest: &Digest) -> Result<Option<Vec<u8>>, DbError> {
        let mut stmt = self.conn.prepare_cached("SELECT entries FROM layer_index WHERE digest = ?1")?;
        Ok(stmt.query_row([digest], |r| r.get(0)).optional()?)
    }

    fn insert_layer_index(&self, digest: &Digest, entry_count: u64, total_size: u64, entries: &[u8]) -> Result<(), DbError> {
        self.conn
            .prepare_cached(
                "INSERT INTO layer_index (digest, entry_count, total_size, entries, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (digest) DO NOTHING",
            )?
            .execute(params![digest, entry_count, total_size, entries, now_ms()])?;
        Ok(())
    }

    fn layer_index_count(&self) -> Result<u64, DbError> {
        Ok(self.conn.prepare_cached("SELECT count(*) FROM layer_index")?.query_row([], |r| r.get(0))?)
    }

    fn set_release_diff(&self, repo: RepoId, stage: &Stage, row: &ReleaseDiffRow) -> Result<(), DbError> {
        self.conn
            .prepare_cached(
                "INSERT INTO release_diff (repository_id, stage, sequence, state, from_digest, summary, reason, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (repository_id, stage, sequence) DO UPDATE SET state = excluded.state,
               from_digest = excluded.from_digest, summary = excluded.summary, reason = excluded.reason, updated_at = excluded.updated_at",
            )?
            .execute(params![repo, stage, row.sequence, row.state.as_str(), row.from_digest, row.summary, row.reason, row.updated_at])?;
        Ok(())
    }

    fn release_diffs(&self, repo: RepoId, stage: &Stage, sequences: &[i64]) -> Result<Vec<ReleaseDiffRow>, DbError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT sequence, state, from_digest, summary, reason, updated_at FROM release_diff
             WHERE repository_id = ?1 AND stage = ?2 AND sequence = ?3",
        )?;
        let mut out = Vec::new();
        for &sequence in sequences {
            let row = stmt
                .query_row(params![repo, stage, sequence], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                })
                .optional()?;
            if let Some((sequence, state, from_digest, summary, reason, updated_at)) = row {
                out.push(ReleaseDiffRow { sequence, state: ReleaseDiffState::parse(&state)?, from_digest, summary, reason, updated_at });
            }
        }
        Ok(out)
    }

    fn pending_release_diffs(&self) -> Result<Vec<PendingReleaseDiff>, DbError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.name, d.stage, d.sequence FROM release_diff d JOIN repositories r ON r.id = d.repository_id
             WHERE d.state = 'pending' ORDER BY d.updated_at, d.sequence",
        )?;
        let rows = stmt.query_map([], |r| Ok(PendingReleaseDiff { repo: r.get(0)?, stage: r.get(1)?, sequence: r.get(2)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
