//! Manifest push and pull: OCI manifests and indexes, Docker schema 2
//! manifests and manifest lists, and the ways a push is refused.

#[macro_use]
mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

backend_tests!(
    oci_manifest_by_tag_and_digest,
    push_by_digest,
    retag_and_repush,
    manifest_without_media_type_field,
    oci_index,
    docker_schema2_and_manifest_list,
    missing_blob_is_manifest_blob_unknown,
    blob_from_other_repo_is_manifest_blob_unknown,
    index_with_missing_child_is_manifest_blob_unknown,
    index_child_that_is_only_a_blob_is_refused,
    manifest_by_sha512_digest,
    malformed_manifest_is_manifest_invalid,
    content_type_mismatch_is_manifest_invalid,
    manifest_size_limit,
    digest_mismatch_on_put_by_digest,
    unknown_manifest_is_404,
);

fn oci_manifest_by_tag_and_digest(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("manifests/basic");
    let config = to_bytes(&json!({"architecture": "arm64", "os": "linux", "t": unique_token()}));
    let layer = unique_bytes(3000);
    push_blob(&app, &repo, &config);
    push_blob(&app, &repo, &layer);
    let body = image_manifest(&config, &[layer], json!({"annotations": {"org.example.k": "v"}}));
    let digest = sha256_digest(&body);
    let r = put_manifest(&app, &repo, "v1.0", OCI_MANIFEST, &body);
    r.expect(201).expect_header("docker-content-digest", &digest);
    let loc = r.must_header("location");
    // The Location is a pullable manifest URL.
    let g = app.req(Method::GET, &loc).header("Accept", OCI_MANIFEST).send();
    g.expect(200);
    assert!(g.body == body, "manifest at Location {loc} differs");
    assert_manifest(&app, &repo, "v1.0", OCI_MANIFEST, &body);
    assert_manifest(&app, &repo, &digest, OCI_MANIFEST, &body);
}

fn push_by_digest(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("manifests/bydigest");
    let img = push_image(&app, &repo, None, 2);
    assert_manifest(&app, &repo, &img.digest, OCI_MANIFEST, &img.manifest);
    // No tag was created.
    let t = app.get(&format!("/v2/{repo}/tags/list"));
    t.expect(200);
    let tags = t.json()["tags"].clone();
    assert!(tags.is_null() || tags == json!([]), "pushing by digest created tags: {tags}");
    // Pushing the very same bytes again is idempotent.
    push_manifest(&app, &repo, &img.digest, OCI_MANIFEST, &img.manifest);
    assert_manifest(&app, &repo, &img.digest, OCI_MANIFEST, &img.manifest);
}

fn retag_and_repush(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("manifests/retag");
    let one = push_image(&app, &repo, Some("latest"), 1);
    let two = push_image(&app, &repo, Some("two"), 1);
    // Move `latest` to the second image.
    push_manifest(&app, &repo, "latest", OCI_MANIFEST, &two.manifest);
    assert_manifest(&app, &repo, "latest", OCI_MANIFEST, &two.manifest);
    assert_manifest(&app, &repo, "two", OCI_MANIFEST, &two.manifest);
    // The first image stays reachable by digest.
    assert_manifest(&app, &repo, &one.digest, OCI_MANIFEST, &one.manifest);
    // Tag the first image a second time under another name.
    push_manifest(&app, &repo, "old", OCI_MANIFEST, &one.manifest);
    assert_manifest(&app, &repo, "old", OCI_MANIFEST, &one.manifest);
}

fn manifest_without_media_type_field(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("manifests/nomediatype");
    let config = to_bytes(&json!({"t": unique_token()}));
    push_blob(&app, &repo, &config);
    let body = to_bytes(&json!({
        "schemaVersion": 2,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": [],
    }));
    push_manifest(&app, &repo, "t", OCI_MANIFEST, &body);
    assert_manifest(&app, &repo, "t", OCI_MANIFEST, &body);
}

