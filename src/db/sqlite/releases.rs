use rusqlite::{params, OptionalExtension, Row};

use super::SqliteTx;
use crate::db::releases::{NewRelease, ReleaseKey, ReleaseRow};
use crate::db::{now_ms, DbError, Releases, RepoId};
use crate::domain::{Digest, Stage};

const COLUMNS: &str = "stage, sequence, digest, version, note, actor, created_at, reason, rolled_back_from, restored_sequence";

fn from_row(r: &Row<'_>) -> rusqlite::Result<ReleaseRow> {
    Ok(ReleaseRow {
        stage: r.get(0)?,
        sequence: r.get(1)?,
        digest: r.get(2)?,
        version: r.get(3)?,
        note: r.get(4)?,
        actor: r.get(5)?,
        created_at: r.get(6)?,
        reason: r.get(7)?,
        rolled_back_from: r.get(8)?,
        restored_sequence: r.get(9)?,
    })
}

impl Releases for SqliteTx<'_> {
    // max + 1 then insert: one writer at a time keeps the sequence gap-free.
    fn append_release(&self, repo: RepoId, r: NewRelease<'_>) -> Result<ReleaseRow, DbError> {
        let sequence: i64 = self
            .conn
            .prepare_cached("SELECT coalesce(max(sequence), 0) + 1 FROM releases WHERE repository_id = ?1 AND stage = ?2")?
            .query_row(params![repo, r.stage], |row| row.get(0))?;
        let created_at = now_ms();
        self.conn.prepare_cached("INSERT INTO releases (repository_id, stage, sequence, digest, version, note, actor, created_at, reason, rolled_back_from, restored_sequence)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")?.execute(params![repo, r.stage, sequence, r.digest, r.version, r.note, r.actor, created_at, r.reason, r.rolled_back_from, r.restored_sequence],
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
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM releases WHERE repository_id = ?1 AND stage = ?2 ORDER BY sequence DESC LIMIT 1"
            ))?
            .query_row(params![repo, stage], from_row)
            .optional()?)
    }

    fn release(&self, repo: RepoId, stage: &Stage, sequence: i64) -> Result<Option<ReleaseRow>, DbError> {
        Ok(self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM releases WHERE repository_id = ?1 AND stage = ?2 AND sequence = ?3"))?
            .query_row(params![repo, stage, sequence], from_row)
            .optional()?)
    }

    fn first_release_of(&self, repo: RepoId, stage: &Stage, digest: &Digest) -> Result<Option<ReleaseRow>, DbError> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM releases WHERE repository_id = ?1 AND stage = ?2 AND digest = ?3 ORDER BY sequence LIMIT 1"
                ),
                params![repo, stage, digest],
                from_row,
            )
            .optional()?)
    }

    fn list_releases(&self, repo: RepoId, stage: &Stage, before: Option<i64>, limit: u32) -> Result<Vec<ReleaseRow>, DbError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM releases WHERE repository_id = ?1 AND stage = ?2 AND (?3 IS NULL OR sequence < ?3)
             ORDER BY sequence DESC LIMIT ?4"
        ))?;
        let rows = stmt.query_map(params![repo, stage, before, limit], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn all_releases(&self, repo: RepoId) -> Result<Vec<ReleaseKey>, DbError> {
        let mut stmt = self.conn.prepare_cached("SELECT stage, sequence, digest FROM releases WHERE repository_id = ?1")?;
        let rows = stmt.query_map([repo], |r| Ok(ReleaseKey { stage: r.get(0)?, sequence: r.get(1)?, digest: r.get(2)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
