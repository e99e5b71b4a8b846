//! `[events]`: webhook endpoints that durable events (issue 15) are
//! delivered to, and how the dispatcher retries them.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ConfigError;
use crate::domain::{RepoGlob, EVENT_TYPES};

/// The event types distribution's notification envelope can carry (its
/// `push` and `delete` actions); a tag move is a push of the tag.
pub const DISTRIBUTION_TYPES: [&str; 3] = ["dev.wharf.push", "dev.wharf.tag", "dev.wharf.delete"];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    pub endpoints: Vec<EndpointConfig>,
    /// How often the dispatcher looks for new events when idle.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// CloudEvents `source` of every event.
    pub source: String,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self { endpoints: Vec::new(), poll_interval: Duration::from_secs(1), source: "/wharf".into() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EventFormat {
    /// CloudEvents 1.0, structured JSON mode.
    #[default]
    Cloudevents,
    /// distribution's `{"events": [...]}` notification envelope.
    Distribution,
}

/// The HMAC key of an endpoint: never written to logs, `wharf config`
/// output or API answers.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Names the endpoint in deliveries, metrics and replay; letters, digits, `-`, `_`.
    pub name: String,
    /// `http://` or `https://`.
    pub url: String,
    /// Signs each body with HMAC-SHA256 (`Wharf-Signature: sha256=<hex>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// Events of repositories matching this glob (events of no repository,
    /// GC runs, go to endpoints whose glob is `**`).
    #[serde(default = "all_repositories")]
    pub repositories: RepoGlob,
    /// Event types (`dev.wharf.push`, ...); empty: every type the format carries.
    #[serde(default)]
    pub types: Vec<String>,
    #[serde(default)]
    pub format: EventFormat,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts before an event is dead-lettered.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Wait after the first failure; doubled after each next one.
    #[serde(default = "default_backoff", with = "humantime_serde")]
    pub backoff: Duration,
    #[serde(default = "default_max_backoff", with = "humantime_serde")]
    pub max_backoff: Duration,
}

fn all_repositories() -> RepoGlob {
    RepoGlob::parse("**").expect("valid glob")
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_max_attempts() -> u32 {
    10
}
fn default_backoff() -> Duration {
    Duration::from_secs(1)
}
fn default_max_backoff() -> Duration {
    Duration::from_secs(300)
}

impl EndpointConfig {
    /// Whether an event of this type and repository ('' for none) goes here.
    pub fn wants(&self, event_type: &str, repository: &str) -> bool {
        let typed = if self.types.is_empty() {
            self.format == EventFormat::Cloudevents || DISTRIBUTION_TYPES.contains(&event_type)
        } else {
            self.types.iter().any(|t| t == event_type)
        };
        let scoped = if repository.is_empty() { self.repositories.as_str() == "**" } else { self.repositories.is_match(repository) };
        typed && scoped
    }
}

impl EventsConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut names = std::collections::BTreeSet::new();
        for e in &self.endpoints {
            let invalid = |m: String| Err(ConfigError::Invalid(format!("events.endpoints {:?}: {m}", e.name)));
            if e.name.is_empty() || e.name.len() > 64 || !e.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return invalid("name must be 1 to 64 letters, digits, '-' or '_'".into());
            }
            if !names.insert(e.name.as_str()) {
                return invalid("two endpoints have this name".into());
            }
            match url::Url::parse(&e.url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => return invalid(format!("url {:?} is not an http:// or https:// URL", e.url)),
            }
            for t in &e.types {
                let allowed: &[&str] = if e.format == EventFormat::Distribution { &DISTRIBUTION_TYPES } else { &EVENT_TYPES };
                if !allowed.contains(&t.as_str()) {
                    return invalid(format!("type {t:?} is not one of {} for this format", allowed.join(", ")));
                }
            }
            if e.max_attempts == 0 || e.timeout.is_zero() || e.backoff.is_zero() || e.max_backoff < e.backoff {
                return invalid("max_attempts, timeout and backoff must be positive, max_backoff at least backoff".into());
            }
            if e.secret.as_ref().is_some_and(|s| s.0.is_empty()) {
                return invalid("secret is empty".into());
            }
        }
        if self.poll_interval.is_zero() {
            return Err(ConfigError::Invalid("events.poll_interval must be positive".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::Format;

    fn endpoint(toml_line: &str) -> Result<EventsConfig, String> {
        let c: EventsConfig = figment::Figment::new()
            .merge(figment::providers::Toml::string(&format!("[[endpoints]]\nname = \"hook\"\n{toml_line}")))
            .extract()
            .map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn endpoints_are_validated_and_secrets_redacted() {
        let c = endpoint("url = \"http://127.0.0.1:9/x\"\nsecret = \"s3cr3t\"").unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t"));
        assert!(!serde_json::to_string(&c).unwrap().contains("s3cr3t"));
        assert!(c.endpoints[0].wants("dev.wharf.gc", ""));
        assert!(endpoint("url = \"ftp://x/\"").unwrap_err().contains("not an http"));
        assert!(endpoint("url = \"http://x/\"\ntypes = [\"dev.wharf.nope\"]").unwrap_err().contains("dev.wharf.nope"));
        assert!(endpoint("url = \"http://x/\"\nformat = \"distribution\"\ntypes = [\"dev.wharf.promotion\"]").is_err());
        assert!(endpoint("url = \"http://x/\"\nmax_attempts = 0").is_err());
        let d = endpoint("url = \"http://x/\"\nformat = \"distribution\"\nrepositories = \"team/*\"").unwrap();
        assert!(d.endpoints[0].wants("dev.wharf.push", "team/app"));
        assert!(!d.endpoints[0].wants("dev.wharf.promotion", "team/app"));
        assert!(!d.endpoints[0].wants("dev.wharf.push", "other/app"));
    }
}
