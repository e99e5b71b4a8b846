//! Blob pushes (single POST, POST+PUT, sha512, cross-repo mount) and pulls
//! (GET/HEAD, unknown blobs, byte ranges), on both storage backends.

#[macro_use]
mod common;

use common::*;
use reqwest::Method;

backend_tests!(
    api_version_check,
    api_version_check_head,
    single_post_monolithic_push,
    post_then_put_push,
    single_post_with_wrong_digest_is_rejected,
    sha512_monolithic_push,
    sha512_chunked_push,
    empty_blob_push,
    get_and_head_blob,
    unknown_blob_is_404,
    blob_is_scoped_to_repository,
    range_requests,
    unsatisfiable_range_is_416,
    mount_existing_blob,
    mount_missing_blob_starts_upload,
);

fn api_version_check(b: Backend) {
    let app = TestApp::start_backend(b);
    let r = app.get("/v2/");
    r.expect(200).expect_header("docker-distribution-api-version", "registry/2.0");
}

/// RFC 9110 9.1: general-purpose servers MUST support HEAD wherever GET works.
fn api_version_check_head(b: Backend) {
    let app = TestApp::start_backend(b);
    let h = app.head("/v2/");
    h.expect(200).expect_header("docker-distribution-api-version", "registry/2.0");
}

fn single_post_monolithic_push(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("blobs/single");
    let data = unique_bytes(70_001);
    let digest = sha256_digest(&data);
    let r = app
        .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/?digest={}", qenc(&digest)))
        .header("Content-Type", "application/octet-stream")
        .body(data.clone())
        .send();
    r.expect(201).expect_header("docker-content-digest", &digest);
    let loc = r.must_header("location");
    // The Location is a pullable blob URL.
    let g = app.get(&loc);
    g.expect(200).expect_header("docker-content-digest", &digest);
    assert!(g.body == data, "body at Location {loc} differs");
    assert_blob(&app, &repo, &digest, &data);
}

fn post_then_put_push(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("blobs/postput");
    let data = unique_bytes(123_457);
    let digest = sha256_digest(&data);
    let loc = start_upload(&app, &repo);
    let r = finish_upload(&app, &loc, &digest, data.clone());
    r.expect(201).expect_header("docker-content-digest", &digest);
    let blob_loc = r.must_header("location");
    app.get(&blob_loc).expect(200).expect_header("docker-content-digest", &digest);
    assert_blob(&app, &repo, &digest, &data);
    // The finished session is gone.
    app.get(&loc).expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
}

fn single_post_with_wrong_digest_is_rejected(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("blobs/single-bad");
    let data = unique_bytes(4096);
    let wrong = sha256_digest(b"something else entirely");
    let r = app
        .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/?digest={}", qenc(&wrong)))
        .header("Content-Type", "application/octet-stream")
        .body(data.clone())
        .send();
    r.expect_error(400, &["DIGEST_INVALID"]);
    assert_no_blob(&app, &repo, &wrong);
    assert_no_blob(&app, &repo, &sha256_digest(&data));
}

fn sha512_monolithic_push(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("blobs/sha512");
    let data = unique_bytes(50_000);
    let digest = sha512_digest(&data);
    let r = app
        .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/?digest={}", qenc(&digest)))
        .header("Content-Type", "application/octet-stream")
        .body(data.clone())
        .send();
    r.expect(201).expect_header("docker-content-digest", &digest);
    assert_blob(&app, &repo, &digest, &data);
    let h = app.head(&format!("/v2/{repo}/blobs/{digest}"));
    h.expect(200).expect_header("docker-content-digest", &digest);
    assert_eq!(h.content_length(), data.len() as u64);

    // POST then PUT with a sha512 digest as well.
    let data2 = unique_bytes(10_000);
    let d2 = sha512_digest(&data2);
    let loc = start_upload(&app, &repo);
    finish_upload(&app, &loc, &d2, data2.clone()).expect(201).expect_header("docker-content-digest", &d2);
    assert_blob(&app, &repo, &d2, &data2);
}

fn sha512_chunked_push(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("blobs/sha512-chunked");
    let data = unique_bytes(3 * 100_000 + 17);
    let digest = sha512_digest(&data);
    let r = app.req(Method::POST, &format!("/v2/{repo}/blobs/uploads/?digest-algorithm=sha512")).header("Content-Length", "0").send();
    r.expect(202);
    let mut loc = r.must_header("location");
    for (i, chunk) in data.chunks(100_000).enumerate() {
        let start = (i * 100_000) as u64;
        let r = patch_chunk(&app, &loc, start, chunk.to_vec());
        r.expect(202).expect_header("range", &format!("0-{}", start + chunk.len() as u64 - 1));
        loc = r.must_header("location");
    }
    finish_upload(&app, &loc, &digest, Vec::new()).expect(201).expect_header("docker-content-digest", &digest);
    assert_blob(&app, &repo, &digest, &data);
}

fn empty_blob_push(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("blobs/empty");
    // The empty JSON object `{}` is the OCI "empty descriptor" blob; a zero-byte
    // blob must also work.
    for data in [b"{}".to_vec(), Vec::new()] {
        let digest = push_blob(&app, &repo, &data);
        assert_blob(&app, &repo, &digest, &data);
    }
}

fn get_and_head_blob(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("blobs/get");
    let data = unique_bytes(300_000);
    let digest = push_blob(&app, &repo, &data);
    let g = app.get(&format!("/v2/{repo}/blobs/{digest}"));
    g.expect(200).expect_header("docker-content-digest", &digest);
    assert_eq!(g.content_length(), data.len() as u64);
    assert!(g.body == data, "GET body differs");
    assert_eq!(sha256_digest(&g.body), digest);
    let h = app.head(&format!("/v2/{repo}/blobs/{digest}"));
    h.expect(200).expect_header("docker-content-digest", &digest);
    assert_eq!(h.content_length(), data.len() as u64, "HEAD Content-Length:\n{}", h.describe());
    assert!(h.body.is_empty());
}

