//! `tag_history`: every digest a tag pointed to.

use rusqlite::{params, Connection};

use super::{now_ms, DbError};

#[derive(Debug, Clone)]
pub struct TagEvent {
    pub id: i64,
    /// `None` when the tag was deleted.
    pub digest: Option<String>,
    pub actor: String,
    pub created_at: i64,
}

pub fn record(conn: &Connection, repository_id: i64, tag: &str, digest: Option<&str>, actor: &str) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO tag_history (repository_id, tag, digest, actor, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![repository_id, tag, digest, actor, now_ms()],
    )?;
    Ok(())
}

/// Events of a tag with id below `before` (newest first), at most `limit`.
pub fn list(conn: &Connection, repository_id: i64, tag: &str, before: Option<i64>, limit: u32) -> Result<Vec<TagEvent>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, digest, actor, created_at FROM tag_history
         WHERE repository_id = ?1 AND tag = ?2 AND (?3 IS NULL OR id < ?3) ORDER BY id DESC LIMIT ?4",
    )?;
    let rows = stmt.query_map(params![repository_id, tag, before, limit], |r| {
        Ok(TagEvent { id: r.get(0)?, digest: r.get(1)?, actor: r.get(2)?, created_at: r.get(3)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
