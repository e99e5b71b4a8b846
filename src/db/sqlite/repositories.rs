use rusqlite::{params, OptionalExtension};

use super::SqliteTx;
use crate::db::{now_ms, DbError, RepoId, Repositories};
use crate::domain::RepoName;

impl Repositories for SqliteTx<'_> {
    fn repository_id(&self, name: &RepoName) -> Result<Option<RepoId>, DbError> {
        Ok(self.conn.query_row("SELECT id FROM repositories WHERE name = ?1", [name], |r| r.get(0)).optional()?)
    }

    // Read then insert: one writer at a time makes this safe on SQLite.
    fn ensure_repository(&self, name: &RepoName) -> Result<RepoId, DbError> {
        if let Some(id) = self.repository_id(name)? {
            return Ok(id);
        }
        self.conn.execute("INSERT INTO repositories (name, created_at) VALUES (?1, ?2)", params![name, now_ms()])?;
        Ok(RepoId(self.conn.last_insert_rowid()))
    }

    fn list_repositories(&self, last: Option<&str>, limit: u32) -> Result<Vec<RepoName>, DbError> {
        let mut stmt = self.conn.prepare_cached("SELECT name FROM repositories WHERE name > ?1 ORDER BY name LIMIT ?2")?;
        let rows = stmt.query_map(params![last.unwrap_or(""), limit], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
