//! Deleting manifests (by digest), tags, and blobs; and the same requests
//! with deletes disabled by configuration.

#[macro_use]
mod common;

use common::*;
use serde_json::Value;

backend_tests!(
    delete_manifest_by_digest,
    delete_tag_keeps_manifest,
    delete_blob,
    delete_unknown_things_is_404,
    manifest_referencing_deleted_blob_is_refused,
    deletes_disabled_is_405_unsupported,
);

fn tags(app: &TestApp, repo: &str) -> Vec<String> {
    let r = app.get(&format!("/v2/{repo}/tags/list"));
    if r.status == 404 {
        // A repository with nothing left in it may be unknown now.
        r.expect_error(404, &["NAME_UNKNOWN"]);
        return Vec::new();
    }
    r.expect(200);
    match &r.json()["tags"] {
        Value::Null => Vec::new(),
        Value::Array(a) => a.iter().map(|t| t.as_str().unwrap().to_string()).collect(),
        other => panic!("tags: {other}"),
    }
}

fn delete_manifest_by_digest(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("deletes/manifest");
    let img = push_image(&app, &repo, Some("v1"), 2);
    push_manifest(&app, &repo, "also", OCI_MANIFEST, &img.manifest);
    let other = push_image(&app, &repo, Some("other"), 1);

    app.delete(&format!("/v2/{repo}/manifests/{}", img.digest)).expect(202);

    let path = format!("/v2/{repo}/manifests/{}", img.digest);
    app.get(&path).expect_error(404, &["MANIFEST_UNKNOWN"]);
    app.head(&path).expect(404);
    // Every tag that pointed at it is gone too.
    for t in ["v1", "also"] {
        app.get(&format!("/v2/{repo}/manifests/{t}")).expect_error(404, &["MANIFEST_UNKNOWN"]);
    }
    assert_eq!(tags(&app, &repo), vec!["other".to_string()]);
    // Unrelated content is untouched, and the blobs are still there (deleting a
    // manifest does not delete blobs).
    assert_manifest(&app, &repo, "other", OCI_MANIFEST, &other.manifest);
    for (d, data) in img.layer_digests.iter().zip(&img.layers) {
        assert_blob(&app, &repo, d, data);
    }
    // Deleting again is 404.
    app.delete(&path).expect_error(404, &["MANIFEST_UNKNOWN"]);
    // The same manifest can be pushed again.
    push_manifest(&app, &repo, "v1", OCI_MANIFEST, &img.manifest);
    assert_manifest(&app, &repo, "v1", OCI_MANIFEST, &img.manifest);
}

fn delete_tag_keeps_manifest(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("deletes/tag");
    let img = push_image(&app, &repo, Some("v1"), 1);
    push_manifest(&app, &repo, "v2", OCI_MANIFEST, &img.manifest);
    assert_eq!(tags(&app, &repo), vec!["v1".to_string(), "v2".to_string()]);

    app.delete(&format!("/v2/{repo}/manifests/v1")).expect(202);
    app.get(&format!("/v2/{repo}/manifests/v1")).expect_error(404, &["MANIFEST_UNKNOWN"]);
    app.head(&format!("/v2/{repo}/manifests/v1")).expect(404);
    assert_eq!(tags(&app, &repo), vec!["v2".to_string()]);
    // The manifest and its other tag remain.
    assert_manifest(&app, &repo, &img.digest, OCI_MANIFEST, &img.manifest);
    assert_manifest(&app, &repo, "v2", OCI_MANIFEST, &img.manifest);
    // Deleting the tag again: 404.
    app.delete(&format!("/v2/{repo}/manifests/v1")).expect_error(404, &["MANIFEST_UNKNOWN"]);
    // The last tag can go too; the manifest is still pullable by digest.
    app.delete(&format!("/v2/{repo}/manifests/v2")).expect(202);
    assert!(tags(&app, &repo).is_empty());
    assert_manifest(&app, &repo, &img.digest, OCI_MANIFEST, &img.manifest);
}

