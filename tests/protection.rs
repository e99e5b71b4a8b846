//! The one protection rule, over HTTP: no client DELETE (blob, manifest by
//! digest, tag, index child, nested index child, the index itself) strands
//! a release inside its stage's rollback window; a refusal is 403 DENIED,
//! names the release, changes nothing and is audited; afterwards the
//! release still pulls completely and rolling back to it works, also after
//! a GC run with no grace period. The same deletes outside every window
//! succeed.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

/// A multi-arch release: index → (image A, nested index → image B).
struct Release {
    index: Vec<u8>,
    index_digest: String,
    nested: Vec<u8>,
    nested_digest: String,
    a: Image,
    b: Image,
}

impl Release {
    /// Every manifest of the release with its media type, and every blob.
    fn manifests(&self) -> Vec<(&str, &[u8])> {
        vec![
            (OCI_INDEX, &self.index[..]),
            (OCI_INDEX, &self.nested[..]),
            (OCI_MANIFEST, &self.a.manifest[..]),
            (OCI_MANIFEST, &self.b.manifest[..]),
        ]
    }

    fn blobs(&self) -> Vec<(&str, &[u8])> {
        let mut out = Vec::new();
        for image in [&self.a, &self.b] {
            out.push((image.config_digest.as_str(), &image.config[..]));
            for (d, l) in image.layer_digests.iter().zip(&image.layers) {
                out.push((d.as_str(), &l[..]));
            }
        }
        out
    }
}

fn index_of(children: &[Value]) -> Vec<u8> {
    to_bytes(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}))
}

fn platform(descriptor: Value, arch: &str) -> Value {
    let mut d = descriptor;
    d["platform"] = json!({"os": "linux", "architecture": arch});
    d
}

fn push_release(app: &TestApp, repo: &str, tag: &str) -> Release {
    let a = push_image(app, repo, None, 2);
    let b = push_image(app, repo, None, 1);
    let nested = index_of(&[platform(b.descriptor(), "arm64")]);
    let nested_digest = push_manifest(app, repo, &sha256_digest(&nested), OCI_INDEX, &nested);
    let index = index_of(&[platform(a.descriptor(), "amd64"), descriptor(OCI_INDEX, &nested)]);
    let index_digest = push_manifest(app, repo, tag, OCI_INDEX, &index);
    Release { index, index_digest, nested, nested_digest, a, b }
}

fn promote(app: &TestApp, repo: &str, reference: &str, stage: &str) -> Value {
    let r = app
        .req(Method::POST, &format!("/api/v1/repositories/{repo}/promotions"))
        .header("Content-Type", "application/json")
        .body(json!({"reference": reference, "stage": stage}).to_string())
        .send();
    r.expect(201);
    r.json()
}

fn rollback(app: &TestApp, repo: &str, stage: &str, to: i64) -> Resp {
    app.req(Method::POST, &format!("/api/v1/repositories/{repo}/stages/{stage}/rollback"))
        .header("Content-Type", "application/json")
        .body(json!({"to_sequence": to}).to_string())
        .send()
}

fn audit(app: &TestApp, repo: &str, action: &str) -> Vec<Value> {
    let r = app.get(&format!("/api/v1/audit?repository={repo}&action={action}&n=1000"));
    r.expect(200);
    r.json()["entries"].as_array().cloned().unwrap_or_default()
}

/// Every manifest and blob of the release comes back byte for byte.
#[track_caller]
fn assert_pulls(app: &TestApp, repo: &str, release: &Release) {
    for (media_type, body) in release.manifests() {
        assert_manifest(app, repo, &sha256_digest(body), media_type, body);
    }
    for (digest, data) in release.blobs() {
        assert_blob(app, repo, digest, data);
    }
}

/// Each way a client could strand the release, by path.
fn delete_paths(release: &Release, tag: &str) -> Vec<(&'static str, String)> {
    vec![
        ("layer blob", format!("blobs/{}", release.a.layer_digests[1])),
        ("config blob", format!("blobs/{}", release.a.config_digest)),
        ("nested child's layer", format!("blobs/{}", release.b.layer_digests[0])),
        ("index child", format!("manifests/{}", release.a.digest)),
        ("nested index child", format!("manifests/{}", release.b.digest)),
        ("nested index", format!("manifests/{}", release.nested_digest)),
        ("the index by digest", format!("manifests/{}", release.index_digest)),
        ("a tag on the release", format!("manifests/{tag}")),
    ]
}

