use rusqlite::{params, OptionalExtension};

use super::SqliteTx;
use crate::db::repositories::RepositoryCounts;
use crate::db::{now_ms, DbError, RepoId, Repositories};
use crate::domain::RepoName;

impl Repositories for SqliteTx<'_> {
    fn repository_id(&self, name: &RepoName) -> Result<Option<RepoId>, DbError> {
        Ok(self.conn.prepare_cached("SELECT id FROM repositories WHERE name = ?1")?.query_row([name], |r| r.get(0)).optional()?)
    }

    // Read then insert: one writer at a time makes this safe on SQLite.
    fn ensure_repository(&self, name: &RepoName) -> Result<RepoId, DbError> {
        if let Some(id) = self.repository_id(name)? {
            return Ok(id);
        }
        self.conn.prepare_cached("INSERT INTO repositories (name, created_at) VALUES (?1, ?2)")?.execute(params![name, now_ms()])?;
        Ok(RepoId(self.conn.last_insert_rowid()))
    }

    fn list_repositories(&self, last: Option<&str>, limit: u32) -> Result<Vec<RepoName>, DbError> {
        let mut stmt = self.conn.prepare_cached("SELECT name FROM repositories WHERE name > ?1 ORDER BY name LIMIT ?2")?;
        let rows = stmt.query_map(params![last.unwrap_or(""), limit], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn repository_counts(&self, names: &[RepoName]) -> Result<Vec<RepositoryCounts>, DbError> {
        // One statement for any number of names: they arrive as a JSON array.
        let names = serde_json::to_string(&names.iter().map(RepoName::as_str).collect::<Vec<_>>())
            .map_err(|_| DbError::Corrupt("repository names"))?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.name, \
                    (SELECT count(*) FROM tags t WHERE t.repository_id = r.id), \
                    (SELECT count(*) FROM manifests m WHERE m.repository_id = r.id) \
             FROM repositories r WHERE r.name IN (SELECT value FROM json_each(?1)) ORDER BY r.name",
        )?;
        let rows = stmt.query_map([names], |r| Ok((r.get::<_, RepoName>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))?;
        rows.map(|row| {
            let (name, tags, manifests) = row?;
            let count = |v: i64| u64::try_from(v).map_err(|_| DbError::Corrupt("repository counts"));
            Ok(RepositoryCounts { name, tags: count(tags)?, manifests: count(manifests)? })
        })
        .collect()
    }
}
