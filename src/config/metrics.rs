//! `[metrics]` and `[health]`: the Prometheus endpoint and the probes
//! (served by `observability`).

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Most repositories a repository label may name before the rest are
/// counted under `other` (each name is a series per metric).
pub const MAX_REPOSITORY_LABELS: usize = 10_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics` at all.
    pub enabled: bool,
    /// Serve `/metrics` on this address only, apart from the registry's
    /// listener (e.g. a private interface for Prometheus); none: on the
    /// registry's listener.
    pub listen: Option<SocketAddr>,
    /// Label per-repository series with the repository name. Off by default:
    /// every name is a series, so a registry with many repositories would
    /// swamp Prometheus.
    pub repository_labels: bool,
    /// With `repository_labels`, the first this many repositories seen get
    /// their own label; the rest are counted as `other`.
    pub max_repositories: usize,
    /// How often the values that need a database query (release ages,
    /// audit-chain height, open uploads) are recomputed; never at scrape time.
    #[serde(with = "humantime_serde")]
    pub refresh_interval: Duration,
    /// How often the whole audit chain is re-verified in the background;
    /// none: never (the last verification time then stays absent).
    #[serde(with = "humantime_serde")]
    pub audit_verify_interval: Option<Duration>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: None,
            repository_labels: false,
            max_repositories: 100,
            refresh_interval: Duration::from_secs(30),
            audit_verify_interval: Some(Duration::from_secs(3600)),
        }
    }
}

impl MetricsConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_repositories > MAX_REPOSITORY_LABELS {
            return Err(ConfigError::Invalid(format!("metrics.max_repositories must be at most {MAX_REPOSITORY_LABELS}")));
        }
        if self.refresh_interval < Duration::from_millis(100) {
            return Err(ConfigError::Invalid("metrics.refresh_interval must be at least 100ms".into()));
        }
        if self.audit_verify_interval.is_some_and(|d| d < Duration::from_secs(1)) {
            return Err(ConfigError::Invalid("metrics.audit_verify_interval must be at least 1s".into()));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// `/readyz` answers 503 when the database or the object store has not
    /// answered within this long.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// A readiness result is reused for this long, so a busy load balancer
    /// does not turn into a load on the database and the object store.
    #[serde(with = "humantime_serde")]
    pub cache: Duration,
    /// Start drained: `/readyz` answers 503 until an admin undrains
    /// (`DELETE /api/v1/admin/drain`).
    pub drained: bool,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(2), cache: Duration::from_secs(1), drained: false }
    }
}

impl HealthConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(60) {
            return Err(ConfigError::Invalid("health.timeout must be within (0s, 60s]".into()));
        }
        if self.cache > Duration::from_secs(60) {
            return Err(ConfigError::Invalid("health.cache must be at most 60s".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        MetricsConfig::default().validate().expect("metrics defaults");
        HealthConfig::default().validate().expect("health defaults");
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let too_many = MetricsConfig { max_repositories: MAX_REPOSITORY_LABELS + 1, ..Default::default() };
        assert!(too_many.validate().is_err());
        let no_timeout = HealthConfig { timeout: Duration::ZERO, ..Default::default() };
        assert!(no_timeout.validate().is_err());
    }
}
