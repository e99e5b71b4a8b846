//! The referrers API (distribution-spec v1.1): `subject` on push,
//! `OCI-Subject`, `GET /v2/<name>/referrers/<digest>` and artifactType filtering.

#[macro_use]
mod common;

use common::*;
use serde_json::{json, Value};

backend_tests!(
    referrers_list_descriptors,
    referrers_filter_by_artifact_type,
    referrers_empty_list,
    referrer_pushed_before_subject,
    referrers_invalid_digest_is_400,
    referrers_are_scoped_to_repository,
    deleted_referrer_disappears,
);

const SBOM: &str = "application/vnd.example.sbom.v1";
const SIG_CONFIG: &str = "application/vnd.example.signature.config.v1+json";
const BUNDLE: &str = "application/vnd.example.bundle.v1";

/// An artifact manifest: empty config (or `config` when given), one layer, a subject.
fn artifact(
    app: &TestApp,
    repo: &str,
    subject: &Value,
    artifact_type: Option<&str>,
    config: Option<(&str, Vec<u8>)>,
    annotations: Value,
) -> Vec<u8> {
    let layer = unique_bytes(300);
    push_blob(app, repo, &layer);
    let config = match config {
        Some((mt, data)) => {
            push_blob(app, repo, &data);
            descriptor(mt, &data)
        }
        None => {
            push_blob(app, repo, b"{}");
            descriptor(OCI_EMPTY, b"{}")
        }
    };
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": [descriptor("application/octet-stream", &layer)],
        "subject": subject,
        "annotations": annotations,
    });
    if let Some(t) = artifact_type {
        m["artifactType"] = json!(t);
    }
    to_bytes(&m)
}

/// Pushes a manifest with a subject and checks 201 and `OCI-Subject`.
fn push_referrer(app: &TestApp, repo: &str, reference: Option<&str>, media_type: &str, body: &[u8], subject: &str) -> String {
    let digest = sha256_digest(body);
    let r = put_manifest(app, repo, reference.unwrap_or(&digest), media_type, body);
    r.expect(201).expect_header("docker-content-digest", &digest).expect_header("oci-subject", subject);
    digest
}

fn referrers(app: &TestApp, repo: &str, subject: &str, query: &str) -> (Resp, Vec<Value>) {
    let r = app.get(&format!("/v2/{repo}/referrers/{subject}{query}"));
    r.expect(200);
    assert_eq!(r.header("content-type").as_deref(), Some(OCI_INDEX), "{}", r.describe());
    let v = r.json();
    assert_eq!(v["schemaVersion"], json!(2), "{}", r.describe());
    assert_eq!(v["mediaType"], json!(OCI_INDEX), "{}", r.describe());
    let list = v["manifests"].as_array().unwrap_or_else(|| panic!("manifests must be an array:\n{}", r.describe())).clone();
    (r, list)
}

fn find<'a>(list: &'a [Value], digest: &str) -> &'a Value {
    list.iter().find(|d| d["digest"] == json!(digest)).unwrap_or_else(|| panic!("{digest} not in referrers {list:?}"))
}