fn oci_index(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("manifests/index");
    let amd = push_image(&app, &repo, None, 1);
    let arm = push_image(&app, &repo, None, 2);
    let mut d1 = amd.descriptor();
    d1["platform"] = json!({"architecture": "amd64", "os": "linux"});
    let mut d2 = arm.descriptor();
    d2["platform"] = json!({"architecture": "arm64", "os": "linux", "variant": "v8"});
    let index = to_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [d1, d2],
        "annotations": {"org.opencontainers.image.ref.name": "multi"},
    }));
    let digest = push_manifest(&app, &repo, "multi", OCI_INDEX, &index);
    assert_manifest(&app, &repo, "multi", OCI_INDEX, &index);
    assert_manifest(&app, &repo, &digest, OCI_INDEX, &index);
    // An index of an index.
    let outer = to_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [descriptor(OCI_INDEX, &index)],
    }));
    push_manifest(&app, &repo, "outer", OCI_INDEX, &outer);
    assert_manifest(&app, &repo, "outer", OCI_INDEX, &outer);
}

fn docker_schema2_and_manifest_list(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("manifests/docker");
    let config = to_bytes(&json!({"architecture": "amd64", "os": "linux", "t": unique_token()}));
    let layer = unique_bytes(2500);
    push_blob(&app, &repo, &config);
    push_blob(&app, &repo, &layer);
    let manifest = to_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": descriptor(DOCKER_CONFIG, &config),
        "layers": [descriptor(DOCKER_LAYER, &layer)],
    }));
    let md = push_manifest(&app, &repo, "d2", DOCKER_MANIFEST, &manifest);
    assert_manifest(&app, &repo, "d2", DOCKER_MANIFEST, &manifest);
    assert_manifest(&app, &repo, &md, DOCKER_MANIFEST, &manifest);

    let mut child = descriptor(DOCKER_MANIFEST, &manifest);
    child["platform"] = json!({"architecture": "amd64", "os": "linux"});
    let list = to_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [child],
    }));
    let ld = push_manifest(&app, &repo, "list", DOCKER_LIST, &list);
    assert_manifest(&app, &repo, "list", DOCKER_LIST, &list);
    assert_manifest(&app, &repo, &ld, DOCKER_LIST, &list);
}

fn missing_blob_is_manifest_blob_unknown(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("manifests/missingblob");
    let config = to_bytes(&json!({"t": unique_token()}));
    let layer = unique_bytes(1000);
    let absent = unique_bytes(1000);
    push_blob(&app, &repo, &config);
    push_blob(&app, &repo, &layer);

    // Missing layer.
    let body = image_manifest(&config, &[layer.clone(), absent.clone()], json!({}));
    put_manifest(&app, &repo, "broken", OCI_MANIFEST, &body).expect_error(400, &["MANIFEST_BLOB_UNKNOWN"]);
    // Missing config.
    let body2 = image_manifest(&absent, std::slice::from_ref(&layer), json!({}));
    put_manifest(&app, &repo, "broken", OCI_MANIFEST, &body2).expect_error(400, &["MANIFEST_BLOB_UNKNOWN"]);
    // Also when pushed by digest.
    let d = sha256_digest(&body);
    put_manifest(&app, &repo, &d, OCI_MANIFEST, &body).expect_error(400, &["MANIFEST_BLOB_UNKNOWN"]);
    // Nothing was stored.
    app.get(&format!("/v2/{repo}/manifests/broken")).expect_error(404, &["MANIFEST_UNKNOWN"]);
    app.get(&format!("/v2/{repo}/manifests/{d}")).expect_error(404, &["MANIFEST_UNKNOWN"]);
}

fn blob_from_other_repo_is_manifest_blob_unknown(b: Backend) {
    let app = TestApp::start_backend(b);
    let a = repo("manifests/owner");
    let other = repo("manifests/thief");
    let config = to_bytes(&json!({"t": unique_token()}));
    let layer = unique_bytes(1000);
    push_blob(&app, &a, &config);
    push_blob(&app, &a, &layer);
    push_blob(&app, &other, &config); // `other` has the config but not the layer
    let body = image_manifest(&config, &[layer], json!({}));
    put_manifest(&app, &other, "x", OCI_MANIFEST, &body).expect_error(400, &["MANIFEST_BLOB_UNKNOWN"]);
    // In the owning repository the same manifest is fine.
    push_manifest(&app, &a, "x", OCI_MANIFEST, &body);
}

