//! Registry use-cases: one function per thing a client does (upload a blob,
//! put a manifest, list tags, ...).
//!
//! Layering: called by `api`; calls `db` and `storage`, never the other way
//! round. Inputs are validated domain types; outputs are plain structs that
//! `api` renders. A state change is written to the database only after the
//! bytes it describes are in place, so nothing half-written is ever visible.

pub mod audit;
pub mod blobs;
pub mod diff;
pub mod error;
pub mod gc;
pub mod listing;
pub mod manifests;
pub mod promotion;
mod protection;
pub mod referrers;
pub mod retention;
mod rollback;
pub mod uploads;

use std::sync::Arc;

/// A local blob file to serve; the transport (`server::sendfile`) sends it
/// zero-copy without reaching into `storage`.
pub use crate::storage::LocalFile;
pub use error::RegistryError;

use crate::config::{GcConfig, RegistryConfig, RetentionConfig};
use crate::db::{self, audit::NewAuditEntry, Db};
use crate::domain::{Actor, AuditAction};
use crate::governance::Policy;
use crate::storage::BlobStore;

/// The transaction a use-case's queries run in (inside `Db::read` / `Db::write`).
/// The one place `registry` names the engine's type, until `db::Tx` replaces it.
pub(crate) type Tx = rusqlite::Connection;

/// The result of a write that governance may refuse. A refusal is an `Ok`
/// of the transaction, so the audit row recording it is committed.
pub(crate) type Decided<T> = Result<T, RegistryError>;

#[derive(Clone)]
pub struct Registry {
    pub(crate) db: Db,
    pub(crate) blobs: BlobStore,
    pub(crate) config: Arc<RegistryConfig>,
    pub(crate) policy: Arc<Policy>,
    pub(crate) maintenance: Arc<Maintenance>,
}

/// What cleanup may delete and when: retention policies and GC settings.
#[derive(Debug, Clone, Default)]
pub struct Maintenance {
    pub retention: RetentionConfig,
    pub gc: GcConfig,
}

impl Registry {
    pub fn new(db: Db, blobs: BlobStore, config: RegistryConfig, policy: Policy, maintenance: Maintenance) -> Self {
        Self { db, blobs, config: Arc::new(config), policy: Arc::new(policy), maintenance: Arc::new(maintenance) }
    }

    pub fn maintenance(&self) -> &Maintenance {
        &self.maintenance
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }
}

/// Records a refused request in the audit log and returns the refusal.
pub(crate) fn deny(
    tx: &rusqlite::Connection,
    actor: &Actor,
    repository: &str,
    reference: Option<&str>,
    reason: String,
) -> Result<RegistryError, RegistryError> {
    db::audit::append(
        tx,
        NewAuditEntry {
            actor,
            action: AuditAction::AccessDenied,
            repository: Some(repository),
            reference,
            digest: None,
            details: serde_json::json!({ "reason": reason }),
        },
    )?;
    tracing::warn!(actor = %actor.name, repository, reference, reason, "denied");
    Ok(RegistryError::Denied(reason))
}

/// Appends an audit row for a change, inside the change's transaction.
pub(crate) fn audit(
    tx: &rusqlite::Connection,
    actor: &Actor,
    action: AuditAction,
    repository: &str,
    reference: Option<&str>,
    digest: &str,
    details: serde_json::Value,
) -> Result<(), RegistryError> {
    db::audit::append(tx, NewAuditEntry { actor, action, repository: Some(repository), reference, digest: Some(digest), details })?;
    Ok(())
}
