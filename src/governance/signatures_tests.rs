//! Test vectors for every key type, made with the crates at test time, and
//! hostile signature manifests.

use base64::Engine as _;
use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::json;

use super::*;
use crate::config::signatures::TrustedKeyConfig;

const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const OTHER: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
const NOW: i64 = 1_790_000_000_000;

enum Signing {
    P256(p256::ecdsa::SigningKey),
    Ed(ed25519_dalek::SigningKey),
    RsaPkcs1(rsa::RsaPrivateKey),
    RsaPss(rsa::RsaPrivateKey),
}

impl Signing {
    fn pem(&self) -> String {
        match self {
            Signing::P256(k) => k.verifying_key().to_public_key_pem(LineEnding::LF),
            Signing::Ed(k) => k.verifying_key().to_public_key_pem(LineEnding::LF),
            Signing::RsaPkcs1(k) | Signing::RsaPss(k) => k.to_public_key().to_public_key_pem(LineEnding::LF),
        }
        .expect("encodes")
    }

    fn sign(&self, payload: &[u8]) -> String {
        use p256::ecdsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
        let raw: Vec<u8> = match self {
            Signing::P256(k) => {
                let s: p256::ecdsa::Signature = k.sign(payload);
                s.to_der().as_bytes().to_vec()
            }
            Signing::Ed(k) => k.sign(payload).to_bytes().to_vec(),
            Signing::RsaPkcs1(k) => rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(k.clone()).sign(payload).to_vec(),
            Signing::RsaPss(k) => {
                rsa::pss::SigningKey::<rsa::sha2::Sha256>::new(k.clone()).sign_with_rng(&mut rand_core_06::OsRng, payload).to_vec()
            }
        };
        base64::engine::general_purpose::STANDARD.encode(raw)
    }
}

fn p256_key() -> Signing {
    Signing::P256(p256::ecdsa::SigningKey::random(&mut rand_core_06::OsRng))
}

fn rsa_key() -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::new(&mut rand_core_06::OsRng, 2048).expect("generates")
}

fn trusted(name: &str, s: &Signing) -> TrustedKey {
    TrustedKey::try_from(TrustedKeyConfig { name: name.into(), pem: Some(s.pem()), ..Default::default() }).expect("parses")
}

fn gate(keys: Vec<TrustedKey>) -> SignatureGate {
    SignatureGate { keys, ..Default::default() }
}

/// A simple-signing payload as cosign writes it.
fn payload(digest: &str, reference: &str, optional: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature"
        },
        "optional": optional
    }))
    .expect("serializes")
}

fn candidate(p: &[u8], signature: String) -> Candidate {
    Candidate { manifest: OTHER.into(), payload: Ok(p.to_vec()), signature }
}

#[test]
fn every_key_type_verifies() {
    let ed = Signing::Ed(ed25519_dalek::SigningKey::generate(&mut rand_core_06::OsRng));
    let rsa_private = rsa_key();
    let keys = [p256_key(), ed, Signing::RsaPkcs1(rsa_private.clone()), Signing::RsaPss(rsa_private)];
    for (i, k) in keys.iter().enumerate() {
        let t = trusted("k", k);
        let p = payload(DIGEST, "127.0.0.1:5000/team/app", json!(null));
        let signers = verify(&gate(vec![t.clone()]), "team/app", DIGEST, &[candidate(&p, k.sign(&p))], NOW).expect("verifies");
        assert_eq!(signers.len(), 1, "key {i}");
        assert_eq!(signers[0].fingerprint, t.fingerprint);
        assert_eq!(signers[0].algorithm, t.key.algorithm());
        // One flipped payload byte: the signature no longer verifies.
        let mut tampered = p.clone();
        let at = tampered.iter().position(|&b| b == b'1').expect("digest digit");
        tampered[at] = b'3';
        let err = verify(&gate(vec![t]), "team/app", DIGEST, &[candidate(&tampered, k.sign(&p))], NOW).unwrap_err();
        assert!(matches!(&err[0], GateFailure::NoTrustedSignature { examined: 1, .. }), "key {i}: {err:?}");
        assert!(err[0].to_string().contains("verifies with no trusted key"), "{}", err[0]);
    }
}

#[test]
fn untrusted_key_and_copied_signature_are_refused() {
    let (trusted_key, stranger) = (p256_key(), p256_key());
    let g = gate(vec![trusted("release", &trusted_key)]);
    let p = payload(DIGEST, "team/app", json!(null));
    let err = verify(&g, "team/app", DIGEST, &[candidate(&p, stranger.sign(&p))], NOW).unwrap_err();
    assert_eq!(err[0].gate(), "require_signature");
    assert!(err[0].to_string().starts_with(&format!("require_signature: no signature by a trusted key for {DIGEST}")), "{}", err[0]);
    // A valid signature of another digest, copied next to this one.
    let other = payload(OTHER, "team/app", json!(null));
    let err = verify(&g, "team/app", DIGEST, &[candidate(&other, trusted_key.sign(&other))], NOW).unwrap_err();
    assert!(err.contains(&GateFailure::SignatureForOtherDigest { key: "release".into(), claimed: OTHER.into() }), "{err:?}");
    assert!(err.iter().any(|f| f.to_string() == format!("require_signature: signature by key release is for another digest ({OTHER})")));
}

