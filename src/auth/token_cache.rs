//! Bearer tokens already checked: docker and containerd send the same
//! token on every request of a pull, and checking one costs a signature
//! verification plus a database read of the account and its grants.
//!
//! Keyed by the token's SHA-256 (the token itself is not kept). An entry
//! is used under the same rule as the manifest read cache
//! (`registry::read_cache`): only while no write transaction has finished
//! in this process since the check ([`Db::writes`](crate::db::Db::writes),
//! counted before it), so disabling an account, changing its secret or its
//! grants through this server applies to the very next request; and for at
//! most [`VERIFIED_TTL`] and never past the token's own expiry, which bounds
//! what this process cannot see (another node, a maintenance command).

use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use sha2::{Digest, Sha256};

use super::Identity;

/// How long a checked token is trusted without checking again, at most.
pub(crate) const VERIFIED_TTL: Duration = Duration::from_secs(1);
const ENTRIES: usize = 16 * 1024;

#[derive(Clone)]
struct Verified {
    identity: Identity,
    writes: u64,
    until: Instant,
}

pub(crate) struct TokenCache {
    verified: Cache<[u8; 32], Verified>,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self { verified: Cache::new(ENTRIES) }
    }
}

pub(crate) fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenCache {
    /// Who `key`'s token identified, if checked while the write count was
    /// `writes` (the count now) and not too long ago.
    pub(crate) fn get(&self, key: &[u8; 32], writes: u64) -> Option<Identity> {
        let v = self.verified.get(key)?;
        (v.writes == writes && Instant::now() < v.until).then_some(v.identity)
    }

    /// Keeps a successful check; `writes` was counted before it and
    /// `expires_in_secs` is what is left of the token's own lifetime.
    pub(crate) fn put(&self, key: [u8; 32], identity: &Identity, writes: u64, expires_in_secs: i64) {
        let left = Duration::from_secs(u64::try_from(expires_in_secs).unwrap_or(0));
        if left.is_zero() {
            return;
        }
        let until = Instant::now() + left.min(VERIFIED_TTL);
        self.verified.insert(key, Verified { identity: identity.clone(), writes, until });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Permissions;

    fn alice() -> Identity {
        Identity { name: "alice".into(), authenticated: true, permissions: Permissions::superuser(), token_access: Some(vec![]) }
    }

    #[test]
    fn a_check_is_reused_only_until_the_next_write_or_expiry() {
        let cache = TokenCache::default();
        cache.put(key("t1"), &alice(), 3, 300);
        assert_eq!(cache.get(&key("t1"), 3).map(|i| i.name), Some("alice".to_owned()));
        assert!(cache.get(&key("t1"), 4).is_none(), "a write finished since the check");
        assert!(cache.get(&key("t2"), 3).is_none(), "another token is checked");
        cache.put(key("t3"), &alice(), 3, 0);
        assert!(cache.get(&key("t3"), 3).is_none(), "an expired token is never kept");
    }
}
