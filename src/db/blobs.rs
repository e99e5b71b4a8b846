//! `blobs` (bytes in place) and `repository_blobs` (where they may be served).

use super::{DbError, RepoId};
use crate::domain::Digest;

pub trait Blobs {
    /// Size of a blob whose bytes are in storage, if any.
    fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, DbError>;
    /// Records that the blob's bytes are at its content address (no-op if known).
    fn insert_blob(&self, digest: &Digest, size: u64) -> Result<(), DbError>;
    /// Lets the repository serve the blob (no-op if it already may).
    fn link_blob(&self, repo: RepoId, digest: &Digest) -> Result<(), DbError>;
    /// Size of the blob if the repository may serve it.
    fn linked_blob_size(&self, repo: RepoId, digest: &Digest) -> Result<Option<u64>, DbError>;
    /// Removes the repository's link; the bytes stay until garbage collection.
    fn unlink_blob(&self, repo: RepoId, digest: &Digest) -> Result<bool, DbError>;
    /// Repositories that may serve the blob, in id order.
    fn repositories_linking(&self, digest: &Digest) -> Result<Vec<RepoId>, DbError>;
}
