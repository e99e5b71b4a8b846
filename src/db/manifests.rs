//! `manifests` and `manifest_references` tables.

use super::{DbError, RepoId};
use crate::domain::Digest;

/// What a manifest points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    Blob,
    Manifest,
}

impl RefKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RefKind::Blob => "blob",
            RefKind::Manifest => "manifest",
        }
    }
}

/// A manifest as stored: the exact bytes plus what was extracted from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub digest: Digest,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub subject: Option<Digest>,
    /// JSON object text of the manifest's annotations, if any.
    pub annotations: Option<String>,
    pub content: Vec<u8>,
}

/// What a HEAD needs, without the content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    pub media_type: String,
    pub size: u64,
}

/// A manifest whose `subject` is the queried digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    pub digest: Digest,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub annotations: Option<String>,
    pub size: u64,
}

/// What the retention planner needs of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFacts {
    pub digest: Digest,
    pub created_at: i64,
    pub subject: Option<Digest>,
}

/// What one manifest references.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestRefs {
    /// Child manifests (of an index), in digest order.
    pub children: Vec<Digest>,
    /// Blobs (config and layers), in digest order.
    pub blobs: Vec<Digest>,
}

pub trait Manifests {
    fn manifest(&self, repo: RepoId, digest: &Digest) -> Result<Option<Manifest>, DbError>;
    fn manifest_head(&self, repo: RepoId, digest: &Digest) -> Result<Option<ManifestHead>, DbError>;
    /// Stores the manifest and its references unless it is already there;
    /// returns whether it was new.
    fn insert_manifest(&self, repo: RepoId, m: &Manifest, references: &[(Digest, RefKind)], pushed_by: &str) -> Result<bool, DbError>;
    /// Who pushed the manifest first, if recorded.
    fn manifest_pushed_by(&self, repo: RepoId, digest: &Digest) -> Result<Option<String>, DbError>;
    /// Deletes the manifest and its references; tags must be removed first.
    fn delete_manifest(&self, repo: RepoId, digest: &Digest) -> Result<bool, DbError>;
    /// Manifests whose subject is `subject`, oldest first, at most `limit`.
    fn referrers(&self, repo: RepoId, subject: &Digest, limit: u32) -> Result<Vec<Referrer>, DbError>;
    /// Digests of the manifests whose subject is `subject`, in digest order.
    fn referrer_digests(&self, repo: RepoId, subject: &Digest) -> Result<Vec<Digest>, DbError>;
    /// Every manifest of a repository, for the retention planner.
    fn manifest_facts(&self, repo: RepoId) -> Result<Vec<ManifestFacts>, DbError>;
    /// Every (index, child manifest) edge of a repository.
    fn manifest_children(&self, repo: RepoId) -> Result<Vec<(Digest, Digest)>, DbError>;
    fn manifest_references(&self, repo: RepoId, digest: &Digest) -> Result<ManifestRefs, DbError>;
}
