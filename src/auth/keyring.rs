//! Registry-token signing keys, shared by every node through the database
//! (`signing_keys`): the newest signs, every listed key verifies.
//!
//! Each node keeps the keys in memory and re-reads them every
//! [`REFRESH_EVERY`] (so it signs with a key another node or `wharf keys
//! rotate` created) and when a token names a key it does not know, at most
//! once per [`RELOAD_AT_MOST_EVERY`] (so garbage `kid`s cannot turn every
//! request into a database read). A rotation keeps the previous key until
//! every token it may have signed has expired: token TTL plus two refresh
//! periods (a node may sign with it until its next refresh).
//!
//! The first key is created in a write transaction that first checks the
//! table is empty: writes are serialized on both engines (SQLite's one
//! writer, PostgreSQL's writer lock), so nodes starting together end up with
//! one key. Key material is never logged (`SigningKeyRow`'s `Debug` hides it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::tokens::TokenKeys;
use super::{secrets, AuthError};
use crate::db::signing_keys::SigningKeyRow;
use crate::db::{now_ms, Db};

pub const REFRESH_EVERY: Duration = Duration::from_secs(60);
pub const RELOAD_AT_MOST_EVERY: Duration = Duration::from_secs(1);

pub struct Keyring {
    db: Db,
    service: &'static str,
    /// The secret file of an install from before keys were in the database:
    /// the first key, so tokens issued before the upgrade still verify.
    legacy: Option<Vec<u8>>,
    loaded: Mutex<Option<(Arc<TokenKeys>, Instant)>>,
}

/// What a rotation did.
#[derive(Debug, serde::Serialize)]
pub struct Rotation {
    /// The key that signs from now on.
    pub kid: String,
    /// Keys dropped: superseded long enough ago that no token of theirs is still valid.
    pub dropped: Vec<String>,
    /// Keys that still verify (including the new one).
    pub active: Vec<String>,
}

fn new_key(created_at: i64) -> SigningKeyRow {
    SigningKeyRow { kid: hex::encode(&secrets::new_signing_key()[..8]), secret: secrets::new_signing_key(), created_at }
}

impl Keyring {
    pub fn new(db: Db, service: &'static str, legacy: Option<Vec<u8>>) -> Self {
        Self { db, service, legacy, loaded: Mutex::new(None) }
    }

    /// The keys to sign and verify with, read again if older than [`REFRESH_EVERY`].
    pub async fn current(&self) -> Result<Arc<TokenKeys>, AuthError> {
        let mut loaded = self.loaded.lock().await;
        match &*loaded {
            Some((keys, at)) if at.elapsed() < REFRESH_EVERY => Ok(keys.clone()),
            _ => {
                let keys = self.load().await?;
                *loaded = Some((keys.clone(), Instant::now()));
                Ok(keys)
            }
        }
    }

    /// After a token named a key missing from `seen`: the keys read again,
    /// unless they were read less than [`RELOAD_AT_MOST_EVERY`] ago (then
    /// the ones in memory).
    pub async fn reload(&self, seen: &Arc<TokenKeys>) -> Result<Arc<TokenKeys>, AuthError> {
        let mut loaded = self.loaded.lock().await;
        if let Some((keys, at)) = &*loaded {
            if !Arc::ptr_eq(keys, seen) || at.elapsed() < RELOAD_AT_MOST_EVERY {
                return Ok(keys.clone());
            }
        }
        let keys = self.load().await?;
        *loaded = Some((keys.clone(), Instant::now()));
        Ok(keys)
    }

    async fn load(&self) -> Result<Arc<TokenKeys>, AuthError> {
        let mut rows = self.db.read(|tx| tx.signing_keys().map_err(AuthError::from)).await?;
        if rows.is_empty() {
            let first = match &self.legacy {
                Some(secret) => SigningKeyRow { kid: "token-key-file".into(), secret: secret.clone(), created_at: now_ms() },
                None => new_key(now_ms()),
            };
            rows = self
                .db
                .write(move |tx| -> Result<_, AuthError> {
                    // Another node may have created it since the read above.
                    if tx.signing_keys()?.is_empty() {
                        tx.add_signing_key(&first)?;
                        tracing::info!(kid = %first.kid, "created the first token-signing key");
                    }
                    Ok(tx.signing_keys()?)
                })
                .await?;
        }
        let keys = TokenKeys::new(rows.iter().map(|r| (r.kid.as_str(), r.secret.as_slice())), self.service)
            .map_err(|e| AuthError::Setup(e.to_string()))?;
        Ok(Arc::new(keys))
    }
}

/// Creates a new signing key (it signs from the next refresh of each node
/// on) and drops keys superseded more than `keep_for` ago.
pub async fn rotate(db: &Db, keep_for: Duration) -> Result<Rotation, AuthError> {
    let keep_ms = i64::try_from(keep_for.as_millis()).unwrap_or(i64::MAX);
    db.write(move |tx| -> Result<Rotation, AuthError> {
        let now = now_ms();
        let newest = tx.signing_keys()?.last().map_or(0, |k| k.created_at);
        // Strictly newer than every key, so "newest signs" is unambiguous.
        let key = new_key(now.max(newest + 1));
        tx.add_signing_key(&key)?;
        let keys = tx.signing_keys()?;
        let mut dropped = Vec::new();
        // A key is superseded when the next one was created.
        for pair in keys.windows(2) {
            if pair[1].created_at.saturating_add(keep_ms) <= now {
                tx.delete_signing_key(&pair[0].kid)?;
                dropped.push(pair[0].kid.clone());
            }
        }
        let active = keys.iter().map(|k| k.kid.clone()).filter(|k| !dropped.contains(k)).collect();
        Ok(Rotation { kid: key.kid, dropped, active })
    })
    .await
}

/// The ids of the keys that verify, oldest first (the last one signs).
pub async fn list(db: &Db) -> Result<Vec<(String, i64)>, AuthError> {
    db.read(|tx| Ok(tx.signing_keys()?.into_iter().map(|k| (k.kid, k.created_at)).collect())).await
}

/// How long a superseded key must keep verifying.
pub fn keep_for(token_ttl: Duration) -> Duration {
    token_ttl + 2 * REFRESH_EVERY
}
