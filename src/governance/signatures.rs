//! The signature gate, pure: cosign "simple signing" signatures checked
//! against a stage's trusted keys.
//!
//! A cosign signature is a manifest (tagged `sha256-<hex>.sig`, or an OCI 1.1
//! referrer of the signed digest) whose layers are simple-signing payloads,
//! each with its base64 signature in the `dev.cosignproject.cosign/signature`
//! annotation. A signature counts when it verifies with a trusted key that is
//! valid now, and its payload names the exact digest (and, if configured,
//! the repository and the required annotations). Everything read here comes
//! from clients, so every size is bounded and every error is a refusal.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::signatures::{PublicKey, SignatureGate, TrustedKey};
use crate::governance::gates::GateFailure;

pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// cosign's artifactType for a signature pushed as an OCI 1.1 referrer.
pub const COSIGN_SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// Largest simple-signing payload read (cosign's are ~250 bytes plus annotations).
pub const MAX_PAYLOAD_BYTES: u64 = 64 * 1024;
/// Longest base64 signature accepted (RSA-8192 is 1 KiB, 1368 in base64).
pub const MAX_SIGNATURE_B64: usize = 4096;
/// Signature layers examined per digest; the rest are ignored.
pub const MAX_SIGNATURES: usize = 32;
/// Refusal reasons quoted in one failure.
const MAX_QUOTED: usize = 5;

/// SBOM artifact types accepted by the `require_sbom` gate.
pub const SBOM_ARTIFACT_TYPES: &[&str] =
    &["application/spdx+json", "text/spdx", "application/vnd.cyclonedx+json", "application/vnd.cyclonedx+xml", "application/vnd.cyclonedx"];

/// One signature layer found in a signature manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRef {
    pub payload_digest: String,
    pub payload_size: u64,
    pub signature: String,
}

/// The signature layers of a signature manifest: those with the
/// simple-signing media type, a bounded size and a signature annotation.
/// Layers of other media types are skipped; a manifest that is not JSON, or
/// has no usable layer, is an error naming why.
pub fn signature_layers(manifest: &[u8]) -> Result<Vec<LayerRef>, String> {
    let value: Value = serde_json::from_slice(manifest).map_err(|_| "the signature manifest is not JSON".to_owned())?;
    let layers = value.get("layers").and_then(Value::as_array).ok_or_else(|| "the signature manifest has no layers".to_owned())?;
    let mut out = Vec::new();
    let mut why = "no layer has the simple-signing media type".to_owned();
    for layer in layers.iter().take(MAX_SIGNATURES) {
        if layer.get("mediaType").and_then(Value::as_str) != Some(SIMPLE_SIGNING_MEDIA_TYPE) {
            continue;
        }
        let (Some(digest), Some(size)) = (layer.get("digest").and_then(Value::as_str), layer.get("size").and_then(Value::as_u64)) else {
            why = "a signature layer lacks its digest or size".into();
            continue;
        };
        if size > MAX_PAYLOAD_BYTES {
            why = format!("a signature payload of {size} bytes is larger than {MAX_PAYLOAD_BYTES}");
            continue;
        }
        let Some(signature) = layer.pointer("/annotations/dev.cosignproject.cosign~1signature").and_then(Value::as_str) else {
            why = format!("a signature layer lacks the {SIGNATURE_ANNOTATION} annotation");
            continue;
        };
        if crate::domain::Digest::parse(digest).is_err() {
            why = "a signature layer's digest is invalid".into();
            continue;
        }
        out.push(LayerRef { payload_digest: digest.to_owned(), payload_size: size, signature: signature.to_owned() });
    }
    if out.is_empty() {
        return Err(why);
    }
    Ok(out)
}

/// A signature to check: its payload (or why it could not be read) and its
/// base64 signature, from the signature manifest `manifest`.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub manifest: String,
    pub payload: Result<Vec<u8>, String>,
    pub signature: String,
}