fn referrers_list_descriptors(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("referrers/list");
    let subject = push_image(&app, &repo, Some("v1"), 1);
    let sdesc = subject.descriptor();

    // A manifest with an explicit artifactType, pushed by digest.
    let sbom_ann = json!({"org.opencontainers.image.created": "2024-01-01T00:00:00Z", "org.example.sbom.format": "json"});
    let sbom = artifact(&app, &repo, &sdesc, Some(SBOM), None, sbom_ann.clone());
    let sbom_d = push_referrer(&app, &repo, None, OCI_MANIFEST, &sbom, &subject.digest);

    // No artifactType: the config mediaType stands in. Pushed by tag.
    let sig_ann = json!({"org.example.signature.fingerprint": "abcd"});
    let sig = artifact(&app, &repo, &sdesc, None, Some((SIG_CONFIG, to_bytes(&json!({"k": unique_token()})))), sig_ann.clone());
    let sig_d = push_referrer(&app, &repo, Some("sig"), OCI_MANIFEST, &sig, &subject.digest);

    // An index referrer with an artifactType.
    let child = push_image(&app, &repo, None, 1);
    let bundle = to_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "artifactType": BUNDLE,
        "manifests": [child.descriptor()],
        "subject": sdesc,
        "annotations": {"org.example.bundle": "yes"},
    }));
    let bundle_d = push_referrer(&app, &repo, None, OCI_INDEX, &bundle, &subject.digest);

    // A plain manifest has no subject and gets no OCI-Subject header.
    let plain = push_image(&app, &repo, None, 1);
    let r = put_manifest(&app, &repo, "plain", OCI_MANIFEST, &plain.manifest);
    r.expect(201);
    assert!(r.header("oci-subject").is_none(), "OCI-Subject on a manifest without subject:\n{}", r.describe());

    let (r, list) = referrers(&app, &repo, &subject.digest, "");
    assert_eq!(list.len(), 3, "exactly three referrers expected:\n{}", r.describe());
    assert!(r.header("oci-filters-applied").is_none(), "no filter was asked for:\n{}", r.describe());

    let d = find(&list, &sbom_d);
    assert_eq!(d["mediaType"], json!(OCI_MANIFEST));
    assert_eq!(d["size"], json!(sbom.len()));
    assert_eq!(d["artifactType"], json!(SBOM));
    assert_eq!(d["annotations"], sbom_ann);

    let d = find(&list, &sig_d);
    assert_eq!(d["mediaType"], json!(OCI_MANIFEST));
    assert_eq!(d["size"], json!(sig.len()));
    assert_eq!(d["artifactType"], json!(SIG_CONFIG), "artifactType falls back to config.mediaType");
    assert_eq!(d["annotations"], sig_ann);

    let d = find(&list, &bundle_d);
    assert_eq!(d["mediaType"], json!(OCI_INDEX));
    assert_eq!(d["size"], json!(bundle.len()));
    assert_eq!(d["artifactType"], json!(BUNDLE));
    assert_eq!(d["annotations"], json!({"org.example.bundle": "yes"}));

    // The referrers themselves are ordinary manifests.
    assert_manifest(&app, &repo, &sbom_d, OCI_MANIFEST, &sbom);
    assert_manifest(&app, &repo, "sig", OCI_MANIFEST, &sig);
    assert_manifest(&app, &repo, &bundle_d, OCI_INDEX, &bundle);
    // Referrers of a referrer: none.
    let (_, list) = referrers(&app, &repo, &sbom_d, "");
    assert!(list.is_empty());
}

fn referrers_filter_by_artifact_type(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("referrers/filter");
    let subject = push_image(&app, &repo, Some("v1"), 1);
    let sdesc = subject.descriptor();
    let s1 = artifact(&app, &repo, &sdesc, Some(SBOM), None, json!({"n": "1"}));
    let s1d = push_referrer(&app, &repo, None, OCI_MANIFEST, &s1, &subject.digest);
    let s2 = artifact(&app, &repo, &sdesc, Some(SBOM), None, json!({"n": "2"}));
    let s2d = push_referrer(&app, &repo, None, OCI_MANIFEST, &s2, &subject.digest);
    let sig = artifact(&app, &repo, &sdesc, None, Some((SIG_CONFIG, to_bytes(&json!({"k": unique_token()})))), json!({}));
    let sigd = push_referrer(&app, &repo, None, OCI_MANIFEST, &sig, &subject.digest);

    let (r, list) = referrers(&app, &repo, &subject.digest, &format!("?artifactType={}", qenc(SBOM)));
    r.expect_header("oci-filters-applied", "artifactType");
    let mut got: Vec<String> = list.iter().map(|d| d["digest"].as_str().unwrap().to_string()).collect();
    got.sort();
    let mut want = vec![s1d.clone(), s2d.clone()];
    want.sort();
    assert_eq!(got, want, "{}", r.describe());
    for d in &list {
        assert_eq!(d["artifactType"], json!(SBOM));
    }

    // Filtering on the config-derived type finds the signature.
    let (r, list) = referrers(&app, &repo, &subject.digest, &format!("?artifactType={}", qenc(SIG_CONFIG)));
    r.expect_header("oci-filters-applied", "artifactType");
    assert_eq!(list.len(), 1, "{}", r.describe());
    assert_eq!(list[0]["digest"], json!(sigd));

    // A filter matching nothing gives an empty list, still marked as filtered.
    let (r, list) = referrers(&app, &repo, &subject.digest, "?artifactType=application%2Fvnd.example.none");
    r.expect_header("oci-filters-applied", "artifactType");
    assert!(list.is_empty(), "{}", r.describe());

    // Unfiltered still has all three.
    let (_, list) = referrers(&app, &repo, &subject.digest, "");
    assert_eq!(list.len(), 3);
}

