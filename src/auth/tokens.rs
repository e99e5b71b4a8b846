//! Registry bearer tokens (JWT, HS256): what docker, containerd, podman,
//! skopeo and crane get from `/auth/token` and send back on every request.

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
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

#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    service: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token rejected: {0}")]
    Invalid(String),
}

impl TokenKeys {
    pub fn new(secret: &[u8], service: &str) -> Self {
        Self { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret), service: service.to_owned() }
    }

    pub fn issue(&self, subject: &str, access: Vec<Access>, now: i64, ttl_secs: i64) -> Result<String, TokenError> {
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
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(|e| TokenError::Invalid(e.to_string()))
    }

    /// Checks signature, algorithm, issuer, audience, expiry and not-before.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_issuer(&[ISSUER]);
        v.set_audience(&[self.service.as_str()]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub", "nbf"]);
        v.leeway = 0;
        v.validate_nbf = true;
        decode::<Claims>(token, &self.decoding, &v).map(|d| d.claims).map_err(|e| TokenError::Invalid(e.to_string()))
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
        let keys = TokenKeys::new(b"k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1", "wharf");
        let access = vec![Access { kind: "repository".into(), name: "a".into(), actions: vec!["pull".into()] }];
        let t = keys.issue("alice", access.clone(), now(), 300).unwrap();
        let c = keys.verify(&t).unwrap();
        assert_eq!(c.sub, "alice");
        assert_eq!(c.access, access);

        let other = TokenKeys::new(b"k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2", "wharf");
        assert!(other.verify(&t).is_err(), "signed with another key");
        let other_aud = TokenKeys::new(b"k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1", "elsewhere");
        assert!(other_aud.verify(&t).is_err(), "wrong audience");
        let expired = keys.issue("alice", vec![], now() - 1000, 300).unwrap();
        assert!(keys.verify(&expired).is_err(), "expired");
        let mut tampered = t.clone();
        tampered.insert(t.len() / 2, 'x');
        assert!(keys.verify(&tampered).is_err(), "tampered");
    }
}
