//! Failed-login limits. In memory, per instance: enough to make online
//! guessing slow, and it forgets on restart.
//!
//! Anyone can send failed logins for any account name, so a limit on the
//! account alone would let anyone lock out a user by name. The hard lock is
//! therefore per (account, source address) and per source address (with
//! more room, as one address may try several accounts); failures on the
//! account from everywhere together only slow its logins down.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys tracked at most; the oldest entries are dropped beyond this, so a
/// flood of distinct names cannot grow memory without bound.
const MAX_KEYS: usize = 100_000;

/// How long each login of an account under attack waits.
pub const SLOW_DOWN: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    window_start: Instant,
}

/// The counters one login attempt is checked and counted against.
pub struct LoginKeys {
    /// (account, source) and source: these lock.
    hard: [String; 2],
    /// The account from every source: this only slows.
    account: String,
}

impl LoginKeys {
    pub fn new(account: &str, source: &str) -> Self {
        Self { hard: [format!("acct:{account}@{source}"), format!("ip:{source}")], account: format!("acct:{account}") }
    }
}

pub struct LoginLimiter {
    max_failures: u32,
    window: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl LoginLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self { max_failures, window, entries: Mutex::new(HashMap::new()) }
    }

    /// `Some(time until unlocked)` when a hard key is over its limit.
    pub fn locked_for(&self, keys: &LoginKeys) -> Option<Duration> {
        let now = Instant::now();
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        keys.hard
            .iter()
            .filter_map(|k| {
                let e = entries.get(k)?;
                let elapsed = now.duration_since(e.window_start);
                (elapsed < self.window && e.failures >= self.limit_for(k)).then(|| self.window - elapsed)
            })
            .max()
    }

    /// Whether the account has had too many failures from all sources together.
    pub fn slowed(&self, keys: &LoginKeys) -> bool {
        let now = Instant::now();
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(&keys.account).is_some_and(|e| now.duration_since(e.window_start) < self.window && e.failures >= self.max_failures)
    }

    pub fn record_failure(&self, keys: &LoginKeys) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_KEYS {
            let window = self.window;
            entries.retain(|_, e| now.duration_since(e.window_start) < window);
        }
        for k in keys.hard.iter().chain([&keys.account]) {
            let e = entries.entry(k.clone()).or_insert(Entry { failures: 0, window_start: now });
            if now.duration_since(e.window_start) >= self.window {
                *e = Entry { failures: 0, window_start: now };
            }
            e.failures += 1;
        }
    }

    /// A good login clears the account's counters (not the address's).
    pub fn record_success(&self, keys: &LoginKeys) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(&keys.hard[0]);
        entries.remove(&keys.account);
    }

    /// An admin's unlock: clears the account's counters from every source.
    pub fn unlock(&self, account: &str) {
        let (exact, prefix) = (format!("acct:{account}"), format!("acct:{account}@"));
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).retain(|k, _| *k != exact && !k.starts_with(&prefix));
    }

    /// A source address may try several accounts, so it gets more room.
    fn limit_for(&self, key: &str) -> u32 {
        if key.starts_with("ip:") {
            self.max_failures * 4
        } else {
            self.max_failures
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_failures_and_resets_on_success() {
        let l = LoginLimiter::new(3, Duration::from_secs(60));
        let keys = LoginKeys::new("alice", "1.2.3.4");
        for _ in 0..3 {
            assert!(l.locked_for(&keys).is_none());
            l.record_failure(&keys);
        }
        let wait = l.locked_for(&keys).expect("locked");
        assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(55), "{wait:?}");
        assert!(l.locked_for(&LoginKeys::new("bob", "1.2.3.4")).is_none(), "the address has more room");
        l.record_success(&keys);
        assert!(l.locked_for(&keys).is_none());
    }

    #[test]
    fn failures_from_elsewhere_slow_but_do_not_lock_an_account() {
        let l = LoginLimiter::new(3, Duration::from_secs(60));
        let attacker = LoginKeys::new("alice", "6.6.6.6");
        for _ in 0..3 {
            l.record_failure(&attacker);
        }
        assert!(l.locked_for(&attacker).is_some());
        let owner = LoginKeys::new("alice", "10.0.0.1");
        assert!(l.locked_for(&owner).is_none(), "the owner's address is not locked");
        assert!(l.slowed(&owner), "but the account's logins are slowed");
        l.unlock("alice");
        assert!(l.locked_for(&attacker).is_none() && !l.slowed(&owner), "unlock clears every source");
    }

    #[test]
    fn window_expires() {
        let l = LoginLimiter::new(1, Duration::from_millis(10));
        let keys = LoginKeys::new("x", "1.1.1.1");
        l.record_failure(&keys);
        assert!(l.locked_for(&keys).is_some());
        std::thread::sleep(Duration::from_millis(20));
        assert!(l.locked_for(&keys).is_none());
    }
}
