//! Signed promotions over HTTP: cosign-format signatures (simple-signing
//! payloads, made here with the RustCrypto crates) pushed to a running
//! Wharf both as `sha256-<hex>.sig` tags and as OCI 1.1 referrers; the
//! `require_signature` gate, the verdict in history and audit, rollback,
//! retention + GC, key revocation and the SBOM gate. tests/clients/cosign.sh
//! shows the same with the real cosign binary.

mod common;

use base64::Engine as _;
use common::*;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::{EncodePublicKey, LineEnding};
use reqwest::Method;
use serde_json::{json, Value};

const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const COSIGN_SIG_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

struct Key {
    signing: p256::ecdsa::SigningKey,
    pem_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn key() -> Key {
    let signing = p256::ecdsa::SigningKey::random(&mut rand_core_06::OsRng);
    let dir = tempfile::tempdir().expect("tempdir");
    let pem_file = dir.path().join("cosign.pub");
    std::fs::write(&pem_file, signing.verifying_key().to_public_key_pem(LineEnding::LF).expect("pem")).expect("write key");
    Key { signing, pem_file, _dir: dir }
}

fn sign(k: &Key, payload: &[u8]) -> String {
    let s: p256::ecdsa::Signature = k.signing.sign(payload);
    base64::engine::general_purpose::STANDARD.encode(s.to_der().as_bytes())
}

fn payload(repo: &str, digest: &str) -> Vec<u8> {
    to_bytes(&json!({
        "critical": {"identity": {"docker-reference": format!("127.0.0.1:5000/{repo}")},
                     "image": {"docker-manifest-digest": digest},
                     "type": "cosign container image signature"},
        "optional": null
    }))
}

#[derive(Clone, Copy)]
enum Mode {
    Tag,
    Referrer,
}

/// Pushes a cosign-style signature manifest for `subject`; returns its digest.
fn push_signature(app: &TestApp, repo: &str, subject: &str, payload: &[u8], signature: &str, mode: Mode) -> String {
    push_blob(app, repo, payload);
    let config = b"{}".to_vec();
    push_blob(app, repo, &config);
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
        "layers": [{"mediaType": SIMPLE_SIGNING, "digest": sha256_digest(payload), "size": payload.len(),
                    "annotations": {"dev.cosignproject.cosign/signature": signature}}],
    });
    let body = match mode {
        Mode::Tag => to_bytes(&m),
        Mode::Referrer => {
            let head = app.head(&format!("/v2/{repo}/manifests/{subject}"));
            m["artifactType"] = json!(COSIGN_SIG_TYPE);
            m["subject"] = json!({"mediaType": OCI_MANIFEST, "digest": subject, "size": head.content_length()});
            to_bytes(&m)
        }
    };
    let reference = match mode {
        Mode::Tag => format!("{}.sig", subject.replacen(':', "-", 1)),
        Mode::Referrer => sha256_digest(&body),
    };
    push_manifest(app, repo, &reference, OCI_MANIFEST, &body)
}

fn promote(app: &TestApp, repo: &str, reference: &str, stage: &str) -> Resp {
    app.req(Method::POST, &format!("/api/v1/repositories/{repo}/promotions"))
        .header("Content-Type", "application/json")
        .body(json!({"reference": reference, "stage": stage}).to_string())
        .send()
}

/// Promotes through test and preprod (ungated), then asks for prod.
fn to_prod(app: &TestApp, repo: &str, digest: &str) -> Resp {
    for stage in ["test", "preprod"] {
        let r = promote(app, repo, digest, stage);
        assert!(r.status == 201 || r.status == 200, "{}", r.describe());
    }
    promote(app, repo, digest, "prod")
}

fn failed_gates(r: &Resp) -> Vec<String> {
    r.expect_error(409, &["PROMOTION_DENIED"]);
    r.json()["errors"][0]["detail"]["failed_gates"]
        .as_array()
        .expect("failed_gates")
        .iter()
        .map(|g| g.as_str().unwrap().to_owned())
        .collect()
}

