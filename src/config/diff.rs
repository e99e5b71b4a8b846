//! `[diff]`: the bounds of image diff (issue 16). A layer that exceeds one
//! is refused with 422 LAYER_INVALID naming the bound; a page size over the
//! cap is refused with 400.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiffConfig {
    /// Tar entries of one layer (whiteouts included).
    pub max_entries: usize,
    /// Sum of the sizes the entries of one layer declare, in bytes.
    pub max_layer_bytes: u64,
    /// Wall time for reading (indexing) one layer.
    #[serde(with = "humantime_serde")]
    pub max_layer_time: Duration,
    /// Bytes of one path or link target.
    pub max_path_len: usize,
    /// Largest package database (`/var/lib/dpkg/status`, `/lib/apk/db/installed`)
    /// read for the package diff; a larger one is left out of it.
    pub max_package_db_bytes: u64,
    /// Files per page when the client gives no `n`.
    pub default_page_size: u32,
    /// Largest `n`; a larger one is refused (400).
    pub max_page_size: u32,
    /// Compute the summary of each promotion's diff against the release it
    /// replaced, in the background after the promotion commits.
    pub release_summaries: bool,
    /// Wall time for one background release summary; past it the summary is
    /// recorded as unavailable.
    #[serde(with = "humantime_serde")]
    pub release_summary_time: Duration,
}

impl Default for DiffConfig {
    fn default() -> Self {
        Self {
            // A large real layer (node_modules, a distro's /usr) has ~100k files.
            max_entries: 500_000,
            max_layer_bytes: 32 << 30,
            max_layer_time: Duration::from_secs(300),
            max_path_len: 4096,
            max_package_db_bytes: 16 << 20,
            default_page_size: 1000,
            max_page_size: 10_000,
            release_summaries: true,
            release_summary_time: Duration::from_secs(900),
        }
    }
}

impl DiffConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(format!("diff: {m}")));
        if self.max_entries == 0 || self.max_layer_bytes == 0 || self.max_path_len < 256 {
            return invalid("max_entries and max_layer_bytes must be positive, max_path_len at least 256");
        }
        if self.max_layer_time.is_zero() || self.release_summary_time.is_zero() {
            return invalid("max_layer_time and release_summary_time must be positive");
        }
        if self.default_page_size == 0 || self.default_page_size > self.max_page_size {
            return invalid("need 0 < default_page_size <= max_page_size");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_refused() {
        DiffConfig::default().validate().unwrap();
        let bad = [
            DiffConfig { max_entries: 0, ..DiffConfig::default() },
            DiffConfig { max_path_len: 10, ..DiffConfig::default() },
            DiffConfig { max_layer_time: Duration::ZERO, ..DiffConfig::default() },
            DiffConfig { default_page_size: 20_000, ..DiffConfig::default() },
        ];
        for c in bad {
            assert!(matches!(c.validate(), Err(ConfigError::Invalid(m)) if m.starts_with("diff: ")), "{c:?}");
        }
    }
}
