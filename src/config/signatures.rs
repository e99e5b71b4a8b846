//! `[governance.gates.<stage>.require_signature]`: the keys a digest must be
//! signed with (cosign simple signing) to enter a stage.
//!
//! Keys are parsed while the configuration is read (serde `try_from`), so a
//! key that is not a P-256, Ed25519 or RSA public key in PEM, a missing key
//! file or a bad validity date stops start-up with an error naming the key.

use std::path::PathBuf;

use p256::pkcs8::{DecodePublicKey, EncodePublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Largest PEM text accepted for a key (an RSA-8192 SPKI PEM is ~1.5 KiB).
const MAX_PEM_BYTES: u64 = 16 * 1024;

/// Whether an index is checked as itself or through each platform manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IndexPolicy {
    /// The index digest itself must be signed (what `cosign sign` of a
    /// multi-platform tag does by default).
    #[default]
    Index,
    /// Every platform manifest of the index must be signed.
    Platforms,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignatureGate {
    /// The trusted keys; at least `min_signers` of them must have signed.
    pub keys: Vec<TrustedKey>,
    /// Distinct trusted keys that must have signed the digest.
    pub min_signers: u32,
    /// Annotations (cosign `sign -a key=value`, the payload's `optional`)
    /// each counted signature must carry with exactly this value.
    pub required_annotations: std::collections::BTreeMap<String, String>,
    /// The payload's `critical.identity.docker-reference` must name the
    /// repository being promoted (a signature for another repository's
    /// image of the same digest does not count).
    pub check_repository: bool,
    pub index: IndexPolicy,
}

impl Default for SignatureGate {
    fn default() -> Self {
        Self { keys: vec![], min_signers: 1, required_annotations: Default::default(), check_repository: false, index: IndexPolicy::Index }
    }
}

impl SignatureGate {
    /// Called from `Config::validate`: the gate must be satisfiable.
    pub fn validate(&self, stage: &str) -> Result<(), String> {
        let at = format!("governance.gates.{stage}.require_signature");
        if self.min_signers == 0 {
            return Err(format!("{at}.min_signers must be at least 1"));
        }
        if self.keys.len() > 64 {
            return Err(format!("{at}.keys lists more than 64 keys"));
        }
        let usable = self.keys.iter().filter(|k| !k.revoked).count();
        if usable < self.min_signers as usize {
            return Err(format!("{at}: min_signers is {} but only {usable} key(s) are not revoked", self.min_signers));
        }
        for (i, k) in self.keys.iter().enumerate() {
            if self.keys[..i].iter().any(|o| o.name == k.name) {
                return Err(format!("{at}.keys: the name {:?} is used twice", k.name));
            }
        }
        Ok(())
    }
}

/// A parsed public key.
#[derive(Debug, Clone)]
pub enum PublicKey {
    EcdsaP256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
    Rsa(rsa::RsaPublicKey),
}

impl PublicKey {
    /// Parses an SPKI PEM (`-----BEGIN PUBLIC KEY-----`, what `cosign
    /// generate-key-pair` writes to cosign.pub); RSA also as PKCS#1.
    pub fn from_pem(pem: &str) -> Result<(Self, Vec<u8>), String> {
        if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_pem(pem) {
            let der = k.to_public_key_der().map_err(|e| e.to_string())?;
            return Ok((PublicKey::EcdsaP256(k), der.as_bytes().to_vec()));
        }
        if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_pem(pem) {
            let der = k.to_public_key_der().map_err(|e| e.to_string())?;
            return Ok((PublicKey::Ed25519(k), der.as_bytes().to_vec()));
        }
        let rsa_key = rsa::RsaPublicKey::from_public_key_pem(pem)
            .or_else(|_| <rsa::RsaPublicKey as rsa::pkcs1::DecodeRsaPublicKey>::from_pkcs1_pem(pem));
        if let Ok(k) = rsa_key {
            if !(2048..=8192).contains(&(rsa::traits::PublicKeyParts::size(&k) * 8)) {
                return Err("an RSA key must have 2048 to 8192 bits".into());
            }
            let der = k.to_public_key_der().map_err(|e| e.to_string())?;
            return Ok((PublicKey::Rsa(k), der.as_bytes().to_vec()));
        }
        Err("not an ECDSA P-256, Ed25519 or RSA public key in PEM (-----BEGIN PUBLIC KEY-----)".into())
    }

    pub fn algorithm(&self) -> &'static str {
        match self {
            PublicKey::EcdsaP256(_) => "ecdsa-p256",
            PublicKey::Ed25519(_) => "ed25519",
            PublicKey::Rsa(_) => "rsa",
        }
    }
}

/// A trusted key as written in the configuration.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TrustedKeyConfig {
    pub name: String,
    /// A PEM file (e.g. cosign.pub) ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pem_file: Option<PathBuf>,
    /// ... or the PEM text inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pem: Option<String>,
    /// RFC 3339; signatures verified before this time do not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// RFC 3339; signatures verified after this time do not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// A revoked key counts for nothing, and releases it verified are
    /// flagged in history (and the `wharf_releases_signed_by_revoked_key` gauge).
    #[serde(default)]
    pub revoked: bool,
}