fn unknown_blob_is_404(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("blobs/unknown");
    push_blob(&app, &repo, &unique_bytes(10)); // the repository exists
    let missing = sha256_digest(b"never pushed");
    assert_no_blob(&app, &repo, &missing);
    let missing512 = sha512_digest(b"never pushed");
    assert_no_blob(&app, &repo, &missing512);
    // Unknown repository as well.
    let r = app.get(&format!("/v2/no/such/repo/blobs/{missing}"));
    r.expect_error(404, &["BLOB_UNKNOWN", "NAME_UNKNOWN"]);
}

fn blob_is_scoped_to_repository(b: Backend) {
    let app = TestApp::start_backend(b);
    let a = repo("blobs/scope-a");
    let c = repo("blobs/scope-c");
    let data = unique_bytes(2048);
    let digest = push_blob(&app, &a, &data);
    push_blob(&app, &c, &unique_bytes(10)); // c exists, but never received `data`
    app.head(&format!("/v2/{c}/blobs/{digest}")).expect(404);
    app.get(&format!("/v2/{c}/blobs/{digest}")).expect_error(404, &["BLOB_UNKNOWN"]);
}

fn range_requests(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("blobs/range");
    let data = unique_bytes(1000);
    let digest = push_blob(&app, &repo, &data);
    let path = format!("/v2/{repo}/blobs/{digest}");

    let r = app.req(Method::GET, &path).header("Range", "bytes=10-19").send();
    r.expect(206).expect_header("content-range", "bytes 10-19/1000");
    assert_eq!(r.content_length(), 10);
    assert_eq!(r.body, &data[10..20]);

    let r = app.req(Method::GET, &path).header("Range", "bytes=990-").send();
    r.expect(206).expect_header("content-range", "bytes 990-999/1000");
    assert_eq!(r.body, &data[990..]);

    let r = app.req(Method::GET, &path).header("Range", "bytes=0-0").send();
    r.expect(206).expect_header("content-range", "bytes 0-0/1000");
    assert_eq!(r.body, &data[..1]);

    // An end past the size is clamped to the last byte (RFC 9110 14.1.2).
    let r = app.req(Method::GET, &path).header("Range", "bytes=995-5000").send();
    r.expect(206).expect_header("content-range", "bytes 995-999/1000");
    assert_eq!(r.body, &data[995..]);

    // Syntactically invalid ranges are ignored: the whole body, 200, no
    // Content-Range (RFC 9110 14.2).
    for range in ["bytes=5-1", "bytes=x-1", "bytes=0-1,4-5", "items=0-1"] {
        let r = app.req(Method::GET, &path).header("Range", range).send();
        r.expect(200);
        assert!(r.header("content-range").is_none(), "Range {range}:\n{}", r.describe());
        assert_eq!(r.body, data, "Range {range}");
    }
}

fn unsatisfiable_range_is_416(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("blobs/range416");
    let data = unique_bytes(1000);
    let digest = push_blob(&app, &repo, &data);
    let path = format!("/v2/{repo}/blobs/{digest}");
    for range in ["bytes=1000-1010", "bytes=5000-"] {
        let r = app.req(Method::GET, &path).header("Range", range).send();
        assert_eq!(r.status, 416, "Range {range}:\n{}", r.describe());
        // RFC 9110: a 416 should say the current length.
        if let Some(cr) = r.header("content-range") {
            assert_eq!(cr, "bytes */1000", "Range {range}:\n{}", r.describe());
        }
    }
    // The blob is still served whole afterwards.
    assert_blob(&app, &repo, &digest, &data);
}

fn mount_existing_blob(b: Backend) {
    let app = TestApp::start_backend(b);
    let a = repo("blobs/mount-src");
    let dst = repo("blobs/mount-dst");
    let data = unique_bytes(40_000);
    let digest = push_blob(&app, &a, &data);
    let r = app.post(&format!("/v2/{dst}/blobs/uploads/?mount={}&from={a}", qenc(&digest)));
    r.expect(201).expect_header("docker-content-digest", &digest);
    let loc = r.must_header("location");
    app.get(&loc).expect(200).expect_header("docker-content-digest", &digest);
    assert_blob(&app, &dst, &digest, &data);
    // The source keeps its copy.
    assert_blob(&app, &a, &digest, &data);
}

fn mount_missing_blob_starts_upload(b: Backend) {
    let app = TestApp::start_backend(b);
    let a = repo("blobs/mount-src");
    let dst = repo("blobs/mount-dst");
    push_blob(&app, &a, &unique_bytes(100)); // `a` exists but lacks the blob
    let data = unique_bytes(5000);
    let digest = sha256_digest(&data);
    let r = app.post(&format!("/v2/{dst}/blobs/uploads/?mount={}&from={a}", qenc(&digest)));
    r.expect(202);
    let loc = r.must_header("location");
    assert_no_blob(&app, &dst, &digest);
    // The 202 is a normal upload session that can be completed.
    finish_upload(&app, &loc, &digest, data.clone()).expect(201).expect_header("docker-content-digest", &digest);
    assert_blob(&app, &dst, &digest, &data);

    // Mounting from a repository that does not exist is also just an upload.
    let other = unique_bytes(77);
    let od = sha256_digest(&other);
    let r = app.post(&format!("/v2/{dst}/blobs/uploads/?mount={}&from=no/such/repo", qenc(&od)));
    r.expect(202);
    assert!(r.header("location").is_some());
}
