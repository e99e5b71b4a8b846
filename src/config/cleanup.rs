//! `[retention]` and `[gc]`: what cleanup may delete, and when it runs.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::{RepoGlob, TagPattern};

/// Retention: which manifests and tags cleanup may delete. Whatever the
/// policies say, releases inside the rollback window, immutable tags' targets
/// and everything a kept manifest needs are kept (governance/retention.rs).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    pub policies: Vec<RetentionPolicyConfig>,
    /// Run retention this often; none: only on demand.
    #[serde(with = "humantime_serde")]
    pub schedule: Option<Duration>,
}

/// One policy; several may match a repository, and a manifest or tag is
/// kept if any of them keeps it. `repositories` is required: a policy with
/// no scope is a mistake, not "everything".
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicyConfig {
    #[serde(default)]
    pub name: String,
    /// Repository glob (`team-a/*`, `**`).
    pub repositories: RepoGlob,
    /// Keep the N most recently pushed tags.
    #[serde(default)]
    pub keep_last: Option<u32>,
    /// Keep tags matching any of these regular expressions.
    #[serde(default)]
    pub keep_tags: Vec<TagPattern>,
    /// Keep tags and manifests pushed within this long.
    #[serde(default, with = "humantime_serde")]
    pub keep_within: Option<Duration>,
    /// Delete manifests untagged for longer than this.
    #[serde(default, with = "humantime_serde")]
    pub delete_untagged_after: Option<Duration>,
}

impl RetentionPolicyConfig {
    /// A policy over `repositories` that keeps or deletes nothing yet.
    pub fn new(name: impl Into<String>, repositories: RepoGlob) -> Self {
        Self { name: name.into(), repositories, keep_last: None, keep_tags: vec![], keep_within: None, delete_untagged_after: None }
    }
}

/// Garbage collection of unreferenced blobs and abandoned uploads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GcConfig {
    /// A blob pushed (or re-pushed, or mounted) within this long is never collected.
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
    /// Upload sessions idle for longer than this are removed with their parts.
    #[serde(with = "humantime_serde")]
    pub upload_max_age: Duration,
    /// Run GC this often; none: only on demand.
    #[serde(with = "humantime_serde")]
    pub schedule: Option<Duration>,
    /// Blobs decided and deleted per transaction.
    pub batch_size: u32,
    /// End each run by listing the store for objects no row accounts for;
    /// off for very large S3 buckets where a full listing per run costs.
    pub sweep_strays: bool,
}

impl Default for GcConfig {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(3600),
            upload_max_age: Duration::from_secs(24 * 3600),
            schedule: None,
            batch_size: 500,
            sweep_strays: true,
        }
    }
}