fn index_with_missing_child_is_manifest_blob_unknown(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("manifests/indexmissing");
    let present = push_image(&app, &repo, None, 1);
    let absent = to_bytes(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "never": unique_token()}));
    let index = to_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [present.descriptor(), descriptor(OCI_MANIFEST, &absent)],
    }));
    put_manifest(&app, &repo, "idx", OCI_INDEX, &index).expect_error(400, &["MANIFEST_BLOB_UNKNOWN"]);
    app.get(&format!("/v2/{repo}/manifests/idx")).expect_error(404, &["MANIFEST_UNKNOWN"]);
    let list = to_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [descriptor(DOCKER_MANIFEST, &absent)],
    }));
    put_manifest(&app, &repo, "list", DOCKER_LIST, &list).expect_error(400, &["MANIFEST_BLOB_UNKNOWN"]);
}

/// An index child must be a manifest: a layer blob with that digest is not one.
fn index_child_that_is_only_a_blob_is_refused(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("manifests/indexblob");
    let img = push_image(&app, &repo, None, 1);
    let index = to_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [img.descriptor(), descriptor(OCI_MANIFEST, &img.layers[0])],
    }));
    put_manifest(&app, &repo, "idx", OCI_INDEX, &index).expect_error(400, &["MANIFEST_BLOB_UNKNOWN"]);
}

/// A manifest pushed under its sha512 digest is verified with sha512 and
/// answers with that digest.
fn manifest_by_sha512_digest(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("manifests/sha512");
    let img = push_image(&app, &repo, Some("v1"), 1);
    let config = to_bytes(&json!({"t": unique_token()}));
    push_blob(&app, &repo, &config);
    let body = image_manifest(&config, &img.layers, json!({}));
    let d512 = sha512_digest(&body);
    let r = put_manifest(&app, &repo, &d512, OCI_MANIFEST, &body);
    r.expect(201).expect_header("docker-content-digest", &d512);
    let g = app.get(&format!("/v2/{repo}/manifests/{d512}"));
    g.expect(200).expect_header("docker-content-digest", &d512);
    assert!(g.body == body, "manifest bytes differ:\n{}", g.describe());
    assert_eq!(g.header("content-type").as_deref(), Some(OCI_MANIFEST));
    app.head(&format!("/v2/{repo}/manifests/{d512}")).expect(200);
    // A wrong sha512 is refused.
    let wrong = sha512_digest(b"other");
    put_manifest(&app, &repo, &wrong, OCI_MANIFEST, &body).expect_error(400, &["DIGEST_INVALID"]);
}

fn malformed_manifest_is_manifest_invalid(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("manifests/malformed");
    push_blob(&app, &repo, b"{}");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not json", b"this is not json".to_vec()),
        ("truncated json", br#"{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {"#.to_vec()),
        ("json array", b"[1,2,3]".to_vec()),
        ("empty body", Vec::new()),
        ("no config", to_bytes(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}))),
        (
            "config digest not a digest",
            to_bytes(&json!({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_EMPTY, "digest": "nope", "size": 2},
                "layers": [],
            })),
        ),
        (
            "schemaVersion 3",
            to_bytes(&json!({
                "schemaVersion": 3, "mediaType": OCI_MANIFEST,
                "config": descriptor(OCI_EMPTY, b"{}"), "layers": [],
            })),
        ),
        ("index without manifests array", to_bytes(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": "x"}))),
    ];
    for (what, body) in cases {
        let ct = if what.starts_with("index") { OCI_INDEX } else { OCI_MANIFEST };
        let r = put_manifest(&app, &repo, "bad", ct, &body);
        assert_eq!(r.status, 400, "{what}:\n{}", r.describe());
        // A descriptor whose digest is malformed may fairly be called DIGEST_INVALID.
        let codes: &[&str] = if what.contains("digest") { &["MANIFEST_INVALID", "DIGEST_INVALID"] } else { &["MANIFEST_INVALID"] };
        check_envelope(&r.body, codes, &format!("{what}:\n{}", r.describe()));
    }
    app.get(&format!("/v2/{repo}/manifests/bad")).expect_error(404, &["MANIFEST_UNKNOWN"]);
}