/// A trusted key, parsed when the configuration is read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "TrustedKeyConfig", into = "TrustedKeyConfig")]
pub struct TrustedKey {
    pub name: String,
    pub key: PublicKey,
    /// `sha256:<hex>` of the key's DER SubjectPublicKeyInfo.
    pub fingerprint: String,
    /// Unix ms.
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    pub revoked: bool,
    raw: TrustedKeyConfig,
}

impl TrustedKey {
    /// Whether the key may vouch for a signature verified at `now_ms`.
    pub fn valid_at(&self, now_ms: i64) -> Result<(), String> {
        if self.revoked {
            return Err(format!("key {} is revoked", self.name));
        }
        if self.not_before.is_some_and(|t| now_ms < t) {
            return Err(format!("key {} is not valid before {}", self.name, self.raw.not_before.as_deref().unwrap_or_default()));
        }
        if self.not_after.is_some_and(|t| now_ms > t) {
            return Err(format!("key {} expired at {}", self.name, self.raw.not_after.as_deref().unwrap_or_default()));
        }
        Ok(())
    }
}

fn rfc3339_ms(name: &str, field: &str, value: Option<&str>) -> Result<Option<i64>, String> {
    value
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| t.timestamp_millis())
                .map_err(|e| format!("trusted key {name:?}: {field} {v:?} is not an RFC 3339 time ({e})"))
        })
        .transpose()
}

impl TryFrom<TrustedKeyConfig> for TrustedKey {
    type Error = String;

    fn try_from(raw: TrustedKeyConfig) -> Result<Self, String> {
        let name = raw.name.clone();
        if name.is_empty() || name.len() > 128 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c)) {
            return Err(format!("trusted key name {name:?} must be 1-128 characters of A-Z a-z 0-9 - _ . @"));
        }
        let pem = match (&raw.pem_file, &raw.pem) {
            (Some(path), None) => {
                let len = std::fs::metadata(path).map_err(|e| format!("trusted key {name:?}: {}: {e}", path.display()))?.len();
                if len > MAX_PEM_BYTES {
                    return Err(format!("trusted key {name:?}: {} is larger than {MAX_PEM_BYTES} bytes", path.display()));
                }
                std::fs::read_to_string(path).map_err(|e| format!("trusted key {name:?}: {}: {e}", path.display()))?
            }
            (None, Some(pem)) => pem.clone(),
            _ => return Err(format!("trusted key {name:?}: give exactly one of pem_file and pem")),
        };
        let (key, der) = PublicKey::from_pem(pem.trim()).map_err(|e| format!("trusted key {name:?}: {e}"))?;
        let not_before = rfc3339_ms(&name, "not_before", raw.not_before.as_deref())?;
        let not_after = rfc3339_ms(&name, "not_after", raw.not_after.as_deref())?;
        if let (Some(a), Some(b)) = (not_before, not_after) {
            if a >= b {
                return Err(format!("trusted key {name:?}: not_before must be earlier than not_after"));
            }
        }
        Ok(TrustedKey {
            name,
            key,
            fingerprint: format!("sha256:{}", hex::encode(Sha256::digest(&der))),
            not_before,
            not_after,
            revoked: raw.revoked,
            raw,
        })
    }
}

impl From<TrustedKey> for TrustedKeyConfig {
    fn from(k: TrustedKey) -> Self {
        k.raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p256_pem() -> String {
        let sk = p256::ecdsa::SigningKey::random(&mut rand_core_06::OsRng);
        sk.verifying_key().to_public_key_pem(p256::pkcs8::LineEnding::LF).expect("encodes")
    }

    fn key(pem: Option<&str>) -> TrustedKeyConfig {
        TrustedKeyConfig { name: "ci".into(), pem: pem.map(str::to_owned), ..Default::default() }
    }

    #[test]
    fn bad_keys_are_named() {
        let err = TrustedKey::try_from(key(Some("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"))).unwrap_err();
        assert!(err.starts_with("trusted key \"ci\": not an ECDSA P-256"), "{err}");
        let err = TrustedKey::try_from(key(None)).unwrap_err();
        assert!(err.contains("exactly one of pem_file and pem"), "{err}");
        let mut missing = key(None);
        missing.pem_file = Some("/nonexistent/cosign.pub".into());
        assert!(TrustedKey::try_from(missing).unwrap_err().contains("/nonexistent/cosign.pub"));
        let mut bad_date = key(Some(&p256_pem()));
        bad_date.not_after = Some("tomorrow".into());
        assert!(TrustedKey::try_from(bad_date).unwrap_err().contains("not_after \"tomorrow\""));
    }

    #[test]
    fn validity_window() {
        let mut raw = key(Some(&p256_pem()));
        raw.not_before = Some("2026-01-01T00:00:00Z".into());
        raw.not_after = Some("2027-01-01T00:00:00Z".into());
        let k = TrustedKey::try_from(raw).expect("parses");
        assert_eq!(k.key.algorithm(), "ecdsa-p256");
        assert!(k.fingerprint.starts_with("sha256:") && k.fingerprint.len() == 71);
        let jan_2026 = 1_767_225_600_000;
        assert!(k.valid_at(jan_2026 - 1).unwrap_err().contains("not valid before"));
        assert!(k.valid_at(jan_2026 + 1).is_ok());
        assert!(k.valid_at(jan_2026 + 400 * 86_400_000).unwrap_err().contains("expired"));
    }
}
