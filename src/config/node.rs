//! `[node]`: this process's name among the nodes that share one database.
//! It holds a scheduled job's lease (`job_leases`) and is recorded as the
//! `holder` of each GC and retention run's audit row.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Longest `node.id`, in bytes: it is stored in every run's audit row.
const MAX_ID_LEN: usize = 128;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Unique per running process; default `<hostname>:<pid>`. Two processes
    /// with the same id would both believe they hold a lease.
    pub id: String,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self { id: format!("{}:{}", hostname(), std::process::id()) }
    }
}

/// The kernel's host name; `localhost` where it cannot be read (the pid
/// still sets processes on one host apart).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

impl NodeConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let id = &self.id;
        if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(ConfigError::Invalid(format!(
                "node.id must be 1 to {MAX_ID_LEN} bytes without spaces or control characters, got {id:?}"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_host_and_process_and_bad_ids_are_refused() {
        let default = NodeConfig::default();
        default.validate().unwrap();
        assert!(default.id.ends_with(&format!(":{}", std::process::id())), "{}", default.id);
        for bad in ["", "a b", "tab\there", &"x".repeat(MAX_ID_LEN + 1)] {
            assert!(NodeConfig { id: bad.to_owned() }.validate().is_err(), "{bad:?} accepted");
        }
        NodeConfig { id: "wharf-a".into() }.validate().unwrap();
    }
}