fn content_type_mismatch_is_manifest_invalid(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("manifests/ctmismatch");
    let img = push_image(&app, &repo, None, 1);
    // An OCI image manifest sent as an index, and as a Docker manifest.
    for ct in [OCI_INDEX, DOCKER_MANIFEST] {
        put_manifest(&app, &repo, "mismatch", ct, &img.manifest).expect_error(400, &["MANIFEST_INVALID"]);
    }
    // An index sent as an image manifest.
    let index = to_bytes(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [img.descriptor()]}));
    put_manifest(&app, &repo, "mismatch", OCI_MANIFEST, &index).expect_error(400, &["MANIFEST_INVALID"]);
    app.get(&format!("/v2/{repo}/manifests/mismatch")).expect_error(404, &["MANIFEST_UNKNOWN"]);
}

/// Builds an image manifest of exactly `size` bytes by padding an annotation.
fn manifest_of_size(config: &[u8], size: usize) -> Vec<u8> {
    let make = |pad: usize| image_manifest(config, &[], json!({"annotations": {"pad": "x".repeat(pad)}}));
    let base = make(0).len();
    assert!(size >= base);
    let body = make(size - base);
    assert_eq!(body.len(), size);
    body
}

fn manifest_size_limit(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("manifests/size");
    let config = to_bytes(&json!({"t": unique_token()}));
    push_blob(&app, &repo, &config);
    // Just under 4 MiB is accepted (the spec asks registries to take at least 4 MB).
    let ok = manifest_of_size(&config, 4 * MIB - 1024);
    let d = push_manifest(&app, &repo, "big", OCI_MANIFEST, &ok);
    let g = app.get(&format!("/v2/{repo}/manifests/{d}"));
    g.expect(200);
    assert!(g.body == ok);
    // One byte over 4 MiB is refused with 413 and SIZE_INVALID.
    let too_big = manifest_of_size(&config, 4 * MIB + 1);
    put_manifest(&app, &repo, "toobig", OCI_MANIFEST, &too_big).expect_error(413, &["SIZE_INVALID"]);
    // Far over as well.
    let huge = manifest_of_size(&config, 9 * MIB);
    put_manifest(&app, &repo, "toobig", OCI_MANIFEST, &huge).expect_error(413, &["SIZE_INVALID"]);
    app.get(&format!("/v2/{repo}/manifests/toobig")).expect_error(404, &["MANIFEST_UNKNOWN"]);
}

fn digest_mismatch_on_put_by_digest(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("manifests/digestmismatch");
    let img = push_image(&app, &repo, None, 1);
    let other = push_image(&app, &repo, None, 1);
    // `img`'s bytes under `other`'s digest.
    put_manifest(&app, &repo, &other.digest, OCI_MANIFEST, &img.manifest).expect_error(400, &["DIGEST_INVALID"]);
    // A digest of nothing that exists.
    let bogus = sha256_digest(b"bogus");
    put_manifest(&app, &repo, &bogus, OCI_MANIFEST, &img.manifest).expect_error(400, &["DIGEST_INVALID"]);
    app.get(&format!("/v2/{repo}/manifests/{bogus}")).expect_error(404, &["MANIFEST_UNKNOWN"]);
    // `other` is untouched.
    assert_manifest(&app, &repo, &other.digest, OCI_MANIFEST, &other.manifest);
}

fn unknown_manifest_is_404(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("manifests/unknown");
    push_image(&app, &repo, Some("exists"), 1);
    let missing = sha256_digest(b"no such manifest");
    for reference in ["nosuchtag", missing.as_str()] {
        let path = format!("/v2/{repo}/manifests/{reference}");
        app.get(&path).expect_error(404, &["MANIFEST_UNKNOWN"]);
        app.head(&path).expect(404);
    }
    // Unknown repository.
    for path in ["/v2/nobody/here/manifests/latest".to_string(), format!("/v2/nobody/here/manifests/{missing}")] {
        app.get(&path).expect_error(404, &["NAME_UNKNOWN", "MANIFEST_UNKNOWN"]);
        app.head(&path).expect(404);
    }
    let r = app.get("/v2/nobody/here/tags/list");
    r.expect_error(404, &["NAME_UNKNOWN"]);
    let _: Value = r.json();
}
