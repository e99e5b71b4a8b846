//! `signing_keys`: the secrets registry tokens are signed with, shared by
//! every node. The use-case (`auth::keyring`) decides which key signs and
//! when one is dropped; this layer only stores them.

use super::DbError;

/// One signing key. Its `Debug` never shows the secret, so a key row can
/// never end up in a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRow {
    /// The key id tokens carry in their header (`kid`).
    pub kid: String,
    pub secret: Vec<u8>,
    /// Unix ms; the newest key signs.
    pub created_at: i64,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .field("secret", &"<redacted>")
            .field("created_at", &self.created_at)
            .finish()
    }
}

pub trait SigningKeys {
    /// Every key, oldest first (by `created_at`, then `kid`).
    fn signing_keys(&self) -> Result<Vec<SigningKeyRow>, DbError>;
    /// Adds a key; false (and nothing changed) if its `kid` exists already.
    fn add_signing_key(&self, key: &SigningKeyRow) -> Result<bool, DbError>;
    /// Drops a key; false if there was none with this `kid`.
    fn delete_signing_key(&self, kid: &str) -> Result<bool, DbError>;
}
