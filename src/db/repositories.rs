//! `repositories` table.

use super::DbError;
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
    /// Tag and manifest counts of those of `names` that exist, in name
    /// order, from one query over the primary-key indexes (the console's
    /// repositories page asks once per page of names).
    fn repository_counts(&self, names: &[RepoName]) -> Result<Vec<RepositoryCounts>, DbError>;
}

/// How much one repository holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryCounts {
    pub name: RepoName,
    pub tags: u64,
    pub manifests: u64,
}
