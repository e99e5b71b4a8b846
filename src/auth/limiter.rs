//! Failed-login limits per account and per source address. In memory, per
//! instance: enough to make online guessing slow, and it forgets on restart.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys tracked at most; the oldest entries are dropped beyond this, so a
/// flood of distinct names cannot grow memory without bound.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    window_start: Instant,
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

    /// Whether every key is still under its limit.
    pub fn allowed(&self, keys: &[String]) -> bool {
        let now = Instant::now();
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter().all(|k| match entries.get(k) {
            Some(e) if now.duration_since(e.window_start) < self.window => e.failures < self.limit_for(k),
            _ => true,
        })
    }

    pub fn record_failure(&self, keys: &[String]) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_KEYS {
            let window = self.window;
            entries.retain(|_, e| now.duration_since(e.window_start) < window);
        }
        for k in keys {
            let e = entries.entry(k.clone()).or_insert(Entry { failures: 0, window_start: now });
            if now.duration_since(e.window_start) >= self.window {
                *e = Entry { failures: 0, window_start: now };
            }
            e.failures += 1;
        }
    }

    pub fn record_success(&self, account_key: &str) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(account_key);
    }

    /// A source address may try several accounts, so it gets more room.
    fn limit_for(&self, key: &str) -> u32 {
        if key.starts_with("ip:") { self.max_failures * 4 } else { self.max_failures }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_failures_and_resets_on_success() {
        let l = LoginLimiter::new(3, Duration::from_secs(60));
        let keys = vec!["acct:alice".to_string(), "ip:1.2.3.4".to_string()];
        for _ in 0..3 {
            assert!(l.allowed(&keys));
            l.record_failure(&keys);
        }
        assert!(!l.allowed(&keys));
        assert!(l.allowed(&["acct:bob".to_string(), "ip:1.2.3.4".to_string()]), "the address has more room");
        l.record_success("acct:alice");
        assert!(l.allowed(&["acct:alice".to_string()]));
    }

    #[test]
    fn window_expires() {
        let l = LoginLimiter::new(1, Duration::from_millis(10));
        let keys = vec!["acct:x".to_string()];
        l.record_failure(&keys);
        assert!(!l.allowed(&keys));
        std::thread::sleep(Duration::from_millis(20));
        assert!(l.allowed(&keys));
    }
}
