//! `console_sessions` table: web console logins, in the database so that
//! any node can serve any session.

use super::DbError;

/// A console session. The key (the SHA-256 of the cookie value) is not part
/// of the row: whoever reads the table cannot log in with what it finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSessionRow {
    pub account: String,
    /// The form token every POST of this session must carry.
    pub csrf: String,
    pub created_at: i64,
    pub expires_at: i64,
}

pub trait ConsoleSessions {
    fn create_console_session(&self, id_hash: &str, row: &ConsoleSessionRow) -> Result<(), DbError>;
    /// The session, unless it is unknown or expired at `now` (ms).
    fn console_session(&self, id_hash: &str, now: i64) -> Result<Option<ConsoleSessionRow>, DbError>;
    /// Ends the session, and sweeps every session expired at `now`, so the
    /// table does not grow with abandoned logins.
    fn delete_console_session(&self, id_hash: &str, now: i64) -> Result<(), DbError>;
}
