use super::PgTx;
use crate::db::{DbError, RepoId, Signatures};
use crate::domain::Stage;

impl Signatures for PgTx<'_> {
    fn record_verdict(&self, repo: RepoId, stage: &Stage, sequence: i64, verdict: &str) -> Result<(), DbError> {
        self.execute(
            "INSERT INTO release_verdicts (repository_id, stage, sequence, verdict) VALUES ($1, $2, $3, $4)",
            &[&repo.0, &stage.as_str(), &sequence, &verdict],
        )?;
        Ok(())
    }

    fn verdict(&self, repo: RepoId, stage: &Stage, sequence: i64) -> Result<Option<String>, DbError> {
        self.query_opt(
            "SELECT verdict FROM release_verdicts WHERE repository_id = $1 AND stage = $2 AND sequence = $3",
            &[&repo.0, &stage.as_str(), &sequence],
        )?
        .map(|r| r.try_get(0).map_err(DbError::from))
        .transpose()
    }

    fn current_verdicts(&self) -> Result<Vec<String>, DbError> {
        self.query(
            "SELECT v.verdict FROM release_verdicts v
             JOIN (SELECT repository_id, stage, max(sequence) AS sequence FROM releases GROUP BY repository_id, stage) c
               ON v.repository_id = c.repository_id AND v.stage = c.stage AND v.sequence = c.sequence",
            &[],
        )?
        .iter()
        .map(|r| r.try_get(0).map_err(DbError::from))
        .collect()
    }
}