/// Who vouched for a digest, as recorded with the release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signer {
    /// The trusted key's configured name.
    pub key: String,
    /// `sha256:` of the key's DER SubjectPublicKeyInfo.
    pub fingerprint: String,
    pub algorithm: String,
    /// The digest the signature is for (the index or one platform manifest).
    pub subject: String,
    /// The signature manifest that carried it.
    pub signature_manifest: String,
}

/// The signature gate's verdict on one digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Verdict {
    /// Unix ms of the verification.
    pub verified_at: i64,
    pub signers: Vec<Signer>,
    /// SBOM referrers found by the `require_sbom` gate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sboms: Vec<String>,
    /// Set on a rollback: the release whose verdict was re-used (no new
    /// verification happened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_from_sequence: Option<i64>,
}

/// What a verified payload says.
struct Claims {
    digest: Option<String>,
    reference: Option<String>,
    annotations: BTreeMap<String, String>,
}

fn claims(payload: &[u8]) -> Result<Claims, String> {
    let v: Value = serde_json::from_slice(payload).map_err(|_| "the payload is not JSON".to_owned())?;
    let critical = v.get("critical").ok_or_else(|| "the payload has no `critical` section".to_owned())?;
    let annotations = v
        .get("optional")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned))).collect())
        .unwrap_or_default();
    Ok(Claims {
        digest: critical.pointer("/image/docker-manifest-digest").and_then(Value::as_str).map(str::to_owned),
        reference: critical.pointer("/identity/docker-reference").and_then(Value::as_str).map(str::to_owned),
        annotations,
    })
}

/// Whether a docker reference (`host:port/team/app`, `team/app`, maybe with
/// a tag or digest) names `repository`.
pub fn names_repository(reference: &str, repository: &str) -> bool {
    let path = reference.split('@').next().unwrap_or_default();
    // A trailing `:tag` (a colon after the last slash) is not part of the name.
    let path = match path.rfind(':') {
        Some(i) if !path[i..].contains('/') && path[..i].contains('/') => &path[..i],
        _ => path,
    };
    if path == repository {
        return true;
    }
    match path.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') || host == "localhost" => rest == repository,
        _ => false,
    }
}

fn verifies(key: &PublicKey, payload: &[u8], signature: &[u8]) -> bool {
    use p256::ecdsa::signature::Verifier;
    match key {
        PublicKey::EcdsaP256(k) => {
            // cosign writes ASN.1 DER; raw r||s (64 bytes) is accepted too.
            let sig = p256::ecdsa::Signature::from_der(signature).or_else(|_| p256::ecdsa::Signature::from_slice(signature));
            sig.is_ok_and(|s| k.verify(payload, &s).is_ok())
        }
        PublicKey::Ed25519(k) => ed25519_dalek::Signature::from_slice(signature).is_ok_and(|s| k.verify_strict(payload, &s).is_ok()),
        PublicKey::Rsa(k) => {
            use rsa::sha2::Sha256;
            let pkcs1 = rsa::pkcs1v15::Signature::try_from(signature)
                .is_ok_and(|s| rsa::pkcs1v15::VerifyingKey::<Sha256>::new(k.clone()).verify(payload, &s).is_ok());
            pkcs1
                || rsa::pss::Signature::try_from(signature)
                    .is_ok_and(|s| rsa::pss::VerifyingKey::<Sha256>::new(k.clone()).verify(payload, &s).is_ok())
        }
    }
}

