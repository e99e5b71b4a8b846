//! `blob_claims` and `gc_pending`: how garbage collection and uploads agree
//! on a digest without a global lock. Every decision is re-checked inside
//! the single-writer transaction that acts on it.

use super::DbError;
use crate::domain::{Digest, UploadId};

/// Garbage collection's bookkeeping (`blob_claims`, `gc_pending`, and what
/// it reads of `blobs` and `uploads`). An engine with several writers must
/// keep `claim_blob` and `gc_take` exclusive of each other for one digest
/// (PostgreSQL: lock the `blobs` row), so that a manifest PUT referencing a
/// blob either sees it intact or finds it gone, never half-deleted.
///
/// While a backup's fence is live ([`Backups`](super::Backups)), no blob is
/// taken (`gc_candidates` is empty, `gc_take` and `take_stray` refuse): the
/// blobs of the backup's snapshot stay until they are copied.
pub trait Gc {
    /// Claims `digest` for an upload about to place its bytes. False while
    /// GC is deleting that digest's bytes: the caller waits and tries again.
    fn claim_blob(&self, claim_id: &str, digest: &Digest) -> Result<bool, DbError>;
    fn release_claim(&self, claim_id: &str) -> Result<(), DbError>;
    /// Whether the digest's bytes are being deleted.
    fn gc_is_pending(&self, digest: &Digest) -> Result<bool, DbError>;
    /// Marks a blob as just pushed, so the grace period starts again.
    fn touch_blob(&self, digest: &Digest) -> Result<(), DbError>;
    /// Blobs no manifest references, pushed before `cutoff`, without a claim
    /// newer than `claims_since`; at most `limit`, in digest order after `after`.
    fn gc_candidates(&self, after: &str, cutoff: i64, claims_since: i64, limit: u32) -> Result<Vec<(Digest, u64)>, DbError>;
    /// Re-checks a candidate; if it still qualifies, unlists it everywhere
    /// and records it as pending deletion. Returns its size if taken.
    fn gc_take(&self, digest: &Digest, cutoff: i64, claims_since: i64) -> Result<Option<u64>, DbError>;
    /// Blobs whose deletion is under way (or was cut short by a crash).
    fn gc_pending(&self, limit: u32) -> Result<Vec<(Digest, u64)>, DbError>;
    fn gc_finish(&self, digest: &Digest) -> Result<(), DbError>;
    /// Drops claims older than `before` (their uploads died); returns how many.
    fn drop_stale_claims(&self, before: i64) -> Result<usize, DbError>;
    /// Upload sessions idle since before `before`, with their part keys.
    fn stale_uploads(&self, before: i64, limit: u32) -> Result<Vec<(UploadId, Vec<String>)>, DbError>;
    /// Deletes an upload session if it is still idle since before `before`.
    fn delete_stale_upload(&self, id: &UploadId, before: i64) -> Result<bool, DbError>;
    /// Whether bytes at `digest`'s address belong to something: a blob row,
    /// a deletion under way, or a claim newer than `claims_since`.
    fn stray_is_known(&self, digest: &Digest, claims_since: i64) -> Result<bool, DbError>;
    /// Re-checks stray bytes and records them as pending deletion.
    fn take_stray(&self, digest: &Digest, size: u64, claims_since: i64) -> Result<bool, DbError>;
    fn upload_exists(&self, id: &UploadId) -> Result<bool, DbError>;
}
