use postgres::Row;

use super::{text, PgTx};
use crate::db::releases::{NewRelease, ReleaseKey, ReleaseRow};
use crate::db::{now_ms, DbError, Releases, RepoId};
use crate::domain::{Digest, ReleaseReason, Stage};

const COLUMNS: &str = "stage, sequence, digest, version, note, actor, created_at, reason, rolled_back_from, restored_sequence";

fn from_row(r: &Row) -> Result<ReleaseRow, DbError> {
    Ok(ReleaseRow {
        stage: text(r, 0, "releases.stage")?,
        sequence: r.try_get(1)?,
        digest: text(r, 2, "releases.digest")?,
        version: r.try_get(3)?,
        note: r.try_get(4)?,
        actor: r.try_get(5)?,
        created_at: r.try_get(6)?,
        reason: ReleaseReason::parse(r.try_get(7)?).ok_or(DbError::Corrupt("releases.reason"))?,
        rolled_back_from: r.try_get(8)?,
        restored_sequence: r.try_get(9)?,
    })
}

impl Releases for PgTx<'_> {
    // max + 1 then insert: the writer lock keeps the sequence gap-free.
    fn append_release(&self, repo: RepoId, r: NewRelease<'_>) -> Result<ReleaseRow, DbError> {
        let sequence: i64 = self
            .query_one(
                "SELECT coalesce(max(sequence), 0) + 1 FROM releases WHERE repository_id = $1 AND stage = $2",
                &[&repo.0, &r.stage.as_str()],
            )?
            .try_get(0)?;
        let created_at = now_ms();
        self.execute(
            "INSERT INTO releases (repository_id, stage, sequence, digest, version, note, actor, created_at, reason, rolled_back_from, restored_sequence)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &repo.0,
                &r.stage.as_str(),
                &sequence,
                &r.digest.as_str(),
                &r.version,
                &r.note,
                &r.actor,
                &created_at,
                &r.reason.as_str(),
                &r.rolled_back_from,
                &r.restored_sequence,
            ],
        )?;
        Ok(ReleaseRow {
            stage: r.stage.clone(),
            sequence,
            digest: r.digest.clone(),
            version: r.version.map(str::to_owned),
            note: r.note.map(str::to_owned),
            actor: r.actor.to_owned(),
            created_at,
            reason: r.reason,
            rolled_back_from: r.rolled_back_from,
            restored_sequence: r.restored_sequence,
        })
    }

    fn current_release(&self, repo: RepoId, stage: &Stage) -> Result<Option<ReleaseRow>, DbError> {
        self.query_opt(
            &format!("SELECT {COLUMNS} FROM releases WHERE repository_id = $1 AND stage = $2 ORDER BY sequence DESC LIMIT 1"),
            &[&repo.0, &stage.as_str()],
        )?
        .as_ref()
        .map(from_row)
        .transpose()
    }

    fn release(&self, repo: RepoId, stage: &Stage, sequence: i64) -> Result<Option<ReleaseRow>, DbError> {
        self.query_opt(
            &format!("SELECT {COLUMNS} FROM releases WHERE repository_id = $1 AND stage = $2 AND sequence = $3"),
            &[&repo.0, &stage.as_str(), &sequence],
        )?
        .as_ref()
        .map(from_row)
        .transpose()
    }

    fn first_release_of(&self, repo: RepoId, stage: &Stage, digest: &Digest) -> Result<Option<ReleaseRow>, DbError> {
        self.query_opt(
            &format!("SELECT {COLUMNS} FROM releases WHERE repository_id = $1 AND stage = $2 AND digest = $3 ORDER BY sequence LIMIT 1"),
            &[&repo.0, &stage.as_str(), &digest.as_str()],
        )?
        .as_ref()
        .map(from_row)
        .transpose()
    }

    fn list_releases(&self, repo: RepoId, stage: &Stage, before: Option<i64>, limit: u32) -> Result<Vec<ReleaseRow>, DbError> {
        self.query(
            &format!(
                "SELECT {COLUMNS} FROM releases WHERE repository_id = $1 AND stage = $2 AND ($3::BIGINT IS NULL OR sequence < $3)
                 ORDER BY sequence DESC LIMIT $4"
            ),
            &[&repo.0, &stage.as_str(), &before, &i64::from(limit)],
        )?
        .iter()
        .map(from_row)
        .collect()
    }

    fn all_releases(&self, repo: RepoId) -> Result<Vec<ReleaseKey>, DbError> {
        self.query("SELECT stage, sequence, digest FROM releases WHERE repository_id = $1", &[&repo.0])?
            .iter()
            .map(|r| {
                Ok(ReleaseKey { stage: text(r, 0, "releases.stage")?, sequence: r.try_get(1)?, digest: text(r, 2, "releases.digest")? })
            })
            .collect()
    }
}
