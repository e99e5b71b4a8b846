use super::{repo_id, text, unsigned, PgTx};
use crate::db::repositories::RepositoryCounts;
use crate::db::{now_ms, DbError, RepoId, Repositories};
use crate::domain::RepoName;

impl Repositories for PgTx<'_> {
    fn repository_id(&self, name: &RepoName) -> Result<Option<RepoId>, DbError> {
        self.query_opt("SELECT id FROM repositories WHERE name = $1", &[&name.as_str()])?.map(|r| repo_id(&r, 0)).transpose()
    }

    // Conflict-free on its own (ON CONFLICT on the unique name), and under
    // the writer lock besides.
    fn ensure_repository(&self, name: &RepoName) -> Result<RepoId, DbError> {
        if let Some(id) = self.repository_id(name)? {
            return Ok(id);
        }
        let inserted = self.query_opt(
            "INSERT INTO repositories (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING id",
            &[&name.as_str(), &now_ms()],
        )?;
        match inserted {
            Some(row) => repo_id(&row, 0),
            None => self.repository_id(name)?.ok_or(DbError::Corrupt("repositories")),
        }
    }

    fn list_repositories(&self, last: Option<&str>, limit: u32) -> Result<Vec<RepoName>, DbError> {
        let rows = self.query(
            "SELECT name FROM repositories WHERE name COLLATE \"C\" > $1 ORDER BY name COLLATE \"C\" LIMIT $2",
            &[&last.unwrap_or(""), &i64::from(limit)],
        )?;
        rows.iter().map(|r| text(r, 0, "repositories.name")).collect()
    }

    fn repository_counts(&self, names: &[RepoName]) -> Result<Vec<RepositoryCounts>, DbError> {
        let names: Vec<&str> = names.iter().map(RepoName::as_str).collect();
        let rows = self.query(
            "SELECT r.name, \
                    (SELECT count(*) FROM tags t WHERE t.repository_id = r.id), \
                    (SELECT count(*) FROM manifests m WHERE m.repository_id = r.id) \
             FROM repositories r WHERE r.name = ANY($1) ORDER BY r.name COLLATE \"C\"",
            &[&names],
        )?;
        rows.iter()
            .map(|r| {
                Ok(RepositoryCounts {
                    name: text(r, 0, "repositories.name")?,
                    tags: unsigned(r, 1, "tag count")?,
                    manifests: unsigned(r, 2, "manifest count")?,
                })
            })
            .collect()
    }
}
