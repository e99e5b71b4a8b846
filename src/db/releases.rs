//! `releases`: the append-only history of each stage.

use super::{DbError, RepoId};
pub use crate::domain::ReleaseRow;
use crate::domain::{Digest, ReleaseReason, Stage};

/// A release to append; the database adds its sequence number and time.
pub struct NewRelease<'a> {
    pub stage: &'a Stage,
    pub digest: &'a Digest,
    pub version: Option<&'a str>,
    pub note: Option<&'a str>,
    pub actor: &'a str,
    pub reason: ReleaseReason,
    pub rolled_back_from: Option<i64>,
    pub restored_sequence: Option<i64>,
}

/// Which digest a release of a stage holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseKey {
    pub stage: Stage,
    pub sequence: i64,
    pub digest: Digest,
}

pub trait Releases {
    /// Appends a release with the next sequence number of its stage: numbers
    /// of one stage are distinct and gap-free even under concurrent callers.
    fn append_release(&self, repo: RepoId, r: NewRelease<'_>) -> Result<ReleaseRow, DbError>;
    /// The newest release of the stage.
    fn current_release(&self, repo: RepoId, stage: &Stage) -> Result<Option<ReleaseRow>, DbError>;
    fn release(&self, repo: RepoId, stage: &Stage, sequence: i64) -> Result<Option<ReleaseRow>, DbError>;
    /// The first time `digest` was released to `stage`, if ever.
    fn first_release_of(&self, repo: RepoId, stage: &Stage, digest: &Digest) -> Result<Option<ReleaseRow>, DbError>;
    /// Releases of a stage below `before` (newest first), at most `limit`.
    fn list_releases(&self, repo: RepoId, stage: &Stage, before: Option<i64>, limit: u32) -> Result<Vec<ReleaseRow>, DbError>;
    /// Every release of a repository.
    fn all_releases(&self, repo: RepoId) -> Result<Vec<ReleaseKey>, DbError>;
}