fn delete_blob(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("deletes/blob");
    let data = unique_bytes(10_000);
    let keep = unique_bytes(10_000);
    let d = push_blob(&app, &repo, &data);
    let k = push_blob(&app, &repo, &keep);
    app.delete(&format!("/v2/{repo}/blobs/{d}")).expect(202);
    assert_no_blob(&app, &repo, &d);
    app.delete(&format!("/v2/{repo}/blobs/{d}")).expect_error(404, &["BLOB_UNKNOWN"]);
    assert_blob(&app, &repo, &k, &keep);
    // The same content can be pushed again afterwards.
    push_blob(&app, &repo, &data);
    assert_blob(&app, &repo, &d, &data);

    // Deleting a blob in one repository leaves another repository's copy.
    let other = common::repo("deletes/blob-other");
    let shared = unique_bytes(5000);
    let sd = push_blob(&app, &repo, &shared);
    push_blob(&app, &other, &shared);
    app.delete(&format!("/v2/{repo}/blobs/{sd}")).expect(202);
    assert_no_blob(&app, &repo, &sd);
    assert_blob(&app, &other, &sd, &shared);
}

fn delete_unknown_things_is_404(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("deletes/unknown");
    push_image(&app, &repo, Some("v1"), 1);
    let missing = sha256_digest(b"missing");
    app.delete(&format!("/v2/{repo}/manifests/{missing}")).expect_error(404, &["MANIFEST_UNKNOWN"]);
    app.delete(&format!("/v2/{repo}/manifests/nosuchtag")).expect_error(404, &["MANIFEST_UNKNOWN"]);
    app.delete(&format!("/v2/{repo}/blobs/{missing}")).expect_error(404, &["BLOB_UNKNOWN"]);
    app.delete(&format!("/v2/no/such/repo/manifests/{missing}")).expect_error(404, &["NAME_UNKNOWN", "MANIFEST_UNKNOWN"]);
    app.delete(&format!("/v2/no/such/repo/blobs/{missing}")).expect_error(404, &["NAME_UNKNOWN", "BLOB_UNKNOWN"]);
}

fn manifest_referencing_deleted_blob_is_refused(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("deletes/dangling");
    let img = push_image(&app, &repo, Some("v1"), 2);
    app.delete(&format!("/v2/{repo}/blobs/{}", img.layer_digests[1])).expect(202);
    // Re-pushing a manifest that needs the deleted layer now fails.
    put_manifest(&app, &repo, "v2", OCI_MANIFEST, &img.manifest).expect_error(400, &["MANIFEST_BLOB_UNKNOWN"]);
    app.get(&format!("/v2/{repo}/manifests/v2")).expect_error(404, &["MANIFEST_UNKNOWN"]);
    // Pushing the layer again makes it acceptable again.
    push_blob(&app, &repo, &img.layers[1]);
    push_manifest(&app, &repo, "v2", OCI_MANIFEST, &img.manifest);
}

fn deletes_disabled_is_405_unsupported(b: Backend) {
    let app = TestApp::builder().backend(b).env("WHARF_REGISTRY__ALLOW_DELETE", "false").start();
    let repo = repo("deletes/disabled");
    let img = push_image(&app, &repo, Some("v1"), 1);
    let blob = &img.layer_digests[0];

    app.delete(&format!("/v2/{repo}/manifests/{}", img.digest)).expect_error(405, &["UNSUPPORTED"]);
    app.delete(&format!("/v2/{repo}/manifests/v1")).expect_error(405, &["UNSUPPORTED"]);
    app.delete(&format!("/v2/{repo}/blobs/{blob}")).expect_error(405, &["UNSUPPORTED"]);

    // Nothing changed.
    assert_manifest(&app, &repo, "v1", OCI_MANIFEST, &img.manifest);
    assert_manifest(&app, &repo, &img.digest, OCI_MANIFEST, &img.manifest);
    assert_blob(&app, &repo, blob, &img.layers[0]);
    assert_eq!(tags(&app, &repo), vec!["v1".to_string()]);

    // Pushing and cancelling uploads still works: only content deletes are off.
    let loc = start_upload(&app, &repo);
    app.delete(&loc).expect(204);
}
