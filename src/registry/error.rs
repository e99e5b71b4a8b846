//! What a registry use-case can refuse, and why. Mapped to HTTP once, in
//! `api::oci_error`.

use crate::db::DbError;
use crate::domain::InvalidInput;
use crate::governance::gates::GateFailure;
use crate::storage::{StorageError, WriteError};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error("repository {0} is not known")]
    NameUnknown(String),
    #[error("blob {0} is not known to this repository")]
    BlobUnknown(String),
    #[error("upload {0} is not known")]
    UploadUnknown(String),
    #[error("upload: {0}")]
    UploadInvalid(String),
    /// A chunk did not start where the upload ends.
    #[error("chunk starts at {requested}, but the upload holds {current} bytes")]
    RangeInvalid { current: u64, requested: u64 },
    #[error("the requested range is not satisfiable for a blob of {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    #[error("digest mismatch: the content hashes to {computed}, not {given}")]
    DigestMismatch { given: String, computed: String },
    #[error("manifest {0} is not known")]
    ManifestUnknown(String),
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    #[error("manifest references {0}, which this repository does not have")]
    ManifestBlobUnknown(String),
    #[error("{what} exceeds the limit of {limit} bytes")]
    TooLarge { what: &'static str, limit: u64 },
    #[error("deletes are disabled on this registry")]
    DeleteDisabled,
    /// Names the configured stages, so the caller sees what is allowed.
    #[error("unknown stage {stage:?}; the configured stages are {}", .known.join(", "))]
    StageUnknown { stage: String, known: Vec<String> },
    /// The message names what was asked and the failed gates; each gate's
    /// reason is said once, in `failed` (the error detail), not repeated here.
    #[error("cannot promote {subject} to {stage}: {}", gate_summary(.failed))]
    PromotionDenied { subject: String, stage: String, failed: Vec<GateFailure> },
    #[error("rollback refused: {0}")]
    RollbackDenied(String),
    #[error("invalid request: {0}")]
    BadRequest(String),
    /// Refused by a governance rule (stage tag, immutable tag, rollback
    /// target). The reason is the whole message: clients print the code
    /// (`denied:`) in front of it themselves.
    #[error("{0}")]
    Denied(String),
    #[error("request body: {0}")]
    Body(String),
    /// A conflict with background work that clears soon; the client retries.
    #[error("busy: {0}")]
    Busy(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// "failed gate order" / "failed gates min_soak, non_root": each gate once.
fn gate_summary(failed: &[GateFailure]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for name in failed.iter().map(GateFailure::gate) {
        if !names.contains(&name) {
            names.push(name); // one platform per line in `failed`, one name here
        }
    }
    let plural = if names.len() == 1 { "" } else { "s" };
    format!("failed gate{plural} {}", names.join(", "))
}

impl From<WriteError> for RegistryError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Body(e) => RegistryError::Body(e.to_string()),
            WriteError::TooLarge(limit) => RegistryError::TooLarge { what: "blob", limit },
            WriteError::Storage(e) => RegistryError::Storage(e),
        }
    }
}
