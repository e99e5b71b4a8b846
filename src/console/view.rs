//! What every page shows around its content, and value formatting.

use chrono::{DateTime, SecondsFormat, Utc};

use super::Viewer;
use crate::auth::Action;

/// The header of every page: who is logged in, and the links they may use.
pub struct Nav {
    pub user: String,
    pub logged_in: bool,
    /// Empty when not logged in (no form needs it then).
    pub csrf: String,
    pub can_audit: bool,
    pub can_admin: bool,
    pub static_prefix: &'static str,
}

impl Nav {
    pub fn new(viewer: &Viewer) -> Self {
        Self {
            user: viewer.identity.name.clone(),
            logged_in: viewer.logged_in(),
            csrf: viewer.csrf.clone().unwrap_or_default(),
            can_audit: viewer.may(&Action::ReadAudit, None),
            can_admin: viewer.may(&Action::Admin, None),
            static_prefix: super::STATIC_PREFIX,
        }
    }
}

/// RFC 3339 in UTC, with its zone written out.
pub fn time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// How long ago, coarsely: "3d 4h", "5h 2m", "40s".
pub fn age(ms: i64, now: i64) -> String {
    let secs = (now - ms).max(0) / 1000;
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {}s", secs % 60)
    } else {
        format!("{secs}s")
    }
}

/// `sha256:0123456789ab`: enough to tell digests apart on a page.
pub fn short(digest: &str) -> String {
    match digest.split_once(':') {
        Some((alg, hex)) => format!("{alg}:{}", &hex[..hex.len().min(12)]),
        None => digest.to_owned(),
    }
}

/// A query-string value, percent-encoded.
pub fn q(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_carry_their_zone_and_ages_are_coarse() {
        assert_eq!(time(0), "1970-01-01T00:00:00Z");
        assert_eq!(age(0, 90_061_000), "1d 1h");
        assert_eq!(age(0, 3_720_000), "1h 2m");
        assert_eq!(age(0, 42_000), "42s");
        assert_eq!(age(5, 0), "0s");
        assert_eq!(short("sha256:0123456789abcdef"), "sha256:0123456789ab");
        assert_eq!(q("a/b c"), "a%2Fb+c");
    }
}
