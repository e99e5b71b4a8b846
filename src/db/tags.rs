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

// ---- The engine-neutral seam (the free functions above go once every caller uses it).

use super::RepoId;
use crate::domain::{Digest, Tag};

/// A tag and where it points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRow {
    pub name: Tag,
    pub digest: Digest,
    pub updated_at: i64,
}

/// One entry of a tag's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagChange {
    pub id: i64,
    /// `None` when the tag was deleted.
    pub digest: Option<Digest>,
    pub actor: String,
    pub created_at: i64,
}

/// Tags and their history (`tags`, `tag_history`).
pub trait Tags {
    fn tag_target(&self, repo: RepoId, tag: &Tag) -> Result<Option<Digest>, DbError>;
    /// Points `tag` at `digest`; returns the previous target if it moved.
    /// Of callers moving one tag at the same time, each sees the target the
    /// one before it set, so every previous target is returned exactly once.
    fn set_tag(&self, repo: RepoId, tag: &Tag, digest: &Digest) -> Result<Option<Digest>, DbError>;
    fn delete_tag(&self, repo: RepoId, tag: &Tag) -> Result<bool, DbError>;
    /// Removes every tag pointing at `digest`; returns their names.
    fn delete_tags_pointing_at(&self, repo: RepoId, digest: &Digest) -> Result<Vec<Tag>, DbError>;
    /// Tag names after `last` in lexical order, at most `limit`.
    fn list_tags(&self, repo: RepoId, last: Option<&str>, limit: u32) -> Result<Vec<Tag>, DbError>;
    /// Names of the tags pointing at `digest`, in name order.
    fn tags_pointing_at(&self, repo: RepoId, digest: &Digest) -> Result<Vec<Tag>, DbError>;
    /// Every tag of a repository, in name order.
    fn all_tags(&self, repo: RepoId) -> Result<Vec<TagRow>, DbError>;
    /// Appends to the tag's history (`None`: deleted).
    fn record_tag_change(&self, repo: RepoId, tag: &Tag, digest: Option<&Digest>, actor: &str) -> Result<(), DbError>;
    /// History entries with id below `before`, newest first, at most `limit`.
    fn tag_history(&self, repo: RepoId, tag: &Tag, before: Option<i64>, limit: u32) -> Result<Vec<TagChange>, DbError>;
}
