//! `uploads` and `upload_parts`: resumable blob upload sessions.

use super::{DbError, RepoId};
use crate::domain::UploadId;

/// An upload session: how far it got and the hasher state at that point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub id: UploadId,
    pub repository: RepoId,
    pub size: u64,
    pub hasher_state: Vec<u8>,
    pub created_at: i64,
}

/// A part of an upload written to the object store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPart {
    pub object_key: String,
    pub size: u64,
}

pub trait Uploads {
    fn create_upload(&self, id: &UploadId, repo: RepoId, hasher_state: &[u8]) -> Result<(), DbError>;
    fn upload(&self, id: &UploadId) -> Result<Option<Upload>, DbError>;
    /// The upload's parts in the order they were appended.
    fn upload_parts(&self, id: &UploadId) -> Result<Vec<UploadPart>, DbError>;
    /// Records a written part, but only if the upload is still at
    /// `expected_size` (another request may have appended meanwhile); the
    /// part gets the next sequence number. Returns whether it won.
    fn append_upload_part(&self, id: &UploadId, expected_size: u64, part: &UploadPart, hasher_state: &[u8]) -> Result<bool, DbError>;
    /// Deletes the session and its parts' rows.
    fn delete_upload(&self, id: &UploadId) -> Result<bool, DbError>;
}
