//! Configuration: one serde struct, layered defaults → TOML file → `WHARF_*`
//! environment (sections split by `__`) → command-line flags, then validated.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::domain::{RepoGlob, TagPattern};

pub mod backup;
mod cleanup;
pub use self::cleanup::{GcConfig, RetentionConfig, RetentionPolicyConfig};
mod database;
pub mod metrics;
pub use self::metrics::{HealthConfig, MetricsConfig};
/// `[diff]`, the bounds of image diff, in its own file.
pub mod diff;
/// `[events]`, webhook endpoints of durable events, in its own file.
pub mod events;
/// `[node]`, this process's id among the nodes of one database.
pub mod node;
/// `server.trusted_proxies`: whose `X-Forwarded-For` names the client.
pub mod proxies;
/// Signed promotions: trusted keys and the signature gate (its own file).
pub mod signatures;
/// `[storage.filesystem]` and the multi-node storage check.
mod storage;
pub use self::storage::FilesystemConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {}", describe_load_error(.0))]
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
    pub governance: GovernanceConfig,
    pub auth: AuthConfig,
    pub retention: RetentionConfig,
    pub gc: GcConfig,
    pub backup: backup::BackupConfig,
    pub metrics: MetricsConfig,
    pub health: HealthConfig,
    pub diff: diff::DiffConfig,
    pub events: events::EventsConfig,
    pub node: node::NodeConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Require credentials. Off only for local use: the log says so loudly.
    pub enabled: bool,
    /// Lifetime of registry bearer tokens.
    #[serde(with = "humantime_serde")]
    pub token_ttl: Duration,
    /// The token-signing secret; default `<data_dir>/token.key`, created on
    /// first start. Instances serving one registry must share it.
    pub token_key_file: Option<PathBuf>,
    /// External base URL of the token realm (e.g. `https://wharf.example`);
    /// default: derived from each request's scheme and Host.
    pub realm: Option<String>,
    /// Repository globs anyone may pull without credentials.
    pub anonymous_pull: Vec<RepoGlob>,
    /// Failed logins per account (4× per source address) before lock-out.
    pub max_failed_logins: u32,
    /// How long the failure count lasts (and so the lock-out).
    #[serde(with = "humantime_serde")]
    pub lockout: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            token_ttl: Duration::from_secs(300),
            token_key_file: None,
            realm: None,
            anonymous_pull: vec![],
            max_failed_logins: 5,
            lockout: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain; with `key_file`, Wharf serves HTTPS itself.
    pub cert_file: Option<PathBuf>,
    /// PEM private key.
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GovernanceConfig {
    /// Promotion stages in order; each name is a reserved tag in every repository.
    pub stages: Vec<String>,
    /// Regular expressions for tags that, once pushed, can be neither moved nor deleted.
    pub immutable_tags: Vec<TagPattern>,
    /// Gates a digest must pass to enter a stage, by stage name.
    pub gates: std::collections::BTreeMap<String, GateConfig>,
    /// The newest releases of each stage (besides the current one) that stay
    /// rollback targets: they cannot be deleted.
    pub rollback_depth: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct GateConfig {
    /// Minimum time the digest must have been released in the previous stage.
    #[serde(with = "humantime_serde")]
    pub min_soak: Option<Duration>,
    /// Image config labels that must be present (and non-empty).
    pub required_labels: Vec<String>,
    /// The image config must name a user other than root.
    pub non_root: bool,
    /// The promoter must not be the account that pushed the manifest.
    pub separation_of_duties: bool,
    /// The digest must carry cosign signatures by trusted keys.
    pub require_signature: Option<signatures::SignatureGate>,
    /// An SPDX or CycloneDX SBOM must be attached to the digest as a referrer.
    pub require_sbom: bool,
}

impl Default for GovernanceConfig {
    fn default() -> Self {
        Self {
            stages: vec!["test".into(), "preprod".into(), "prod".into()],
            immutable_tags: vec![],
            gates: Default::default(),
            rollback_depth: 5,
        }
    }
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
    /// Filesystem backend: fsync every blob file and its directory before
    /// the blob is recorded, so a blob acknowledged with 201 survives a
    /// crash of the machine. Off only where the disk itself guarantees it.
    pub fsync: bool,
    pub filesystem: FilesystemConfig,
    pub s3: S3Config,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    /// With `secret_access_key`; when both are unset, the standard
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (/ `AWS_SESSION_TOKEN`)
    /// environment variables are used.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// With no keys in the config or the environment, ask the cloud's
    /// instance-metadata service (169.254.169.254) for credentials. Off by
    /// default: then missing credentials fail start-up instead, and Wharf
    /// never contacts that address.
    pub use_instance_metadata: bool,
    /// Path-style URLs (`endpoint/bucket/key`), which most S3-compatible servers need.
    pub path_style: bool,
    /// Permit plain-HTTP endpoints (loopback test servers, private networks).
    pub allow_http: bool,
    /// Key prefix inside the bucket, so several registries can share one.
    pub prefix: String,
    /// How the server checks that each body it receives is the one Wharf sent.
    pub integrity: S3Integrity,
}

/// How each request body sent to S3 is protected in transit. Either way
/// the server refuses a body that changed on the way.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum S3Integrity {
    /// A CRC64-NVME checksum of the body in `x-amz-checksum-crc64nvme`, and
    /// the request signed without its body (`UNSIGNED-PAYLOAD`): what current
    /// AWS SDKs send. A CRC costs a small fraction of a SHA-256 pass, on
    /// Wharf and on the server.
    #[default]
    Crc64nvme,
    /// The body's SHA-256 in the SigV4 signature: for servers that do not
    /// know CRC64-NVME checksums (older S3-compatible servers answer them
    /// with 400 or 501).
    Signed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// SQLite file; defaults to `<data_dir>/wharf.db`.
    pub path: Option<PathBuf>,
    /// Read connections kept open beside the single writer.
    pub read_connections: usize,
    /// `postgres://...`: metadata in PostgreSQL instead (config/database.rs).
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// How long in-flight requests (and a scheduled run under way) may go on
    /// after SIGTERM/SIGINT before their connections are cut and the
    /// process exits; counted in whole seconds, rounded up.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Send local blob files with sendfile, and write blobs read from S3
    /// from the received buffers, on plain HTTP (off: stream both through
    /// the HTTP library, as on TLS).
    pub sendfile: bool,
    /// A blob download whose client takes no byte for this long is cut off.
    #[serde(with = "humantime_serde")]
    pub send_timeout: Duration,
    /// sendfile transfers running at once, each on a thread of its own;
    /// downloads past this stream through the HTTP library.
    pub max_transfers: usize,
    /// Blocking threads per HTTP worker (streamed file reads and writes run
    /// there; the database has threads of its own); 0 keeps actix's default
    /// of 512 shared out over the cores. A streamed download whose client
    /// stalls holds one.
    pub blocking_threads: usize,
    /// Load balancers (addresses or networks, `10.0.0.0/8`) whose
    /// `X-Forwarded-For` names the client; empty: the TCP peer is the client.
    pub trusted_proxies: proxies::TrustedProxies,
    pub tls: TlsConfig,
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
            governance: GovernanceConfig::default(),
            retention: RetentionConfig::default(),
            gc: GcConfig::default(),
            diff: diff::DiffConfig::default(),
            events: events::EventsConfig::default(),
            node: node::NodeConfig::default(),
            backup: backup::BackupConfig::default(),
            auth: AuthConfig::default(),
            metrics: MetricsConfig::default(),
            health: HealthConfig::default(),
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
        Self {
            backend: Backend::Filesystem,
            path: None,
            fsync: true,
            filesystem: FilesystemConfig::default(),
            s3: S3Config { path_style: true, region: "us-east-1".into(), ..Default::default() },
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { path: None, read_connections: 4, url: None }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            workers: 0,
            shutdown_timeout: Duration::from_secs(30),
            sendfile: true,
            send_timeout: Duration::from_secs(60),
            max_transfers: 512,
            blocking_threads: 0,
            trusted_proxies: proxies::TrustedProxies::default(),
            tls: TlsConfig::default(),
        }
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

/// Fewer blocking threads per worker than this and a few stalled downloads
/// would stop every database call on that worker.
const MIN_BLOCKING_THREADS: usize = 4;

const TOP_LEVEL_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "registry",
    "storage",
    "database",
    "server",
    "log",
    "governance",
    "auth",
    "retention",
    "gc",
    "metrics",
    "health",
    "diff",
    "backup",
    "events",
    "node",
];