fn start() -> TestApp {
    TestApp::builder()
        .env("WHARF_GOVERNANCE__ROLLBACK_DEPTH", "1")
        .env("WHARF_GOVERNANCE__IMMUTABLE_TAGS", r#"["^v[0-9]+\\.[0-9]+\\.[0-9]+$"]"#)
        .env("WHARF_GC__GRACE", "0s")
        .start()
}

#[test]
fn deletes_inside_the_rollback_window_are_refused_and_the_release_survives() {
    let app = start();
    let repo = repo("protect/window");
    let old = push_release(&app, &repo, "build-1");
    promote(&app, &repo, "build-1", "test"); // test #1: the rollback target
    let current = push_image(&app, &repo, Some("build-2"), 1);
    promote(&app, &repo, "build-2", "test"); // test #2: current

    let denied_before = audit(&app, &repo, "access.denied").len();
    let paths = delete_paths(&old, "build-1");
    for (what, path) in &paths {
        let r = app.delete(&format!("/v2/{repo}/{path}"));
        r.expect_error(403, &["DENIED"]);
        let message = r.json()["errors"][0]["message"].as_str().unwrap_or_default().to_owned();
        assert!(
            message.contains("needed by test release #1 (inside the rollback window of 1)"),
            "{what}: the refusal must name the release it protects: {message:?}"
        );
    }
    // The current release is protected the same way.
    let r = app.delete(&format!("/v2/{repo}/blobs/{}", current.layer_digests[0]));
    r.expect_error(403, &["DENIED"]);
    assert!(r.text().contains("test release #2 (current)"), "{}", r.describe());

    // Every refusal is in the audit log with its reason.
    let denied = audit(&app, &repo, "access.denied");
    assert_eq!(denied.len() - denied_before, paths.len() + 1, "{denied:#?}");
    assert!(denied.iter().all(|e| e["details"]["reason"].as_str().is_some_and(|r| r.contains("needed by test release #"))));
    assert!(audit(&app, &repo, "blob.delete").is_empty() && audit(&app, &repo, "manifest.delete").is_empty());

    // Nothing changed: GC with no grace frees none of it, the release pulls
    // completely, and rolling back to it works.
    app.post("/api/v1/gc/runs").expect(200);
    assert_pulls(&app, &repo, &old);
    assert_eq!(app.head(&format!("/v2/{repo}/manifests/build-1")).must_header("docker-content-digest"), old.index_digest);
    rollback(&app, &repo, "test", 1).expect(201);
    assert_eq!(app.head(&format!("/v2/{repo}/manifests/test")).must_header("docker-content-digest"), old.index_digest);
    assert_pulls(&app, &repo, &old);
}

#[test]
fn the_same_deletes_outside_every_window_succeed() {
    let app = start();
    let repo = repo("protect/outside");
    let old = push_release(&app, &repo, "build-1");
    promote(&app, &repo, "build-1", "test"); // test #1, soon outside the window of 1
    for tag in ["build-2", "build-3"] {
        push_image(&app, &repo, Some(tag), 1);
        promote(&app, &repo, tag, "test");
    }
    // The tag first (deleting the index by digest takes its tags along).
    let mut paths = delete_paths(&old, "build-1");
    paths.rotate_right(1);
    for (what, path) in paths {
        let r = app.delete(&format!("/v2/{repo}/{path}"));
        assert_eq!(r.status, 202, "{what} outside the window must be deletable:\n{}", r.describe());
    }
    app.get(&format!("/v2/{repo}/manifests/{}", old.index_digest)).expect_error(404, &["MANIFEST_UNKNOWN"]);
    app.get(&format!("/v2/{repo}/blobs/{}", old.a.config_digest)).expect_error(404, &["BLOB_UNKNOWN"]);
    // A rollback to a release whose manifest is gone is refused, and audited.
    let r = rollback(&app, &repo, "test", 1);
    r.expect_error(409, &[]);
    assert!(r.text().contains("release #1 is gone"), "{}", r.describe());
    let refused = audit(&app, &repo, "rollback.denied");
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert_eq!(refused[0]["reference"], "test");
    assert!(refused[0]["details"]["reason"].as_str().is_some_and(|r| r.contains("is gone")));
}

#[test]
fn immutable_targets_and_referrers() {
    let app = start();
    let repo = repo("protect/immutable");
    let image = push_image(&app, &repo, Some("v1.0.0"), 1);
    // An immutable tag's target is protected like a release.
    let r = app.delete(&format!("/v2/{repo}/blobs/{}", image.layer_digests[0]));
    r.expect_error(403, &["DENIED"]);
    assert!(r.text().contains("target of immutable tag v1.0.0"), "{}", r.describe());
    app.delete(&format!("/v2/{repo}/manifests/{}", image.digest)).expect_error(403, &["DENIED"]);

    // A signature of a protected image may still be revoked by a client
    // (retention and GC keep it; a client with delete rights decides).
    let payload = unique_bytes(64);
    push_blob(&app, &repo, b"{}");
    push_blob(&app, &repo, &payload);
    let signature = to_bytes(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.dev.cosign.simplesigning.v1+json",
        "config": {"mediaType": OCI_EMPTY, "digest": sha256_digest(b"{}"), "size": 2},
        "layers": [descriptor("application/vnd.dev.cosign.simplesigning.v1+json", &payload)],
        "subject": image.descriptor(),
    }));
    let sig = push_manifest(&app, &repo, &sha256_digest(&signature), OCI_MANIFEST, &signature);
    app.delete(&format!("/v2/{repo}/manifests/{sig}")).expect(202);
    assert_blob(&app, &repo, &image.layer_digests[0], &image.layers[0]);
}

/// Repeated refusals do not grow anything but the audit log, and a refusal
/// by tag names the tag and the digest.
#[test]
fn tag_refusal_names_tag_and_digest() {
    let app = start();
    let repo = repo("protect/tag");
    let image = push_image(&app, &repo, Some("release-candidate"), 1);
    promote(&app, &repo, "release-candidate", "test");
    let r = app.delete(&format!("/v2/{repo}/manifests/release-candidate"));
    r.expect_error(403, &["DENIED"]);
    let text = r.text();
    assert!(text.contains("release-candidate") && text.contains(&image.digest) && text.contains("test release #1 (current)"), "{text}");
    // The stage tag itself is refused with its own reason.
    let r = app.delete(&format!("/v2/{repo}/manifests/test"));
    r.expect_error(403, &["DENIED"]);
    assert!(r.text().contains("stage tag"), "{}", r.describe());
    let tags = app.get(&format!("/v2/{repo}/tags/list"));
    assert_eq!(tags.json()["tags"], json!(["release-candidate", "test"]));
}
