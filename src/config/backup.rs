//! `[backup]`: scheduled backups (`wharf backup create` on a timer in the
//! server) and where a backup may go.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupConfig {
    /// Where scheduled backups go: a directory, or `s3://bucket/prefix`
    /// (reached with the endpoint, region and credentials of `storage.s3`).
    pub destination: Option<String>,
    /// Back up this often; none: only `wharf backup create`.
    #[serde(with = "humantime_serde")]
    pub schedule: Option<Duration>,
    /// Snapshots kept at the destination after each backup (the newest);
    /// older ones go, with the blobs only they referenced. 0 keeps all.
    pub keep: u32,
    /// How long a backup's fence holds garbage collection off if the backup
    /// dies without releasing it; a running backup renews it.
    #[serde(with = "humantime_serde")]
    pub fence_ttl: Duration,
    /// `pg_dump` / `pg_restore` for a PostgreSQL database; none: on PATH,
    /// else the newest /usr/lib/postgresql/<version>/bin.
    pub pg_dump: Option<PathBuf>,
    pub pg_restore: Option<PathBuf>,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self { destination: None, schedule: None, keep: 7, fence_ttl: Duration::from_secs(3600), pg_dump: None, pg_restore: None }
    }
}

impl BackupConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(dest) = &self.destination {
            Destination::parse(dest).map_err(|e| ConfigError::Invalid(format!("backup.destination: {e}")))?;
        }
        if self.schedule.is_some() && self.destination.is_none() {
            return Err(ConfigError::Invalid("backup.schedule needs backup.destination".into()));
        }
        if self.schedule.is_some_and(|s| s.is_zero()) {
            return Err(ConfigError::Invalid("backup.schedule must be positive".into()));
        }
        if self.fence_ttl < Duration::from_secs(60) {
            return Err(ConfigError::Invalid("backup.fence_ttl must be at least 1m".into()));
        }
        Ok(())
    }
}

/// Where a backup goes: a local directory or a prefix in an S3 bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Directory(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl Destination {
    /// `s3://bucket/prefix` or a directory path.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!("{s:?} names no bucket (s3://bucket/prefix)"));
            }
            return Ok(Destination::S3 { bucket: bucket.to_owned(), prefix: prefix.trim_matches('/').to_owned() });
        }
        if s.is_empty() || s.contains("://") {
            return Err(format!("{s:?} is neither a directory nor s3://bucket/prefix"));
        }
        Ok(Destination::Directory(s.into()))
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Directory(dir) => write!(f, "{}", dir.display()),
            Destination::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse() {
        assert_eq!(Destination::parse("/srv/backups"), Ok(Destination::Directory("/srv/backups".into())));
        assert_eq!(Destination::parse("s3://bk/wharf/prod/"), Ok(Destination::S3 { bucket: "bk".into(), prefix: "wharf/prod".into() }));
        assert_eq!(Destination::parse("s3://bk"), Ok(Destination::S3 { bucket: "bk".into(), prefix: String::new() }));
        assert!(Destination::parse("s3:///x").is_err());
        assert!(Destination::parse("gs://b/x").is_err());
        assert!(Destination::parse("").is_err());
    }

    #[test]
    fn a_schedule_needs_a_destination() {
        let c = BackupConfig { schedule: Some(Duration::from_secs(3600)), ..Default::default() };
        assert!(c.validate().is_err());
        let c = BackupConfig { destination: Some("/b".into()), ..c };
        assert!(c.validate().is_ok());
    }
}
