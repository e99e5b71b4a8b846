//! `tags` and `tag_history`: where each tag points, and every digest it pointed to.

use super::{DbError, RepoId};
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