fn referrers_empty_list(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("referrers/empty");
    let subject = push_image(&app, &repo, Some("v1"), 1);
    let (r, list) = referrers(&app, &repo, &subject.digest, "");
    assert!(list.is_empty(), "{}", r.describe());
    // A digest nothing in the repository has: still 200 and empty, never 404.
    let (r, list) = referrers(&app, &repo, &sha256_digest(b"nothing here"), "");
    assert!(list.is_empty(), "{}", r.describe());
    // sha512 subject digest.
    let (r, list) = referrers(&app, &repo, &sha512_digest(b"nothing here"), "");
    assert!(list.is_empty(), "{}", r.describe());
}

fn referrer_pushed_before_subject(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("referrers/early");
    // Build the subject but do not push its manifest yet.
    let config = to_bytes(&json!({"t": unique_token()}));
    let layer = unique_bytes(900);
    push_blob(&app, &repo, &config);
    push_blob(&app, &repo, &layer);
    let subject = image_manifest(&config, &[layer], json!({}));
    let subject_d = sha256_digest(&subject);
    let sdesc = descriptor(OCI_MANIFEST, &subject);

    let art = artifact(&app, &repo, &sdesc, Some(SBOM), None, json!({"early": "true"}));
    let art_d = push_referrer(&app, &repo, None, OCI_MANIFEST, &art, &subject_d);
    app.get(&format!("/v2/{repo}/manifests/{subject_d}")).expect_error(404, &["MANIFEST_UNKNOWN"]);
    let (r, list) = referrers(&app, &repo, &subject_d, "");
    assert_eq!(list.len(), 1, "{}", r.describe());
    assert_eq!(list[0]["digest"], json!(art_d));

    // Now the subject arrives; the referrer is still listed.
    push_manifest(&app, &repo, "late", OCI_MANIFEST, &subject);
    let (r, list) = referrers(&app, &repo, &subject_d, "");
    assert_eq!(list.len(), 1, "{}", r.describe());
    assert_eq!(list[0]["digest"], json!(art_d));
}

fn referrers_invalid_digest_is_400(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("referrers/bad");
    push_image(&app, &repo, Some("v1"), 1);
    for bad in ["sha256:xyz", "latest", "md5:d41d8cd98f00b204e9800998ecf8427e", "sha256:abc"] {
        let r = app.get(&format!("/v2/{repo}/referrers/{bad}"));
        r.expect_error(400, &["DIGEST_INVALID"]);
    }
}

fn referrers_are_scoped_to_repository(b: Backend) {
    let app = TestApp::start_backend(b);
    let a = repo("referrers/scope-a");
    let other = repo("referrers/scope-b");
    let subject = push_image(&app, &a, Some("v1"), 1);
    // The same subject manifest also lives in `other`.
    push_blob(&app, &other, &subject.config);
    for l in &subject.layers {
        push_blob(&app, &other, l);
    }
    push_manifest(&app, &other, "v1", OCI_MANIFEST, &subject.manifest);
    let art = artifact(&app, &a, &subject.descriptor(), Some(SBOM), None, json!({}));
    push_referrer(&app, &a, None, OCI_MANIFEST, &art, &subject.digest);
    let (_, list) = referrers(&app, &a, &subject.digest, "");
    assert_eq!(list.len(), 1);
    let (r, list) = referrers(&app, &other, &subject.digest, "");
    assert!(list.is_empty(), "a referrer in {a} leaked into {other}:\n{}", r.describe());
}

fn deleted_referrer_disappears(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("referrers/deleted");
    let subject = push_image(&app, &repo, Some("v1"), 1);
    let sdesc = subject.descriptor();
    let keep = artifact(&app, &repo, &sdesc, Some(SBOM), None, json!({"keep": "1"}));
    let keep_d = push_referrer(&app, &repo, None, OCI_MANIFEST, &keep, &subject.digest);
    let drop = artifact(&app, &repo, &sdesc, Some(SBOM), None, json!({"keep": "0"}));
    let drop_d = push_referrer(&app, &repo, None, OCI_MANIFEST, &drop, &subject.digest);
    app.delete(&format!("/v2/{repo}/manifests/{drop_d}")).expect(202);
    let (r, list) = referrers(&app, &repo, &subject.digest, "");
    assert_eq!(list.len(), 1, "{}", r.describe());
    assert_eq!(list[0]["digest"], json!(keep_d));
}
