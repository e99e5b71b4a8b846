//! Registry use-cases: one function per thing a client does (upload a blob,
//! put a manifest, list tags, ...).
//!
//! Layering: called by `api`; calls `db` and `storage`, never the other way
//! round. Inputs are validated domain types; outputs are plain structs that
//! `api` renders. A state change is written to the database only after the
//! bytes it describes are in place, so nothing half-written is ever visible.

pub mod audit;
pub mod backup;
pub mod blobs;
pub mod diff;
pub mod error;
pub mod events;
pub mod gc;
pub mod inspect;
pub mod listing;
pub mod manifests;
mod measure;
pub mod promotion;
mod protection;
mod read_cache;
pub mod referrers;
mod release_diff;
pub mod retention;
mod rollback;
mod runs;
pub mod signatures;
pub mod uploads;

use std::sync::Arc;

/// Blob body types and a local blob file to serve: `api` and the transport
/// (`server::sendfile`) take them from here, never from `storage`.
pub use crate::storage::{BlobBody, BodyStream, LocalFile};
pub use error::RegistryError;
pub use runs::{LeaseState, RunTrigger};

use crate::config::backup::BackupConfig;
use crate::config::{GcConfig, RegistryConfig, RetentionConfig, S3Config};
use serde_json::json;

use crate::db::Db;
use crate::domain::{Actor, AuditAction, AuditEntry};
use crate::governance::Policy;
use crate::storage::BlobStore;

/// The transaction a use-case's queries run in (inside `Db::read` / `Db::write`).
pub(crate) use crate::db::Tx;

#[derive(Clone)]
pub struct Registry {
    pub(crate) db: Db,
    pub(crate) blobs: BlobStore,
    pub(crate) config: Arc<RegistryConfig>,
    pub(crate) policy: Arc<Policy>,
    pub(crate) maintenance: Arc<Maintenance>,
    pub(crate) diff: Arc<diff::DiffSettings>,
    /// The manifest read path's caches (see [`read_cache`]).
    pub(crate) reads: Arc<read_cache::ReadCache>,
}

/// What cleanup may delete and when (retention policies and GC settings),
/// scheduled backups with the S3 settings an `s3://` destination uses, and
/// the webhook endpoints of durable events.
#[derive(Debug, Clone, Default)]
pub struct Maintenance {
    pub retention: RetentionConfig,
    pub gc: GcConfig,
    pub backup: BackupConfig,
    pub backup_s3: S3Config,
    /// Webhook endpoints (the dispatcher in `events`; replay checks names here).
    pub events: crate::config::events::EventsConfig,
    /// `node.id`: holds this process's job leases, named in run audit rows.
    pub node_id: String,
}

impl Registry {
    pub fn new(db: Db, blobs: BlobStore, config: RegistryConfig, policy: Policy, maintenance: Maintenance) -> Self {
        Self {
            db,
            blobs,
            config: Arc::new(config),
            policy: Arc::new(policy),
            maintenance: Arc::new(maintenance),
            diff: Arc::new(diff::DiffSettings::new(Default::default())),
            reads: Arc::default(),
        }
    }

    /// The bounds of image diff (`[diff]`), default ones until set.
    pub fn with_diff(mut self, config: crate::config::diff::DiffConfig) -> Self {
        self.diff = Arc::new(diff::DiffSettings::new(config));
        self
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

/// What a write that policy may refuse did. A refusal is built by [`refuse`]
/// (or [`deny`]), which records its audit row first.
pub(crate) enum Outcome<T> {
    Done(T),
    Refused(RegistryError),
}

/// Runs a write that policy may refuse. The transaction commits on
/// `Refused` as on `Done`, so a refusal keeps its audit row; the refusal is
/// then returned as the error. Any `Err` rolls everything back.
pub(crate) async fn audited_write<T, F>(db: &Db, write: F) -> Result<T, RegistryError>
where
    T: Send + 'static,
    F: FnOnce(&dyn Tx) -> Result<Outcome<T>, RegistryError> + Send + 'static,
{
    match db.write(move |tx| write(tx)).await? {
        Outcome::Done(value) => Ok(value),
        Outcome::Refused(refusal) => Err(refusal),
    }
}

/// Appends an audit row for a change, inside the change's transaction, and
/// when the change is an event, its outbox row in the same transaction: an
/// event is announced if and only if its change committed.
pub(crate) fn record(tx: &dyn Tx, entry: &AuditEntry) -> Result<(), RegistryError> {
    let id = tx.append_audit(entry)?;
    if let Some(event_type) = crate::domain::event_type(entry.action, &entry.details) {
        tx.enqueue_event(id, event_type, entry.repository.as_deref().unwrap_or_default())?;
    }
    Ok(())
}

/// Records the refusal's audit row and returns the refusal as the outcome of
/// an [`audited_write`].
pub(crate) fn refuse<T>(tx: &dyn Tx, entry: AuditEntry, refusal: RegistryError) -> Result<Outcome<T>, RegistryError> {
    record(tx, &entry)?;
    tracing::warn!(actor = %entry.actor.name, action = entry.action.as_str(), repository = entry.repository, reference = entry.reference, reason = %refusal, "refused");
    Ok(Outcome::Refused(refusal))
}

/// A request refused by access policy (stage, immutable or protected
/// content): an `access.denied` row with the reason, and `Denied`.
pub(crate) fn deny<T>(
    tx: &dyn Tx,
    actor: &Actor,
    repository: &str,
    reference: Option<&str>,
    reason: String,
) -> Result<Outcome<T>, RegistryError> {
    let entry =
        AuditEntry::new(actor, AuditAction::AccessDenied).repository(repository).reference(reference).details(json!({ "reason": reason }));
    refuse(tx, entry, RegistryError::Denied(reason))
}
