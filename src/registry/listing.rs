//! Tags list and catalog, paginated with `n` / `last`.

use super::{Registry, RegistryError};
use crate::db::repositories::RepositoryCounts;
use crate::domain::RepoName;

/// Names counted by one query; a longer list takes several.
const COUNTED_PER_QUERY: usize = 100;

/// One page of names, and whether more follow.
pub struct Page {
    pub items: Vec<String>,
    pub has_more: bool,
}

impl Page {
    /// Splits a query that fetched `limit + 1` rows into a page.
    fn from_rows(mut rows: Vec<String>, limit: u32) -> Self {
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        Self { items: rows, has_more }
    }
}

impl Registry {
    /// `GET /v2/<name>/tags/list?n=&last=`; `n` must already be capped.
    pub async fn list_tags(&self, repo: &RepoName, last: Option<String>, n: u32) -> Result<Page, RegistryError> {
        let name = repo.clone();
        self.db
            .read(move |tx| -> Result<Page, RegistryError> {
                let repo_id = tx.repository_id(&name)?.ok_or_else(|| RegistryError::NameUnknown(name.to_string()))?;
                if n == 0 {
                    return Ok(Page { items: vec![], has_more: false });
                }
                let rows = tx.list_tags(repo_id, last.as_deref(), n + 1)?.iter().map(ToString::to_string).collect();
                Ok(Page::from_rows(rows, n))
            })
            .await
    }

    /// `GET /v2/_catalog?n=&last=`.
    pub async fn catalog(&self, last: Option<String>, n: u32) -> Result<Page, RegistryError> {
        if n == 0 {
            return Ok(Page { items: vec![], has_more: false });
        }
        self.db
            .read(move |tx| -> Result<Page, RegistryError> {
                let rows = tx.list_repositories(last.as_deref(), n + 1)?.iter().map(ToString::to_string).collect();
                Ok(Page::from_rows(rows, n))
            })
            .await
    }

    /// Tag and manifest counts of a page of repositories, in name order;
    /// names that do not exist are left out.
    pub async fn repository_counts(&self, names: Vec<RepoName>) -> Result<Vec<RepositoryCounts>, RegistryError> {
        self.db
            .read(move |tx| -> Result<Vec<RepositoryCounts>, RegistryError> {
                let mut counts = Vec::with_capacity(names.len());
                for chunk in names.chunks(COUNTED_PER_QUERY) {
                    counts.extend(tx.repository_counts(chunk)?);
                }
                Ok(counts)
            })
            .await
    }
}
