//! `layer_index`: each layer's file index, stored once per digest by image
//! diff. The encoding of `entries` belongs to the caller; this table only
//! keeps the bytes.

use super::DbError;
use crate::domain::Digest;

/// Each layer's file index, stored once per digest (image diff).
pub trait LayerIndex {
    fn layer_index(&self, digest: &Digest) -> Result<Option<Vec<u8>>, DbError>;
    /// Records a layer's index; the first of concurrent writers wins.
    fn insert_layer_index(&self, digest: &Digest, entry_count: u64, total_size: u64, entries: &[u8]) -> Result<(), DbError>;
    fn layer_index_count(&self) -> Result<u64, DbError>;
}
