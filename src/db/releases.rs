//! `releases`: the append-only history of each stage.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{now_ms, DbError};

pub use crate::domain::ReleaseRow;

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

pub struct NewRelease<'a> {
    pub stage: &'a str,
    pub digest: &'a str,
    pub version: Option<&'a str>,
    pub note: Option<&'a str>,
    pub actor: &'a str,
    pub reason: &'a str,
    pub rolled_back_from: Option<i64>,
    pub restored_sequence: Option<i64>,
}

/// Appends a release with the next sequence number of its stage. The caller's
/// write transaction makes the read-then-insert atomic.
pub fn append(conn: &Connection, repository_id: i64, r: NewRelease<'_>) -> Result<ReleaseRow, DbError> {
    let sequence: i64 = conn.query_row(
        "SELECT coalesce(max(sequence), 0) + 1 FROM releases WHERE repository_id = ?1 AND stage = ?2",
        params![repository_id, r.stage],
        |row| row.get(0),
    )?;
    let created_at = now_ms();
    conn.execute(
        "INSERT INTO releases (repository_id, stage, sequence, digest, version, note, actor, created_at, reason, rolled_back_from, restored_sequence)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![repository_id, r.stage, sequence, r.digest, r.version, r.note, r.actor, created_at, r.reason, r.rolled_back_from, r.restored_sequence],
    )?;
    Ok(ReleaseRow {
        stage: r.stage.to_owned(),
        sequence,
        digest: r.digest.to_owned(),
        version: r.version.map(str::to_owned),
        note: r.note.map(str::to_owned),
        actor: r.actor.to_owned(),
        created_at,
        reason: r.reason.to_owned(),
        rolled_back_from: r.rolled_back_from,
        restored_sequence: r.restored_sequence,
    })
}

pub fn current(conn: &Connection, repository_id: i64, stage: &str) -> Result<Option<ReleaseRow>, DbError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM releases WHERE repository_id = ?1 AND stage = ?2 ORDER BY sequence DESC LIMIT 1"),
            params![repository_id, stage],
            from_row,
        )
        .optional()?)
}

pub fn get(conn: &Connection, repository_id: i64, stage: &str, sequence: i64) -> Result<Option<ReleaseRow>, DbError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM releases WHERE repository_id = ?1 AND stage = ?2 AND sequence = ?3"),
            params![repository_id, stage, sequence],
            from_row,
        )
        .optional()?)
}

/// The first time `digest` was released to `stage`, if ever.
pub fn first_release_of(conn: &Connection, repository_id: i64, stage: &str, digest: &str) -> Result<Option<ReleaseRow>, DbError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM releases WHERE repository_id = ?1 AND stage = ?2 AND digest = ?3 ORDER BY sequence LIMIT 1"),
            params![repository_id, stage, digest],
            from_row,
        )
        .optional()?)
}

/// Releases of a stage below `before` (newest first), at most `limit`.
pub fn list(conn: &Connection, repository_id: i64, stage: &str, before: Option<i64>, limit: u32) -> Result<Vec<ReleaseRow>, DbError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM releases WHERE repository_id = ?1 AND stage = ?2 AND (?3 IS NULL OR sequence < ?3)
         ORDER BY sequence DESC LIMIT ?4"
    ))?;
    let rows = stmt.query_map(params![repository_id, stage, before, limit], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every release of a repository as (stage, sequence, digest).
pub fn all(conn: &Connection, repository_id: i64) -> Result<Vec<(String, i64, String)>, DbError> {
    let mut stmt = conn.prepare_cached("SELECT stage, sequence, digest FROM releases WHERE repository_id = ?1")?;
    let rows = stmt.query_map([repository_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
