//! Validated domain types, built once at the HTTP edge.
//!
//! Code inside the crate takes these newtypes and never re-validates a raw
//! string. Nothing here touches the database or storage.

mod account;
mod audit;
mod diff_ref;
mod digest;
mod event;
mod ids;
mod media_type;
mod names;
mod patterns;
mod release;

pub use account::{AccountKind, Role, UnknownAccountKind};
pub use audit::{Actor, AuditAction, AuditEntry, AuditField, AuditFilter, AuditRecord, StoredAudit, GENESIS_HASH};
pub use diff_ref::{ImageRef, InvalidDiffInput, Platform};
pub use digest::{Algorithm, Digest, DigestHasher};
pub use event::{event_type, EVENT_TYPES};
pub use ids::{InvalidUploadId, Stage, UploadId};
pub use media_type::{is_foreign_layer, MediaType, UnsupportedMediaType};
pub use names::{Reference, RepoName, Tag};
pub use patterns::{InvalidPattern, RepoGlob, TagPattern};
pub use release::{ReleaseReason, ReleaseRow};

/// The current time in Unix milliseconds, the unit every stored timestamp uses.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A client-supplied value that does not match the OCI grammar.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum InvalidInput {
    #[error("invalid repository name: {0}")]
    Name(String),
    #[error("invalid tag: {0}")]
    Tag(String),
    #[error("invalid digest: {0}")]
    Digest(String),
}
