//! Web console sessions: a login with a password (under the same failed-login
//! limits as the registry) gives a random cookie value; the database keeps
//! only its hash, the account and the session's CSRF token, so any node
//! serves any session and logging out ends it everywhere.

use base64::Engine;
use rand::RngCore;

use super::{secrets, Auth, AuthError, Identity};
use crate::db::console_sessions::ConsoleSessionRow;
use crate::domain::now_ms;

/// How long a console login lasts.
pub const SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;

/// A started session: the cookie value (shown once) and the form token.
pub struct NewSession {
    pub cookie: String,
    pub csrf: String,
    pub identity: Identity,
}

/// The caller behind a session cookie, with the session's form token.
pub struct Session {
    pub identity: Identity,
    pub csrf: String,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Auth {
    /// Checks the password like `/auth/token` does, then stores a session.
    pub async fn start_session(&self, user: &str, password: &str, source: &str) -> Result<NewSession, AuthError> {
        let identity = self.login(user, password, source).await?;
        let (cookie, csrf) = (random_token(), random_token());
        let now = now_ms();
        let row =
            ConsoleSessionRow { account: identity.name.clone(), csrf: csrf.clone(), created_at: now, expires_at: now + SESSION_TTL_MS };
        let key = secrets::hash_token(&cookie);
        self.inner.db.write(move |tx| tx.create_console_session(&key, &row)).await?;
        Ok(NewSession { cookie, csrf, identity })
    }

    /// The session's caller, reloaded from the account on every request so a
    /// disabled account or a removed grant takes effect at once. None when
    /// the session is unknown, expired, or its account is gone or disabled.
    pub async fn session(&self, cookie: &str) -> Result<Option<Session>, AuthError> {
        let key = secrets::hash_token(cookie);
        let now = now_ms();
        let Some(row) = self.inner.db.read(move |tx| tx.console_session(&key, now)).await? else { return Ok(None) };
        Ok(self.load_identity(row.account, None).await?.map(|identity| Session { identity, csrf: row.csrf }))
    }

    /// Logs out: the session stops working on every node.
    pub async fn end_session(&self, cookie: &str) -> Result<(), AuthError> {
        let key = secrets::hash_token(cookie);
        let now = now_ms();
        Ok(self.inner.db.write(move |tx| tx.delete_console_session(&key, now)).await?)
    }

    /// The identity of a caller without a session: the anonymous-pull
    /// grants (or everything when auth is off).
    pub fn console_anonymous(&self) -> Identity {
        self.anonymous()
    }
}
