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
}
