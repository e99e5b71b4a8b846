//! Registry bearer tokens (JWT, HS256): what docker, containerd, podman,
//! skopeo and crane get from `/auth/token` and send back on every request.

use jsonwebtoken::{decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

pub const ISSUER: &str = "wharf";

/// One `access` entry: the actions granted on one resource.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Access {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub access: Vec<Access>,
}

/// The keys of one moment: the newest signs, every one verifies (a token
/// carries the `kid` of its key; one without a `kid`, issued before keys
/// had ids, is tried against each).
#[derive(Clone)]
pub struct TokenKeys {
    /// Oldest first; never empty.
    keys: Vec<Key>,
    service: String,
}

#[derive(Clone)]
struct Key {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token rejected: {0}")]
    Invalid(String),
    /// Signed with a key this node does not know (yet): another node may
    /// have just created it, so the caller re-reads the keys once.
    #[error("token rejected: unknown signing key")]
    UnknownKey,
    #[error("no token-signing key")]
    NoKey,
}

impl TokenKeys {
    /// `keys`: (kid, secret), oldest first.
    pub fn new<'a>(keys: impl IntoIterator<Item = (&'a str, &'a [u8])>, service: &str) -> Result<Self, TokenError> {
        let keys: Vec<Key> = keys
            .into_iter()
            .map(|(kid, secret)| Key {
                kid: kid.to_owned(),
                encoding: EncodingKey::from_secret(secret),
                decoding: DecodingKey::from_secret(secret),
            })
            .collect();
        if keys.is_empty() {
            return Err(TokenError::NoKey);
        }
        Ok(Self { keys, service: service.to_owned() })
    }

    /// The id of the key that signs.
    pub fn signing_kid(&self) -> &str {
        self.keys.last().map_or("", |k| k.kid.as_str())
    }

    pub fn knows(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid == kid)
    }

    pub fn issue(&self, subject: &str, access: Vec<Access>, now: i64, ttl_secs: i64) -> Result<String, TokenError> {
        let key = self.keys.last().ok_or(TokenError::NoKey)?;
        let claims = Claims {
            iss: ISSUER.into(),
            sub: subject.into(),
            aud: self.service.clone(),
            exp: now + ttl_secs,
            nbf: now - 5,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            access,
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        encode(&header, &claims, &key.encoding).map_err(|e| TokenError::Invalid(e.to_string()))
    }

    /// Checks signature, algorithm, issuer, audience, expiry and not-before.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_issuer(&[ISSUER]);
        v.set_audience(&[self.service.as_str()]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub", "nbf"]);
        v.leeway = 0;
        v.validate_nbf = true;
        let header = decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        let check =
            |key: &Key| decode::<Claims>(token, &key.decoding, &v).map(|d| d.claims).map_err(|e| TokenError::Invalid(e.to_string()));
        match header.kid {
            Some(kid) => check(self.keys.iter().find(|k| k.kid == kid).ok_or(TokenError::UnknownKey)?),
            None => {
                let mut last = TokenError::NoKey;
                for key in self.keys.iter().rev() {
                    match check(key) {
                        Ok(claims) => return Ok(claims),
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn issued_tokens_verify_and_others_do_not() {
        let keys = TokenKeys::new([("a", &b"k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1"[..])], "wharf").unwrap();
        let access = vec![Access { kind: "repository".into(), name: "a".into(), actions: vec!["pull".into()] }];
        let t = keys.issue("alice", access.clone(), now(), 300).unwrap();
        let c = keys.verify(&t).unwrap();
        assert_eq!(c.sub, "alice");
        assert_eq!(c.access, access);

        let other = TokenKeys::new([("a", &b"k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2"[..])], "wharf").unwrap();
        assert!(other.verify(&t).is_err(), "signed with another key");
        let other_aud = TokenKeys::new([("a", &b"k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1"[..])], "elsewhere").unwrap();
        assert!(other_aud.verify(&t).is_err(), "wrong audience");
        let expired = keys.issue("alice", vec![], now() - 1000, 300).unwrap();
        assert!(keys.verify(&expired).is_err(), "expired");
        let mut tampered = t.clone();
        tampered.insert(t.len() / 2, 'x');
        assert!(keys.verify(&tampered).is_err(), "tampered");
    }

    #[test]
    fn the_newest_key_signs_and_every_listed_key_verifies() {
        let (k1, k2) = (&b"k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1"[..], &b"k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2"[..]);
        let old = TokenKeys::new([("one", k1)], "wharf").unwrap();
        let rotated = TokenKeys::new([("one", k1), ("two", k2)], "wharf").unwrap();
        let newer_only = TokenKeys::new([("two", k2)], "wharf").unwrap();
        let before = old.issue("alice", vec![], now(), 300).unwrap();
        let after = rotated.issue("alice", vec![], now(), 300).unwrap();
        assert_eq!(decode_header(&after).unwrap().kid.as_deref(), Some("two"));
        assert!(rotated.verify(&before).is_ok(), "a token of the previous key still verifies");
        assert!(newer_only.verify(&after).is_ok());
        assert!(matches!(old.verify(&after), Err(TokenError::UnknownKey)), "a key this node has not read yet");
        assert!(matches!(newer_only.verify(&before), Err(TokenError::UnknownKey)), "a dropped key");
        // A token from before keys had ids (no kid) verifies against any listed key.
        let legacy = encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                iss: ISSUER.into(),
                sub: "bob".into(),
                aud: "wharf".into(),
                exp: now() + 60,
                nbf: now() - 5,
                iat: now(),
                jti: "j".into(),
                access: vec![],
            },
            &EncodingKey::from_secret(k1),
        )
        .unwrap();
        assert_eq!(rotated.verify(&legacy).unwrap().sub, "bob");
        assert!(newer_only.verify(&legacy).is_err());
        assert!(matches!(TokenKeys::new(std::iter::empty::<(&str, &[u8])>(), "wharf"), Err(TokenError::NoKey)));
    }
}
