//! `layer_index`: each layer's file index, stored once per digest by image
//! diff. The encoding of `entries` belongs to the caller; this table only
//! keeps the bytes. `release_diff`: the diff summary of each promotion
//! against the release it replaced, kept apart from `releases` (which, like
//! the audit chain, never changes after the fact).

use super::{DbError, RepoId};
use crate::domain::{Digest, RepoName, Stage};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseDiffState {
    Pending,
    Ready,
    Unavailable,
}

impl ReleaseDiffState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseDiffState::Pending => "pending",
            ReleaseDiffState::Ready => "ready",
            ReleaseDiffState::Unavailable => "unavailable",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DbError> {
        match s {
            "pending" => Ok(ReleaseDiffState::Pending),
            "ready" => Ok(ReleaseDiffState::Ready),
            "unavailable" => Ok(ReleaseDiffState::Unavailable),
            _ => Err(DbError::Corrupt("release_diff.state")),
        }
    }
}

/// The diff summary of one release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseDiffRow {
    pub sequence: i64,
    pub state: ReleaseDiffState,
    /// The digest of the release it replaced.
    pub from_digest: Option<Digest>,
    /// JSON, when ready.
    pub summary: Option<String>,
    /// Why it is unavailable.
    pub reason: Option<String>,
    pub updated_at: i64,
}

/// A release whose summary is still pending (to resume after a restart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingReleaseDiff {
    pub repo: RepoName,
    pub stage: Stage,
    pub sequence: i64,
}

/// Each layer's file index, stored once per digest, and release summaries (image diff).
pub trait LayerIndex {
    fn layer_index(&self, digest: &Digest) -> Result<Option<Vec<u8>>, DbError>;
    /// Records a layer's index; the first of concurrent writers wins.
    fn insert_layer_index(&self, digest: &Digest, entry_count: u64, total_size: u64, entries: &[u8]) -> Result<(), DbError>;
    fn layer_index_count(&self) -> Result<u64, DbError>;
    /// Records (or replaces) the diff summary state of a release.
    fn set_release_diff(&self, repo: RepoId, stage: &Stage, row: &ReleaseDiffRow) -> Result<(), DbError>;
    /// The summaries recorded for these releases of a stage (absent ones are left out).
    fn release_diffs(&self, repo: RepoId, stage: &Stage, sequences: &[i64]) -> Result<Vec<ReleaseDiffRow>, DbError>;
    /// Every summary still pending, oldest first.
    fn pending_release_diffs(&self) -> Result<Vec<PendingReleaseDiff>, DbError>;
}