fn gated(k: &Key) -> TestAppBuilder {
    TestApp::builder()
        .env("WHARF_GOVERNANCE__GATES__PROD__REQUIRE_SIGNATURE__KEYS", format!(r#"[{{name="ci", pem_file="{}"}}]"#, k.pem_file.display()))
        .env("WHARF_GOVERNANCE__GATES__PROD__REQUIRE_SIGNATURE__CHECK_REPOSITORY", "true")
}

#[test]
fn only_signed_digests_reach_prod() {
    let (trusted, stranger) = (key(), key());
    let app = gated(&trusted).start();
    let repo = repo("signed");
    let a = push_image(&app, &repo, Some("a"), 1).digest;
    let b = push_image(&app, &repo, Some("b"), 1).digest;

    // No signature at all.
    let gates = failed_gates(&to_prod(&app, &repo, &a));
    assert!(gates[0].starts_with(&format!("require_signature: no signature by a trusted key for {a} (0 examined")), "{gates:?}");

    // Signed, but by a key the stage does not trust.
    let p = payload(&repo, &a);
    push_signature(&app, &repo, &a, &p, &sign(&stranger, &p), Mode::Tag);
    let gates = failed_gates(&promote(&app, &repo, &a, "prod"));
    assert!(gates[0].contains("verifies with no trusted key"), "{gates:?}");

    // A trusted signature of b, copied as a's referrer.
    let pb = payload(&repo, &b);
    push_signature(&app, &repo, &a, &pb, &sign(&trusted, &pb), Mode::Referrer);
    let gates = failed_gates(&promote(&app, &repo, &a, "prod"));
    assert!(gates.contains(&format!("require_signature: signature by key ci is for another digest ({b})")), "{gates:?}");

    // A trusted signature whose payload was altered after signing.
    let mut tampered = payload(&repo, &a);
    let signature = sign(&trusted, &tampered);
    tampered.extend_from_slice(b" ");
    push_signature(&app, &repo, &a, &tampered, &signature, Mode::Referrer);
    let gates = failed_gates(&promote(&app, &repo, &a, "prod"));
    assert!(gates[0].starts_with("require_signature: no signature by a trusted key"), "{gates:?}");

    // A trusted signature for another repository's image of the same digest.
    let elsewhere = payload("other/repo", &a);
    push_signature(&app, &repo, &a, &elsewhere, &sign(&trusted, &elsewhere), Mode::Referrer);
    let gates = failed_gates(&promote(&app, &repo, &a, "prod"));
    assert!(gates.iter().any(|g| g.contains("payload claims repository \"127.0.0.1:5000/other/repo\"")), "{gates:?}");
    assert_eq!(stage_head(&app, &repo, "prod"), None, "nothing reached prod");

    // The right signature, as an OCI 1.1 referrer: promoted, verdict recorded.
    let good = push_signature(&app, &repo, &a, &p, &sign(&trusted, &p), Mode::Referrer);
    let r = promote(&app, &repo, &a, "prod");
    r.expect(201);
    let release = r.json();
    let signer = &release["signature"]["signers"][0];
    assert_eq!(signer["key"], "ci");
    assert_eq!(signer["signature_manifest"], good.as_str());
    assert_eq!(signer["subject"], a.as_str());
    assert!(signer["fingerprint"].as_str().unwrap().starts_with("sha256:"), "{release}");
    assert_eq!(release["signature"]["signed_by_revoked_key"], false);

    // b, signed in the tag convention, becomes current; the history shows both verdicts.
    let pb_sig = push_signature(&app, &repo, &b, &pb, &sign(&trusted, &pb), Mode::Tag);
    to_prod(&app, &repo, &b).expect(201);
    let history = app.get(&format!("/api/v1/repositories/{repo}/stages/prod/releases")).json();
    let releases = history["releases"].as_array().unwrap();
    assert_eq!(releases[0]["signature"]["signers"][0]["signature_manifest"], pb_sig.as_str());
    assert_eq!(releases[1]["signature"]["signers"][0]["signature_manifest"], good.as_str());
    let stages = app.get(&format!("/api/v1/repositories/{repo}/stages")).json();
    assert_eq!(stages["stages"][2]["current"]["signature"]["signers"][0]["key"], "ci");
    assert!(stages["stages"][0]["current"].get("signature").is_none(), "ungated stages carry no verdict: {stages}");

    // The audit rows: refusals name the gate, promotions carry the verdict.
    let audit = app.get(&format!("/api/v1/audit?repository={repo}&n=100")).json();
    let entries = audit["entries"].as_array().unwrap();
    let promoted: Vec<&Value> = entries.iter().filter(|e| e["action"] == "promotion" && e["reference"] == "prod").collect();
    assert_eq!(promoted.len(), 2, "{audit}");
    assert!(promoted.iter().all(|e| e["details"]["signature"]["signers"][0]["key"] == "ci"), "{audit}");
    let denied = entries.iter().filter(|e| e["action"] == "promotion.denied").count();
    assert_eq!(denied, 5, "{audit}");

    // Rollback re-uses a's recorded verdict (no re-verification).
    let r = app.req(Method::POST, &format!("/api/v1/repositories/{repo}/stages/prod/rollback")).send();
    r.expect(201);
    let back = r.json();
    assert_eq!(back["digest"], a.as_str());
    assert_eq!(back["signature"]["reused_from_sequence"], 1);
    assert_eq!(back["signature"]["signers"][0]["signature_manifest"], good.as_str());
    app.get("/api/v1/audit/verify").expect(200);
}

fn stage_head(app: &TestApp, repo: &str, stage: &str) -> Option<String> {
    let r = app.head(&format!("/v2/{repo}/manifests/{stage}"));
    (r.status == 200).then(|| r.must_header("docker-content-digest"))
}

#[test]
fn signatures_of_releases_survive_retention_and_gc() {
    let k = key();
    let app = gated(&k)
        .env("WHARF_RETENTION__POLICIES", r#"[{name="all", repositories="**", keep_last=1, delete_untagged_after="1ms"}]"#)
        .env("WHARF_GC__GRACE", "0s")
        .start();
    let repo = repo("sigkeep");
    let a = push_image(&app, &repo, Some("a"), 1).digest;
    let (pa, pr) = (payload(&repo, &a), payload(&repo, &a));
    let tag_sig = push_signature(&app, &repo, &a, &pa, &sign(&k, &pa), Mode::Tag);
    let ref_sig = push_signature(&app, &repo, &a, &pr, &sign(&k, &pr), Mode::Referrer);
    to_prod(&app, &repo, &a).expect(201);
    // Newer tags push the signature tag out of keep_last=1.
    for t in ["later1", "later2"] {
        push_image(&app, &repo, Some(t), 1);
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    app.post("/api/v1/retention/runs").expect(200);
    app.post("/api/v1/gc/runs").expect(200);
    let sig_tag = format!("{}.sig", a.replacen(':', "-", 1));
    app.get(&format!("/v2/{repo}/manifests/{sig_tag}")).expect(200);
    app.get(&format!("/v2/{repo}/manifests/{tag_sig}")).expect(200);
    app.get(&format!("/v2/{repo}/manifests/{ref_sig}")).expect(200);
    assert_blob(&app, &repo, &sha256_digest(&pa), &pa);
    // prod still serves a.
    let stages = app.get(&format!("/api/v1/repositories/{repo}/stages")).json();
    assert_eq!(stages["stages"][2]["current"]["digest"], a.as_str());
}

#[test]
fn revoked_key_flags_release_without_changing_prod() {
    let k = key();
    let mut app = gated(&k).start();
    let repo = repo("revoked");
    let a = push_image(&app, &repo, Some("a"), 1).digest;
    let p = payload(&repo, &a);
    push_signature(&app, &repo, &a, &p, &sign(&k, &p), Mode::Tag);
    to_prod(&app, &repo, &a).expect(201);
    let next = key();
    let revoked = format!(
        r#"[{{name="ci", pem_file="{}", revoked=true}}, {{name="next", pem_file="{}"}}]"#,
        k.pem_file.display(),
        next.pem_file.display()
    );
    app.set_env("WHARF_GOVERNANCE__GATES__PROD__REQUIRE_SIGNATURE__KEYS", &revoked);
    app.restart();
    assert_eq!(stage_head(&app, &repo, "prod").as_deref(), Some(a.as_str()), "prod still runs a");
    let stages = app.get(&format!("/api/v1/repositories/{repo}/stages")).json();
    let sig = &stages["stages"][2]["current"]["signature"];
    assert_eq!(sig["signed_by_revoked_key"], true, "{stages}");
    assert_eq!(sig["signers"][0]["revoked"], true);
    // The revoked key no longer admits anything new.
    let b = push_image(&app, &repo, Some("b"), 1).digest;
    let pb = payload(&repo, &b);
    push_signature(&app, &repo, &b, &pb, &sign(&k, &pb), Mode::Tag);
    let gates = failed_gates(&to_prod(&app, &repo, &b));
    assert!(gates.iter().any(|g| g.contains("signature by key ci does not count: key ci is revoked")), "{gates:?}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["history", &repo, "--url", &format!("http://127.0.0.1:{}", app.port())])
        .output()
        .expect("wharf history");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("SIGNED BY") && table.contains("ci (REVOKED)"), "{table}");
}

#[test]
fn bad_keys_stop_start_up_and_sbom_gate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.pub");
    std::fs::write(&bad, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").expect("write");
    let (status, log) = TestApp::builder()
        .env("WHARF_GOVERNANCE__GATES__PROD__REQUIRE_SIGNATURE__KEYS", format!(r#"[{{name="broken", pem_file="{}"}}]"#, bad.display()))
        .run_to_exit(std::time::Duration::from_secs(20));
    assert!(!status.success());
    assert!(log.contains("trusted key \"broken\""), "{log}");

    let app = TestApp::builder().env("WHARF_GOVERNANCE__GATES__TEST__REQUIRE_SBOM", "true").start();
    let repo = repo("sbom");
    let img = push_image(&app, &repo, Some("a"), 1);
    let gates = failed_gates(&promote(&app, &repo, &img.digest, "test"));
    assert_eq!(gates, [format!("require_sbom: no SPDX or CycloneDX SBOM is attached to {}", img.digest)]);
    let sbom = to_bytes(&json!({"spdxVersion": "SPDX-2.3", "name": "a"}));
    push_blob(&app, &repo, &sbom);
    let empty = b"{}".to_vec();
    push_blob(&app, &repo, &empty);
    let m = to_bytes(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/spdx+json",
        "config": descriptor("application/vnd.oci.empty.v1+json", &empty),
        "layers": [descriptor("application/spdx+json", &sbom)],
        "subject": img.descriptor(),
    }));
    let sbom_manifest = push_manifest(&app, &repo, &sha256_digest(&m), OCI_MANIFEST, &m);
    let r = promote(&app, &repo, &img.digest, "test");
    r.expect(201);
    assert_eq!(r.json()["signature"]["sboms"][0], sbom_manifest.as_str());
}
