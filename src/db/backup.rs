//! What a backup asks of the database: its fence against garbage
//! collection, the record of finished runs, and the reads that list and
//! check what a metadata snapshot references. The snapshot itself is
//! [`Db::snapshot_into`](super::Db::snapshot_into).

use super::DbError;
use crate::domain::{Digest, RepoName, Stage};

/// A finished backup, as recorded in `backup_runs`.
#[derive(Debug, Clone)]
pub struct BackupRun {
    pub id: String,
    pub finished_at: i64,
    pub destination: String,
    pub blobs: u64,
    pub bytes: u64,
    pub blobs_copied: u64,
    pub bytes_copied: u64,
}

/// A stage's current release and what points at it, for the restore check.
#[derive(Debug, Clone)]
pub struct StagePointer {
    pub repository: RepoName,
    pub stage: Stage,
    pub sequence: i64,
    pub digest: Digest,
    /// Whether the repository holds the release's manifest.
    pub manifest_present: bool,
    /// Where the stage's tag points (none if the tag is absent).
    pub tag_target: Option<Digest>,
}

/// The backup's queries. An engine with several writers must make
/// [`backup_fence_active`](Backups::backup_fence_active) and GC's taking of a
/// blob exclusive (a fence taken after GC re-checked a blob must still stop
/// it), as SQLite's single writer does.
pub trait Backups {
    /// Takes a fence that stops GC from taking any blob until `expires_at`
    /// (ms) or until it is released.
    fn take_backup_fence(&self, id: &str, expires_at: i64) -> Result<(), DbError>;
    fn release_backup_fence(&self, id: &str) -> Result<(), DbError>;
    /// Whether a fence is live at `now` (ms).
    fn backup_fence_active(&self, now: i64) -> Result<bool, DbError>;
    /// Drops every fence (a restored database has no backup under way).
    fn clear_backup_fences(&self) -> Result<usize, DbError>;
    fn record_backup(&self, run: &BackupRun) -> Result<(), DbError>;
    /// When the last backup finished (ms), if one did.
    fn last_backup_at(&self) -> Result<Option<i64>, DbError>;
    /// Every blob row with its size, in digest order after `after`; at most `limit`.
    fn all_blobs(&self, after: &str, limit: u32) -> Result<Vec<(Digest, u64)>, DbError>;
    /// Blobs a manifest references that have no blob row (at most `limit`):
    /// empty in a consistent database.
    fn referenced_blobs_without_row(&self, limit: u32) -> Result<Vec<Digest>, DbError>;
    /// Each stage's current release in every repository.
    fn stage_pointers(&self) -> Result<Vec<StagePointer>, DbError>;
    /// Counts for a backup's manifest: repositories, manifests, tags, releases.
    fn metadata_counts(&self) -> Result<MetadataCounts, DbError>;
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MetadataCounts {
    pub repositories: u64,
    pub manifests: u64,
    pub tags: u64,
    pub releases: u64,
    pub audit_rows: u64,
}
