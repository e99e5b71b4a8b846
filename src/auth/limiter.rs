//! Failed-login limits. The counters live in the database
//! (`db::LoginFailures`), so every node counts the same failures and a
//! restart forgets none; this file is the policy over them.
//!
//! Anyone can send failed logins for any account name, so a limit on the
//! account alone would let anyone lock out a user by name. The hard lock is
//! therefore per (account, source address) and per source address (with
//! more room, as one address may try several accounts); failures on the
//! account from everywhere together only slow its logins down.
//!
//! Cost on the token endpoint: a login reads its three counters by primary
//! key (one query, in the read that looks the account up); it writes only on
//! a failure, or on a success after failures (to clear them).

use std::time::Duration;

use crate::db::login_failures::LoginFailureRow;

/// Counters kept at most; beyond this the oldest are dropped (see
/// `db::LoginFailures::record_login_failure`), so a flood of distinct names
/// cannot grow the table without bound.
pub const MAX_COUNTERS: u64 = 100_000;

/// How long each login of an account under attack waits.
pub const SLOW_DOWN: Duration = Duration::from_secs(1);

/// Account names are at most 64 bytes; a longer login name cannot succeed,
/// and is cut here so that no client can store a long key.
const MAX_NAME_IN_KEY: usize = 128;

/// The counters one login attempt is checked and counted against.
#[derive(Debug, Clone)]
pub struct LoginKeys {
    /// (account, source): locks.
    pair: String,
    /// The source address: locks, with more room.
    source: String,
    /// The account from every source: only slows.
    account: String,
}

fn cut(s: &str) -> &str {
    match s.char_indices().nth(MAX_NAME_IN_KEY) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl LoginKeys {
    pub fn new(account: &str, source: &str) -> Self {
        let (account, source) = (cut(account), cut(source));
        Self { pair: format!("acct:{account}@{source}"), source: format!("ip:{source}"), account: format!("acct:{account}") }
    }

    /// Every counter a failure adds to.
    pub fn all(&self) -> [&str; 3] {
        [&self.pair, &self.source, &self.account]
    }

    /// What a good login clears: the account's counters (not the address's).
    pub fn cleared_by_success(&self) -> [&str; 2] {
        [&self.pair, &self.account]
    }
}

/// What an admin's unlock clears: the account's counter, and (by prefix)
/// the account's from every source.
pub fn unlock_keys(account: &str) -> (String, String) {
    let account = cut(account);
    (format!("acct:{account}"), format!("acct:{account}@"))
}

/// Where a login attempt stands, from its counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// `Some(time until unlocked)` when a hard key is over its limit.
    pub locked_for: Option<Duration>,
    /// The account has had too many failures from all sources together.
    pub slowed: bool,
    /// A good login has counters of the account to clear.
    pub clear_on_success: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    max_failures: u32,
    window: Duration,
}

impl LoginLimits {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self { max_failures, window }
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX)
    }

    /// Counters whose window started at or before this (ms) have expired at `now`.
    pub fn since(&self, now: i64) -> i64 {
        now.saturating_sub(self.window_ms())
    }

    /// The standing of an attempt at `now` (ms), given its live counters.
    pub fn standing(&self, keys: &LoginKeys, counters: &[LoginFailureRow], now: i64) -> Standing {
        let live = |r: &&LoginFailureRow| r.window_start > self.since(now);
        let locked_for = counters
            .iter()
            .filter(live)
            .filter(|r| {
                (r.key == keys.pair && r.failures >= self.max_failures) || (r.key == keys.source && r.failures >= self.source_limit())
            })
            .map(|r| Duration::from_millis(u64::try_from(r.window_start.saturating_add(self.window_ms()) - now).unwrap_or(0)))
            .max();
        let slowed = counters.iter().filter(live).any(|r| r.key == keys.account && r.failures >= self.max_failures);
        let clear_on_success = counters.iter().any(|r| r.key == keys.pair || r.key == keys.account);
        Standing { locked_for, slowed, clear_on_success }
    }

    /// A source address may try several accounts, so it gets more room.
    fn source_limit(&self) -> u32 {
        self.max_failures.saturating_mul(4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, failures: u32, window_start: i64) -> LoginFailureRow {
        LoginFailureRow { key: key.into(), failures, window_start }
    }

    #[test]
    fn locks_at_max_failures_for_the_rest_of_the_window() {
        let l = LoginLimits::new(3, Duration::from_secs(60));
        let keys = LoginKeys::new("alice", "1.2.3.4");
        let two = [row("acct:alice@1.2.3.4", 2, 1_000), row("ip:1.2.3.4", 2, 1_000), row("acct:alice", 2, 1_000)];
        assert_eq!(l.standing(&keys, &two, 5_000), Standing { locked_for: None, slowed: false, clear_on_success: true });
        let three = [row("acct:alice@1.2.3.4", 3, 1_000), row("ip:1.2.3.4", 3, 1_000), row("acct:alice", 3, 1_000)];
        let s = l.standing(&keys, &three, 5_000);
        assert_eq!(s.locked_for, Some(Duration::from_secs(56)));
        assert!(s.slowed && s.clear_on_success);
        // Expired: neither locked nor slowed.
        assert_eq!(l.standing(&keys, &three, 61_000).locked_for, None);
        assert!(!l.standing(&keys, &three, 61_000).slowed);
        // The address has more room: another account from it is not locked.
        let bob = LoginKeys::new("bob", "1.2.3.4");
        assert_eq!(l.standing(&bob, &three, 5_000), Standing { locked_for: None, slowed: false, clear_on_success: false });
        assert!(l.standing(&bob, &[row("ip:1.2.3.4", 12, 1_000)], 5_000).locked_for.is_some(), "until it has 4x");
    }

    #[test]
    fn failures_from_elsewhere_slow_but_do_not_lock_an_account() {
        let l = LoginLimits::new(3, Duration::from_secs(60));
        let owner = LoginKeys::new("alice", "10.0.0.1");
        // The attacker's counters are not the owner's; only the account's is shared.
        let s = l.standing(&owner, &[row("acct:alice", 3, 1_000)], 2_000);
        assert_eq!(s, Standing { locked_for: None, slowed: true, clear_on_success: true });
    }

    #[test]
    fn keys_are_bounded_and_unlock_covers_every_source() {
        let long = "x".repeat(5_000);
        let keys = LoginKeys::new(&long, "1.2.3.4");
        assert!(keys.all().iter().all(|k| k.len() <= MAX_NAME_IN_KEY * 2 + 10), "{:?}", keys.all().map(str::len));
        let (exact, prefix) = unlock_keys("alice");
        let keys = LoginKeys::new("alice", "6.6.6.6");
        assert_eq!(keys.all()[2], exact);
        assert!(keys.all()[0].starts_with(&prefix));
        assert_eq!(keys.cleared_by_success(), [keys.all()[0], keys.all()[2]]);
    }
}