/// Each of figment's errors as one line that names the key as written in the
/// TOML file (`auth.enable`), where it came from (the file, or the
/// `WHARF_AUTH__ENABLE` variable), and for an unknown key the closest valid
/// one and every valid key of its section.
fn describe_load_error(error: &figment::Error) -> String {
    let lines: Vec<String> = error.clone().into_iter().map(|e| describe_one(&e)).collect();
    lines.join("\n")
}

fn describe_one(e: &figment::Error) -> String {
    use figment::error::Kind;
    use figment::Source;
    let key = e.path.join(".");
    let origin = match e.metadata.as_ref() {
        Some(m) => match &m.source {
            Some(Source::File(path)) => format!("in {}", path.display()),
            // Env::prefixed("WHARF_").split("__") (see `load`): sections are joined by `__`.
            _ if m.name.contains("environment") => format!("from environment variable WHARF_{}", e.path.join("__").to_ascii_uppercase()),
            _ => "from the command line".to_owned(),
        },
        None => "from an unknown source".to_owned(),
    };
    match &e.kind {
        Kind::UnknownField(field, expected) => {
            // The path ends with the unknown key itself; what comes before is its section.
            let section = match e.path.split_last() {
                Some((last, section)) if last == field => section.join("."),
                _ => key.clone(),
            };
            let qualify = |k: &str| if section.is_empty() { k.to_owned() } else { format!("{section}.{k}") };
            let mut message = format!("unknown configuration key {} ({origin})", qualify(field));
            let best = expected
                .iter()
                .map(|candidate| (strsim::jaro_winkler(field, candidate), *candidate))
                .filter(|(score, _)| *score > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0));
            match best {
                Some((_, best)) => message.push_str(&format!("; did you mean {}?", qualify(best))),
                None => message.push(';'),
            }
            let place = if section.is_empty() { "at the top level".to_owned() } else { format!("in [{section}]") };
            message.push_str(&format!(" valid keys {place}: {}", expected.join(", ")));
            message
        }
        kind if key.is_empty() => format!("{kind} ({origin})"),
        kind => format!("configuration key {key} ({origin}): {kind}"),
    }
}

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
        let fig = fig.merge(env).merge(Serialized::defaults(cli));
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
        if self.storage.s3.access_key_id.is_some() != self.storage.s3.secret_access_key.is_some() {
            return Err(ConfigError::Invalid("storage.s3: set both access_key_id and secret_access_key, or neither".into()));
        }
        if self.database.read_connections == 0 {
            return Err(ConfigError::Invalid("database.read_connections must be at least 1".into()));
        }
        database::validate(&self.database)?;
        let g = &self.governance;
        if g.stages.is_empty() || g.stages.len() > 16 {
            return Err(ConfigError::Invalid("governance.stages must list 1 to 16 stages".into()));
        }
        for (i, stage) in g.stages.iter().enumerate() {
            if crate::domain::Tag::parse(stage).is_err() || g.stages[..i].contains(stage) {
                return Err(ConfigError::Invalid(format!("governance.stages: {stage:?} is not a valid, unique tag")));
            }
        }
        if let Some(unknown) = g.gates.keys().find(|k| !g.stages.contains(k)) {
            return Err(ConfigError::Invalid(format!("governance.gates.{unknown}: no such stage")));
        }
        for (stage, gate) in &g.gates {
            gate.require_signature.as_ref().map_or(Ok(()), |s| s.validate(stage)).map_err(ConfigError::Invalid)?;
        }
        // Globs and tag patterns (governance.immutable_tags, retention
        // policies, auth.anonymous_pull) were compiled as they were read.
        if self.gc.batch_size == 0 || self.gc.batch_size > 10_000 {
            return Err(ConfigError::Invalid("gc.batch_size must be 1 to 10000".into()));
        }
        if self.auth.token_ttl.as_secs() == 0 || self.auth.max_failed_logins == 0 {
            return Err(ConfigError::Invalid("auth.token_ttl and auth.max_failed_logins must be positive".into()));
        }
        if self.server.max_transfers == 0 {
            return Err(ConfigError::Invalid(
                "server.max_transfers must be at least 1 (server.sendfile = false turns sendfile off)".into(),
            ));
        }
        if self.server.blocking_threads != 0 && self.server.blocking_threads < MIN_BLOCKING_THREADS {
            return Err(ConfigError::Invalid(format!(
                "server.blocking_threads must be 0 (actix's default) or at least {MIN_BLOCKING_THREADS}"
            )));
        }
        if self.server.tls.cert_file.is_some() != self.server.tls.key_file.is_some() {
            return Err(ConfigError::Invalid("server.tls needs both cert_file and key_file".into()));
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(ConfigError::Invalid("log.format must be `text` or `json`".into()));
        }
        self.metrics.validate()?;
        self.health.validate()?;
        self.diff.validate()?;
        self.events.validate()?;
        self.node.validate()?;
        self.backup.validate()
    }

    pub fn database_path(&self) -> PathBuf {
        self.database.path.clone().unwrap_or_else(|| self.data_dir.join("wharf.db"))
    }

    pub fn token_key_path(&self) -> PathBuf {
        self.auth.token_key_file.clone().unwrap_or_else(|| self.data_dir.join("token.key"))
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
    fn bad_patterns_fail_the_load_naming_key_and_pattern() {
        let dir = std::env::temp_dir().join(format!("wharf-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for (toml, key, pattern) in [
            ("[governance]\nimmutable_tags = [\"^v1\", \"(\"]\n", "governance.immutable_tags", "\"(\""),
            ("[[retention.policies]]\nrepositories = \"a/[\"\n", "repositories", "\"a/[\""),
            ("[[retention.policies]]\nrepositories = \"**\"\nkeep_tags = [\"[\"]\n", "keep_tags", "\"[\""),
            ("[auth]\nanonymous_pull = [\"\"]\n", "auth.anonymous_pull", "\"\""),
        ] {
            let file = dir.join("wharf.toml");
            std::fs::write(&file, toml).expect("write config");
            let err = Config::load(Some(&file), CliOverrides::default()).expect_err(toml).to_string();
            assert!(err.contains(key) && err.contains(pattern), "{toml}: {err}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rejects_bad_page_sizes() {
        let mut c = Config::default();
        c.registry.default_page_size = 5000;
        assert!(c.validate().is_err());
    }
}
