use rusqlite::{params, OptionalExtension};

use super::SqliteTx;
use crate::db::{DbError, RepoId, Signatures};
use crate::domain::Stage;

impl Signatures for SqliteTx<'_> {
    fn record_verdict(&self, repo: RepoId, stage: &Stage, sequence: i64, verdict: &str) -> Result<(), DbError> {
        self.conn
            .prepare_cached("INSERT INTO release_verdicts (repository_id, stage, sequence, verdict) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![repo, stage, sequence, verdict])?;
        Ok(())
    }

    fn verdict(&self, repo: RepoId, stage: &Stage, sequence: i64) -> Result<Option<String>, DbError> {
        Ok(self
            .conn
            .prepare_cached("SELECT verdict FROM release_verdicts WHERE repository_id = ?1 AND stage = ?2 AND sequence = ?3")?
            .query_row(params![repo, stage, sequence], |r| r.get(0))
            .optional()?)
    }

    fn current_verdicts(&self) -> Result<Vec<String>, DbError> {
        let mut stmt = self.conn.prepare(
            "SELECT v.verdict FROM release_verdicts v
             JOIN (SELECT repository_id, stage, max(sequence) AS sequence FROM releases GROUP BY repository_id, stage) c
               ON v.repository_id = c.repository_id AND v.stage = c.stage AND v.sequence = c.sequence",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
        Ok(rows)
    }
}
