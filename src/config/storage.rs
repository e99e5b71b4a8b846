//! `[storage.filesystem]`, and the one start-up check that needs both the
//! storage and the database settings: blobs on a node's own disk cannot
//! serve several nodes.

use serde::{Deserialize, Serialize};

use super::{Backend, Config, ConfigError};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesystemConfig {
    /// The blob directory is one every node mounts (e.g. NFS). Required with
    /// PostgreSQL, where several nodes may share the metadata: a blob one
    /// node wrote to its own disk would be missing on the others.
    pub shared: bool,
}

impl Config {
    /// What `wharf serve` refuses beyond [`Config::validate`]: a node-local
    /// blob directory under metadata other nodes may share.
    pub fn validate_for_serving(&self) -> Result<(), ConfigError> {
        if self.postgres_url().is_some() && self.storage.backend == Backend::Filesystem && !self.storage.filesystem.shared {
            return Err(ConfigError::Invalid(format!(
                "storage.backend = \"filesystem\" with database.url (PostgreSQL): several nodes share the metadata, but the blobs \
                 in {} are on this node only. Use storage.backend = \"s3\", or, only on a filesystem every node mounts (e.g. NFS), \
                 set storage.filesystem.shared = true",
                self.blob_path().display()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filesystem_blobs_under_postgres_need_the_shared_flag() {
        let mut c = Config::default();
        c.validate_for_serving().expect("SQLite and the filesystem");
        c.database.url = Some("postgres://db/wharf".into());
        let err = c.validate_for_serving().unwrap_err().to_string();
        assert!(err.contains("storage.filesystem.shared = true") && err.contains("storage.backend = \"s3\""), "{err}");
        c.storage.filesystem.shared = true;
        c.validate_for_serving().expect("declared shared");
        c.storage.filesystem.shared = false;
        c.storage.backend = Backend::S3;
        c.validate_for_serving().expect("S3");
    }
}
