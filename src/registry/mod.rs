//! Registry use-cases: one function per thing a client does (upload a blob,
//! put a manifest, list tags, ...).
//!
//! Layering: called by `api`; calls `db` and `storage`, never the other way
//! round. Inputs are validated domain types; outputs are plain structs that
//! `api` renders. A state change is written to the database only after the
//! bytes it describes are in place, so nothing half-written is ever visible.

pub mod blobs;
pub mod error;
pub mod listing;
pub mod manifests;
pub mod referrers;
pub mod uploads;

use std::sync::Arc;

pub use error::RegistryError;

use crate::config::RegistryConfig;
use crate::db::Db;
use crate::storage::BlobStore;

#[derive(Clone)]
pub struct Registry {
    pub(crate) db: Db,
    pub(crate) blobs: BlobStore,
    pub(crate) config: Arc<RegistryConfig>,
}

impl Registry {
    pub fn new(db: Db, blobs: BlobStore, config: RegistryConfig) -> Self {
        Self { db, blobs, config: Arc::new(config) }
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }
}
