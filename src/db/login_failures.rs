//! `login_failures` table: the failed-login counters of `auth` (see
//! `src/auth/limiter.rs` for what is counted), in the database so that every
//! node counts the same failures and a restart forgets none.

use super::DbError;

/// One counter: `failures` since `window_start` (ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginFailureRow {
    pub key: String,
    pub failures: u32,
    pub window_start: i64,
}

pub trait LoginFailures {
    /// The counters among `keys` whose window started after `since` (ms):
    /// one read by primary key, the only query a good login adds.
    fn login_failures(&self, keys: &[&str], since: i64) -> Result<Vec<LoginFailureRow>, DbError>;

    /// Counts one failure on each of `keys` at `now` (ms), atomically per
    /// key, so failures on several nodes at once are all counted; a counter
    /// whose window started at or before `since` starts again at 1 from
    /// `now`. Returns each key's count after, in the order of `keys`.
    ///
    /// Where a counter was created or started again (the table may have
    /// grown), also drops every counter expired at `since` and, beyond
    /// `max_rows`, the oldest ones: a flood of distinct names cannot grow the
    /// table without bound.
    fn record_login_failure(&self, keys: &[&str], now: i64, since: i64, max_rows: u64) -> Result<Vec<u32>, DbError>;

    /// Drops the counters `keys`, and every counter whose key starts with
    /// `prefix` (an account's from every source).
    fn clear_login_failures(&self, keys: &[&str], prefix: Option<&str>) -> Result<(), DbError>;
}

/// How many of the oldest rows to drop when `rows` exceed `max_rows`: down
/// to nine tenths of the cap, so the next failures do not each drop one.
pub(crate) fn excess(rows: u64, max_rows: u64) -> u64 {
    if rows <= max_rows {
        0
    } else {
        rows - max_rows * 9 / 10
    }
}