/// Checks the signatures of `subject` (a digest in `repository`) against the
/// gate: `Ok` with the counted signers when at least `min_signers` distinct
/// trusted keys vouch for it, else every reason it falls short.
pub fn verify(
    gate: &SignatureGate,
    repository: &str,
    subject: &str,
    candidates: &[Candidate],
    now_ms: i64,
) -> Result<Vec<Signer>, Vec<GateFailure>> {
    let mut failures: Vec<GateFailure> = Vec::new();
    let mut rejected: Vec<String> = Vec::new();
    let mut signers: Vec<Signer> = Vec::new();
    let mut counted: BTreeSet<&str> = BTreeSet::new();
    let b64 = base64::engine::general_purpose::STANDARD;
    for c in candidates.iter().take(MAX_SIGNATURES) {
        let payload = match &c.payload {
            Ok(p) if p.len() as u64 <= MAX_PAYLOAD_BYTES => p,
            Ok(_) => {
                rejected.push(format!("{}: payload larger than {MAX_PAYLOAD_BYTES} bytes", c.manifest));
                continue;
            }
            Err(why) => {
                rejected.push(format!("{}: {why}", c.manifest));
                continue;
            }
        };
        if c.signature.len() > MAX_SIGNATURE_B64 {
            rejected.push(format!("{}: signature longer than {MAX_SIGNATURE_B64} characters", c.manifest));
            continue;
        }
        let Ok(signature) = b64.decode(c.signature.trim()) else {
            rejected.push(format!("{}: the signature is not base64", c.manifest));
            continue;
        };
        let Some(key) = gate.keys.iter().find(|k| verifies(&k.key, payload, &signature)) else {
            rejected.push(format!("{}: the signature verifies with no trusted key", c.manifest));
            continue;
        };
        if let Some(failure) = check_signed(gate, key, repository, subject, payload, now_ms) {
            failures.push(failure);
            continue;
        }
        if counted.insert(key.name.as_str()) {
            signers.push(Signer {
                key: key.name.clone(),
                fingerprint: key.fingerprint.clone(),
                algorithm: key.key.algorithm().to_owned(),
                subject: subject.to_owned(),
                signature_manifest: c.manifest.clone(),
            });
        }
    }
    if signers.len() >= gate.min_signers as usize {
        return Ok(signers);
    }
    failures.dedup();
    if signers.is_empty() {
        rejected.truncate(MAX_QUOTED);
        failures.insert(0, GateFailure::NoTrustedSignature { subject: subject.to_owned(), examined: candidates.len(), rejected });
    } else {
        failures.insert(
            0,
            GateFailure::TooFewSigners {
                subject: subject.to_owned(),
                signers: signers.iter().map(|s| s.key.clone()).collect(),
                needs: gate.min_signers,
            },
        );
    }
    Err(failures)
}

/// Why a signature that verifies with `key` still does not count, if so.
fn check_signed(
    gate: &SignatureGate,
    key: &TrustedKey,
    repository: &str,
    subject: &str,
    payload: &[u8],
    now_ms: i64,
) -> Option<GateFailure> {
    let unusable = |reason: String| Some(GateFailure::SignatureNotCounted { key: key.name.clone(), reason });
    if let Err(why) = key.valid_at(now_ms) {
        return unusable(why);
    }
    let claims = match claims(payload) {
        Ok(c) => c,
        Err(why) => return unusable(why),
    };
    match claims.digest.as_deref() {
        Some(d) if d == subject => {}
        claimed => {
            return Some(GateFailure::SignatureForOtherDigest {
                key: key.name.clone(),
                claimed: claimed.unwrap_or("no digest").chars().take(128).collect(),
            })
        }
    }
    if gate.check_repository {
        let reference = claims.reference.unwrap_or_default();
        if !names_repository(&reference, repository) {
            return Some(GateFailure::SignatureForOtherRepository {
                key: key.name.clone(),
                claimed: reference.chars().take(256).collect(),
            });
        }
    }
    for (name, value) in &gate.required_annotations {
        if claims.annotations.get(name) != Some(value) {
            return Some(GateFailure::SignatureAnnotation { key: key.name.clone(), annotation: format!("{name}={value}") });
        }
    }
    None
}

#[cfg(test)]
#[path = "signatures_tests.rs"]
mod tests;
