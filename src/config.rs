//! Configuration: one serde struct, layered defaults → TOML file → `WHARF_*`
//! environment (sections split by `__`) → command-line flags, then validated.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Holds the SQLite database and, for the filesystem backend, the blobs.
    pub data_dir: PathBuf,
    pub registry: RegistryConfig,
    pub storage: StorageConfig,
    pub database: DatabaseConfig,
    pub server: ServerConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// Allow DELETE of manifests, tags and blobs (405 UNSUPPORTED when off).
    pub allow_delete: bool,
    /// Largest manifest accepted, in bytes (the spec's suggested 4 MiB).
    pub max_manifest_bytes: usize,
    /// Largest blob accepted, in bytes.
    pub max_blob_bytes: u64,
    /// Cap on `n` for tags list, catalog and referrers pages.
    pub max_page_size: u32,
    /// Page size when the client gives no `n`.
    pub default_page_size: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Filesystem,
    S3,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub backend: Backend,
    /// Filesystem root; defaults to `<data_dir>/blobs`.
    pub path: Option<PathBuf>,
    pub s3: S3Config,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Path-style URLs (`endpoint/bucket/key`), which most S3-compatible servers need.
    pub path_style: bool,
    /// Permit plain-HTTP endpoints (loopback test servers, private networks).
    pub allow_http: bool,
    /// Key prefix inside the bucket, so several registries can share one.
    pub prefix: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// SQLite file; defaults to `<data_dir>/wharf.db`.
    pub path: Option<PathBuf>,
    /// Read connections kept open beside the single writer.
    pub read_connections: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// How long in-flight requests may run after a shutdown signal.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter such as `info` or `wharf=debug,info`.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
            data_dir: PathBuf::from("./data"),
            registry: RegistryConfig::default(),
            storage: StorageConfig::default(),
            database: DatabaseConfig::default(),
            server: ServerConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            allow_delete: true,
            max_manifest_bytes: 4 * 1024 * 1024,
            max_blob_bytes: 64 * 1024 * 1024 * 1024,
            max_page_size: 1000,
            default_page_size: 100,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self { backend: Backend::Filesystem, path: None, s3: S3Config { path_style: true, region: "us-east-1".into(), ..Default::default() } }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { path: None, read_connections: 4 }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self { workers: 0, shutdown_timeout: Duration::from_secs(30) }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { level: "info".into(), format: "text".into() }
    }
}

/// Values given on the command line; they win over every other layer.
#[derive(Debug, Default, Serialize)]
pub struct CliOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

const TOP_LEVEL_KEYS: &[&str] = &["listen", "data_dir", "registry", "storage", "database", "server", "log"];

impl Config {
    pub fn load(file: Option<&Path>, cli: CliOverrides) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Invalid(format!("config file {} not found", file.display())));
            }
            fig = fig.merge(Toml::file(file));
        }
        // Only WHARF_ variables naming a config section are config; others
        // (WHARF_ADMIN_PASSWORD, test-harness variables) are read elsewhere.
        let env = Env::prefixed("WHARF_").split("__").filter(|key| {
            let section = key.as_str().split(".").next().unwrap_or_default();
            TOP_LEVEL_KEYS.iter().any(|k| section.eq_ignore_ascii_case(k))
        });
        let fig = fig
            .merge(env)
            .merge(Serialized::defaults(cli));
        let config: Config = fig.extract().map_err(|e| ConfigError::Load(Box::new(e)))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let r = &self.registry;
        if r.max_page_size == 0 || r.default_page_size == 0 || r.default_page_size > r.max_page_size {
            return Err(ConfigError::Invalid("registry: need 0 < default_page_size <= max_page_size".into()));
        }
        if r.max_manifest_bytes == 0 || r.max_manifest_bytes > 64 * 1024 * 1024 {
            return Err(ConfigError::Invalid("registry.max_manifest_bytes must be within 1..=64 MiB".into()));
        }
        if self.storage.backend == Backend::S3 && self.storage.s3.bucket.is_empty() {
            return Err(ConfigError::Invalid("storage.s3.bucket is required for the s3 backend".into()));
        }
        if self.database.read_connections == 0 {
            return Err(ConfigError::Invalid("database.read_connections must be at least 1".into()));
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(ConfigError::Invalid("log.format must be `text` or `json`".into()));
        }
        Ok(())
    }

    pub fn database_path(&self) -> PathBuf {
        self.database.path.clone().unwrap_or_else(|| self.data_dir.join("wharf.db"))
    }

    pub fn blob_path(&self) -> PathBuf {
        self.storage.path.clone().unwrap_or_else(|| self.data_dir.join("blobs"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().expect("valid");
    }

    #[test]
    fn rejects_bad_page_sizes() {
        let mut c = Config::default();
        c.registry.default_page_size = 5000;
        assert!(c.validate().is_err());
    }
}
