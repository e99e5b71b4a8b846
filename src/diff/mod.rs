//! Image diff, the pure part: a layer's file index read from its tar stream
//! (`index`), layers merged with the OCI whiteout rules and two merged
//! filesystems compared (`files`), two image configurations compared
//! (`config`).
//!
//! Layering: like `governance`, this is pure logic under the use-cases. It
//! reads bytes it is handed (`std::io::Read`) and never touches the
//! database, storage or HTTP; `registry::diff` does that and calls in here.

pub mod config;
pub mod files;
pub mod index;
pub mod packages;

pub use files::{diff_files, merge_layers, FileChange, Merged};
pub use index::{index_layer, EntryKind, FileEntry, LayerError, LayerIndex, Limits};