#[test]
fn repository_annotations_and_min_signers() {
    let (a, b) = (p256_key(), p256_key());
    let mut g = gate(vec![trusted("a", &a), trusted("b", &b)]);
    g.check_repository = true;
    let wrong_repo = payload(DIGEST, "registry.example/evil/app", json!(null));
    let err = verify(&g, "team/app", DIGEST, &[candidate(&wrong_repo, a.sign(&wrong_repo))], NOW).unwrap_err();
    assert!(err.iter().any(|f| f.to_string().contains("payload claims repository \"registry.example/evil/app\"")), "{err:?}");

    g.required_annotations.insert("ci".into(), "release".into());
    let plain = payload(DIGEST, "127.0.0.1:5000/team/app", json!(null));
    let annotated = payload(DIGEST, "127.0.0.1:5000/team/app", json!({"ci": "release"}));
    let err = verify(&g, "team/app", DIGEST, &[candidate(&plain, a.sign(&plain))], NOW).unwrap_err();
    assert!(err.contains(&GateFailure::SignatureAnnotation { key: "a".into(), annotation: "ci=release".into() }), "{err:?}");

    g.min_signers = 2;
    let one = [candidate(&annotated, a.sign(&annotated)), candidate(&annotated, a.sign(&annotated))];
    let err = verify(&g, "team/app", DIGEST, &one, NOW).unwrap_err();
    assert_eq!(err[0], GateFailure::TooFewSigners { subject: DIGEST.into(), signers: vec!["a".into()], needs: 2 });
    let two = [candidate(&annotated, a.sign(&annotated)), candidate(&annotated, b.sign(&annotated))];
    let signers = verify(&g, "team/app", DIGEST, &two, NOW).expect("two signers");
    assert_eq!(signers.iter().map(|s| s.key.as_str()).collect::<Vec<_>>(), ["a", "b"]);
}

#[test]
fn revoked_and_expired_keys_do_not_count() {
    let k = p256_key();
    let mut revoked = trusted("old", &k);
    revoked.revoked = true;
    let p = payload(DIGEST, "team/app", json!(null));
    let err = verify(&gate(vec![revoked]), "team/app", DIGEST, &[candidate(&p, k.sign(&p))], NOW).unwrap_err();
    assert!(err.iter().any(|f| f.to_string().contains("signature by key old does not count: key old is revoked")), "{err:?}");
    let mut expired = trusted("old", &k);
    expired.not_after = Some(NOW - 1);
    let err = verify(&gate(vec![expired]), "team/app", DIGEST, &[candidate(&p, k.sign(&p))], NOW).unwrap_err();
    assert!(err.iter().any(|f| matches!(f, GateFailure::SignatureNotCounted { .. })), "{err:?}");
}

#[test]
fn hostile_input_is_refused_not_panicked_on() {
    let k = p256_key();
    let g = gate(vec![trusted("k", &k)]);
    let big = vec![b'{'; (MAX_PAYLOAD_BYTES + 1) as usize];
    let cases = [
        candidate(&big, k.sign(&big)),
        candidate(b"{}", "not base64 at all!!".into()),
        candidate(b"{}", "A".repeat(MAX_SIGNATURE_B64 + 1)),
        candidate(b"{}", String::new()),
        Candidate { manifest: OTHER.into(), payload: Err("the payload blob is missing".into()), signature: String::new() },
        candidate(b"\xff\xfe garbage", k.sign(b"\xff\xfe garbage")),
        candidate(b"[]", k.sign(b"[]")),
    ];
    for (i, c) in cases.iter().enumerate() {
        let err = verify(&g, "team/app", DIGEST, std::slice::from_ref(c), NOW).unwrap_err();
        assert_eq!(err[0].gate(), "require_signature", "case {i}: {err:?}");
    }
    // Many signatures: only the first MAX_SIGNATURES are looked at.
    let p = payload(DIGEST, "team/app", json!(null));
    let mut many = vec![candidate(b"{}", "AAAA".into()); MAX_SIGNATURES];
    many.push(candidate(&p, k.sign(&p)));
    assert!(verify(&g, "team/app", DIGEST, &many, NOW).is_err());

    for manifest in [
        &b"not json"[..],
        br#"{"layers": 5}"#,
        br#"{"layers": [{"mediaType": "application/octet-stream", "digest": "sha256:00", "size": 1}]}"#,
        br#"{"layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": "x", "size": 1,
             "annotations": {"dev.cosignproject.cosign/signature": "AAAA"}}]}"#,
        br#"{"layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "size": 99999999999,
             "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
             "annotations": {"dev.cosignproject.cosign/signature": "AAAA"}}]}"#,
        br#"{"layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "size": 10,
             "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111"}]}"#,
    ] {
        assert!(signature_layers(manifest).is_err(), "{}", String::from_utf8_lossy(manifest));
    }
    let good = format!(
        r#"{{"layers": [{{"mediaType": "{SIMPLE_SIGNING_MEDIA_TYPE}", "size": 10, "digest": "{DIGEST}",
            "annotations": {{"{SIGNATURE_ANNOTATION}": "AAAA"}}}}]}}"#
    );
    assert_eq!(
        signature_layers(good.as_bytes()).expect("one layer"),
        vec![LayerRef { payload_digest: DIGEST.into(), payload_size: 10, signature: "AAAA".into() }]
    );
}

#[test]
fn repository_names() {
    for r in ["team/app", "127.0.0.1:5000/team/app", "localhost/team/app", "reg.example/team/app:v1", "reg.example/team/app@sha256:00"] {
        assert!(names_repository(r, "team/app"), "{r}");
    }
    for r in ["", "app", "evil/team/app", "reg.example/team/app2", "team/app/x"] {
        assert!(!names_repository(r, "team/app"), "{r}");
    }
}
