//! `repositories` table.

use rusqlite::{params, Connection, OptionalExtension};

use super::{now_ms, DbError};

pub fn id_of(conn: &Connection, name: &str) -> Result<Option<i64>, DbError> {
    Ok(conn.query_row("SELECT id FROM repositories WHERE name = ?1", [name], |r| r.get(0)).optional()?)
}

/// The repository's id, creating the row on first use.
pub fn ensure(conn: &Connection, name: &str) -> Result<i64, DbError> {
    if let Some(id) = id_of(conn, name)? {
        return Ok(id);
    }
    conn.execute("INSERT INTO repositories (name, created_at) VALUES (?1, ?2)", params![name, now_ms()])?;
    Ok(conn.last_insert_rowid())
}

/// Names after `last` in lexical order, at most `limit` of them.
pub fn list(conn: &Connection, last: Option<&str>, limit: u32) -> Result<Vec<String>, DbError> {
    let mut stmt = conn.prepare_cached("SELECT name FROM repositories WHERE name > ?1 ORDER BY name LIMIT ?2")?;
    let rows = stmt.query_map(params![last.unwrap_or(""), limit], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

// ---- The engine-neutral seam (the free functions above go once every caller uses it).

use crate::domain::RepoName;

/// A repository's row id, the key every per-repository table uses. Only the
/// database hands these out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoId(pub(crate) i64);

pub trait Repositories {
    fn repository_id(&self, name: &RepoName) -> Result<Option<RepoId>, DbError>;
    /// The repository's id, creating the row on first use. Callers racing to
    /// create the same repository all get the one row's id.
    fn ensure_repository(&self, name: &RepoName) -> Result<RepoId, DbError>;
    /// Names after `last` in lexical order, at most `limit` of them. `last`
    /// is the client's `?last=` and need not name a repository.
    fn list_repositories(&self, last: Option<&str>, limit: u32) -> Result<Vec<RepoName>, DbError>;
}
