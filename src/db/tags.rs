//! `tags` table.

use rusqlite::{params, Connection, OptionalExtension};

use super::{now_ms, DbError};

pub fn target(conn: &Connection, repository_id: i64, tag: &str) -> Result<Option<String>, DbError> {
    Ok(conn
        .query_row("SELECT digest FROM tags WHERE repository_id = ?1 AND name = ?2", params![repository_id, tag], |r| r.get(0))
        .optional()?)
}

/// Points `tag` at `digest`; returns the previous target if it moved.
pub fn set(conn: &Connection, repository_id: i64, tag: &str, digest: &str) -> Result<Option<String>, DbError> {
    let previous = target(conn, repository_id, tag)?;
    conn.execute(
        "INSERT INTO tags (repository_id, name, digest, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (repository_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at",
        params![repository_id, tag, digest, now_ms()],
    )?;
    Ok(previous.filter(|p| p != digest))
}

pub fn delete(conn: &Connection, repository_id: i64, tag: &str) -> Result<bool, DbError> {
    Ok(conn.execute("DELETE FROM tags WHERE repository_id = ?1 AND name = ?2", params![repository_id, tag])? > 0)
}

/// Removes every tag pointing at `digest`; returns their names.
pub fn delete_pointing_at(conn: &Connection, repository_id: i64, digest: &str) -> Result<Vec<String>, DbError> {
    let mut stmt = conn.prepare_cached("DELETE FROM tags WHERE repository_id = ?1 AND digest = ?2 RETURNING name")?;
    let rows = stmt.query_map(params![repository_id, digest], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Tag names after `last` in lexical order, at most `limit`.
pub fn list(conn: &Connection, repository_id: i64, last: Option<&str>, limit: u32) -> Result<Vec<String>, DbError> {
    let mut stmt = conn.prepare_cached("SELECT name FROM tags WHERE repository_id = ?1 AND name > ?2 ORDER BY name LIMIT ?3")?;
    let rows = stmt.query_map(params![repository_id, last.unwrap_or(""), limit], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Names of the tags pointing at `digest`.
pub fn pointing_at(conn: &Connection, repository_id: i64, digest: &str) -> Result<Vec<String>, DbError> {
    let mut stmt = conn.prepare_cached("SELECT name FROM tags WHERE repository_id = ?1 AND digest = ?2 ORDER BY name")?;
    let rows = stmt.query_map(params![repository_id, digest], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every tag of a repository as (name, digest, updated_at).
pub fn all(conn: &Connection, repository_id: i64) -> Result<Vec<(String, String, i64)>, DbError> {
    let mut stmt = conn.prepare_cached("SELECT name, digest, updated_at FROM tags WHERE repository_id = ?1 ORDER BY name")?;
    let rows = stmt.query_map([repository_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
