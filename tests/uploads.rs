//! Upload sessions: chunked PATCH uploads, status, cancel, out-of-order
//! chunks, digest verification on close, on both storage backends.

#[macro_use]
mod common;

use common::*;
use proptest::prelude::*;
use reqwest::Method;

backend_tests!(
    chunked_upload_flow,
    patch_without_content_range_appends,
    out_of_order_patch_is_416,
    content_range_not_matching_body_is_rejected,
    upload_status,
    cancel_upload,
    wrong_digest_on_close_is_rejected,
    close_without_digest_is_rejected,
    unknown_upload_session,
    parallel_sessions_are_independent,
    patch_cut_off_midway_changes_nothing,
    whole_blob_requests_leave_nothing_behind_unless_stored,
);

fn chunked_upload_flow(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("uploads/chunked");
    let data = unique_bytes(3 * 65_536 + 1234);
    let digest = sha256_digest(&data);

    let r = app.req(Method::POST, &format!("/v2/{repo}/blobs/uploads/")).header("Content-Length", "0").send();
    r.expect(202).expect_header("range", "0-0");
    let uuid = r.must_header("docker-upload-uuid");
    assert!(!uuid.is_empty());
    let mut loc = r.must_header("location");
    assert!(loc.contains(&uuid), "Location {loc} should carry the session id {uuid}");

    // Two PATCHes, then the last chunk rides on the closing PUT.
    let c1 = &data[..65_536];
    let c2 = &data[65_536..2 * 65_536];
    let c3 = &data[2 * 65_536..];
    let r = patch_chunk(&app, &loc, 0, c1.to_vec());
    r.expect(202).expect_header("range", "0-65535").expect_header("docker-upload-uuid", &uuid);
    loc = r.must_header("location");

    let r = patch_chunk(&app, &loc, 65_536, c2.to_vec());
    r.expect(202).expect_header("range", "0-131071").expect_header("docker-upload-uuid", &uuid);
    loc = r.must_header("location");

    let s = app.get(&loc);
    s.expect(204).expect_header("range", "0-131071").expect_header("docker-upload-uuid", &uuid);
    assert!(s.header("location").is_some(), "upload status without Location:\n{}", s.describe());

    // Not visible before the session is closed.
    assert_no_blob(&app, &repo, &digest);

    let end = data.len() - 1;
    let r = app
        .req(Method::PUT, &with_query(&loc, &format!("digest={}", qenc(&digest))))
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", format!("131072-{end}"))
        .body(c3.to_vec())
        .send();
    r.expect(201).expect_header("docker-content-digest", &digest);
    let blob_loc = r.must_header("location");
    app.head(&blob_loc).expect(200).expect_header("docker-content-digest", &digest);
    assert_blob(&app, &repo, &digest, &data);
    // The closed session is gone.
    app.get(&loc).expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
}

/// `docker push` streams a whole layer in one PATCH without Content-Range.
fn patch_without_content_range_appends(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("uploads/streamed");
    let data = unique_bytes(200_000);
    let digest = sha256_digest(&data);
    let loc = start_upload(&app, &repo);
    let r = app.req(Method::PATCH, &loc).header("Content-Type", "application/octet-stream").body(data[..120_000].to_vec()).send();
    r.expect(202).expect_header("range", "0-119999");
    let loc = r.must_header("location");
    let r = app.req(Method::PATCH, &loc).header("Content-Type", "application/octet-stream").body(data[120_000..].to_vec()).send();
    r.expect(202).expect_header("range", "0-199999");
    let loc = r.must_header("location");
    finish_upload(&app, &loc, &digest, Vec::new()).expect(201);
    assert_blob(&app, &repo, &digest, &data);
}

fn out_of_order_patch_is_416(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("uploads/ooo");
    let data = unique_bytes(30_000);
    let digest = sha256_digest(&data);
    let loc = start_upload(&app, &repo);
    let r = patch_chunk(&app, &loc, 0, data[..10_000].to_vec());
    r.expect(202).expect_header("range", "0-9999");
    let loc = r.must_header("location");

    // A gap, a rewind to 0, and an overlap are all out of order.
    for start in [10_005u64, 0, 9_000] {
        let r = patch_chunk(&app, &loc, start, data[10_000..20_000].to_vec());
        r.expect(416);
        if !r.body.is_empty() {
            check_envelope(&r.body, &[], &r.describe());
        }
    }
    // The first chunk on a fresh session must start at 0.
    let other = start_upload(&app, &repo);
    patch_chunk(&app, &other, 5, data[..100].to_vec()).expect(416);

    // The session is intact and can be continued from the reported offset.
    let s = app.get(&loc);
    s.expect(204).expect_header("range", "0-9999");
    let loc = s.header("location").unwrap_or(loc);
    let r = patch_chunk(&app, &loc, 10_000, data[10_000..20_000].to_vec());
    r.expect(202).expect_header("range", "0-19999");
    let loc = r.must_header("location");
    // An out-of-order final chunk on the closing PUT is also 416.
    let r = app
        .req(Method::PUT, &with_query(&loc, &format!("digest={}", qenc(&digest))))
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", "20001-30000")
        .body(data[20_000..].to_vec())
        .send();
    r.expect(416);
    let r = app
        .req(Method::PUT, &with_query(&loc, &format!("digest={}", qenc(&digest))))
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", "20000-29999")
        .body(data[20_000..].to_vec())
        .send();
    r.expect(201).expect_header("docker-content-digest", &digest);
    assert_blob(&app, &repo, &digest, &data);
}

fn content_range_not_matching_body_is_rejected(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("uploads/badrange");
    let loc = start_upload(&app, &repo);
    let mut failures = Vec::new();
    for (what, range, len) in [
        ("Content-Range longer than the body", "0-99", 50usize),
        ("Content-Range shorter than the body", "0-9", 50),
        ("malformed Content-Range", "bytes=zero-ten", 11),
        ("inverted Content-Range", "10-0", 11),
    ] {
        let r = app
            .req(Method::PATCH, &loc)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", range)
            .body(vec![7u8; len])
            .send();
        let ok = matches!(r.status, 400 | 416) && (r.body.is_empty() || envelope_problem(&r.body, &[]).is_ok());
        if !ok {
            failures.push(format!("{what} (Content-Range: {range}, {len} bytes sent): expected 400 or 416\n{}", r.describe()));
        }
    }
    // The session did not absorb any of it.
    let s = app.get(&loc);
    if s.status != 204 || s.header("range").as_deref() != Some("0-0") {
        failures.push(format!("after the refused PATCHes the session should still be empty (Range: 0-0):\n{}", s.describe()));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn upload_status(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("uploads/status");
    let loc = start_upload(&app, &repo);
    let s = app.get(&loc);
    s.expect(204).expect_header("range", "0-0");
    assert!(s.header("docker-upload-uuid").is_some(), "{}", s.describe());
    assert!(s.header("location").is_some(), "{}", s.describe());
    assert!(s.body.is_empty());
    let r = patch_chunk(&app, &loc, 0, vec![1u8; 1]);
    r.expect(202).expect_header("range", "0-0");
    let loc = r.must_header("location");
    let r = patch_chunk(&app, &loc, 1, vec![2u8; 999]);
    r.expect(202).expect_header("range", "0-999");
    let loc = r.must_header("location");
    app.get(&loc).expect(204).expect_header("range", "0-999");
}

/// A client that dies halfway through a PATCH body: the session stays at
/// its last recorded size, and neither a later chunk nor the close picks up
/// the stray bytes (on the filesystem they sit past the recorded size).
/// Closing with a sha512 digest re-reads the stored bytes, so it also shows
/// that none of the stray bytes are left in them.
fn patch_cut_off_midway_changes_nothing(b: Backend) {
    use std::io::Write;
    let app = TestApp::start_backend(b);
    let repo = repo("uploads/cut");
    let data = unique_bytes(3 * MIB);
    let first = MIB;
    for (more_chunks, sha512) in [(true, false), (false, false), (false, true)] {
        let loc = start_upload(&app, &repo);
        let r = patch_chunk(&app, &loc, 0, data[..first].to_vec());
        r.expect(202);
        let loc = r.must_header("location");
        // Announce 2 MiB of garbage, send half of it, hang up.
        let target = app.url(&loc);
        let target = &target[target.find("/v2/").expect("location path")..];
        let mut s = std::net::TcpStream::connect(("127.0.0.1", app.port())).unwrap();
        write!(
            s,
            "PATCH {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            2 * MIB
        )
        .unwrap();
        s.write_all(&vec![0xEE; MIB]).unwrap();
        s.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        drop(s);
        std::thread::sleep(std::time::Duration::from_millis(200));
        let st = app.get(&loc);
        st.expect(204).expect_header("range", &format!("0-{}", first - 1));
        let loc = st.header("location").unwrap_or(loc);
        let want = if more_chunks { &data[..] } else { &data[..first] };
        let digest = if sha512 { sha512_digest(want) } else { sha256_digest(want) };
        let r = if more_chunks {
            let r = patch_chunk(&app, &loc, first as u64, data[first..2 * MIB].to_vec());
            r.expect(202);
            finish_upload(&app, &r.must_header("location"), &digest, data[2 * MIB..].to_vec())
        } else {
            finish_upload(&app, &loc, &digest, Vec::new())
        };
        r.expect(201);
        assert_blob(&app, &repo, &digest, want);
    }
}

fn cancel_upload(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("uploads/cancel");
    let data = unique_bytes(5000);
    let digest = sha256_digest(&data);
    let loc = start_upload(&app, &repo);
    let r = patch_chunk(&app, &loc, 0, data[..2500].to_vec());
    r.expect(202);
    let loc = r.must_header("location");
    let d = app.req(Method::DELETE, &loc).header("Content-Length", "0").send();
    d.expect(204);
    app.get(&loc).expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
    patch_chunk(&app, &loc, 2500, data[2500..].to_vec()).expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
    finish_upload(&app, &loc, &digest, Vec::new()).expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
    app.req(Method::DELETE, &loc).send().expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
    assert_no_blob(&app, &repo, &digest);
}

fn wrong_digest_on_close_is_rejected(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("uploads/baddigest");
    let data = unique_bytes(20_000);
    let real = sha256_digest(&data);
    let wrong = sha256_digest(b"not the data");

    // Chunked, digest given on the empty closing PUT.
    let loc = start_upload(&app, &repo);
    let r = patch_chunk(&app, &loc, 0, data.clone());
    r.expect(202);
    let loc = r.must_header("location");
    finish_upload(&app, &loc, &wrong, Vec::new()).expect_error(400, &["DIGEST_INVALID"]);
    assert_no_blob(&app, &repo, &wrong);
    assert_no_blob(&app, &repo, &real);

    // POST then PUT with the body on the PUT.
    let loc = start_upload(&app, &repo);
    finish_upload(&app, &loc, &wrong, data.clone()).expect_error(400, &["DIGEST_INVALID"]);
    assert_no_blob(&app, &repo, &wrong);
    assert_no_blob(&app, &repo, &real);

    // A sha512 digest of other content is just as wrong.
    let loc = start_upload(&app, &repo);
    let wrong512 = sha512_digest(b"not the data");
    finish_upload(&app, &loc, &wrong512, data.clone()).expect_error(400, &["DIGEST_INVALID"]);
    assert_no_blob(&app, &repo, &wrong512);

    // The right digest still works afterwards on a new session.
    push_blob(&app, &repo, &data);
    assert_blob(&app, &repo, &real, &data);
}

fn close_without_digest_is_rejected(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("uploads/nodigest");
    let data = unique_bytes(1000);
    let loc = start_upload(&app, &repo);
    let r = app.req(Method::PUT, &loc).header("Content-Type", "application/octet-stream").body(data.clone()).send();
    r.expect_error(400, &["DIGEST_INVALID", "BLOB_UPLOAD_INVALID"]);
    // A malformed digest on close.
    let r = finish_upload(&app, &loc, "sha256:nothex", data.clone());
    r.expect_error(400, &["DIGEST_INVALID"]);
    assert_no_blob(&app, &repo, &sha256_digest(&data));
}

fn unknown_upload_session(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("uploads/unknown");
    start_upload(&app, &repo); // the repository has some activity
    let fake = format!("/v2/{repo}/blobs/uploads/3f0bd1a2-5c1e-4d7e-9a0b-7c1d2e3f4a5b");
    app.get(&fake).expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
    patch_chunk(&app, &fake, 0, vec![1, 2, 3]).expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
    let d = sha256_digest(&[1, 2, 3]);
    finish_upload(&app, &fake, &d, vec![1, 2, 3]).expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
    app.delete(&fake).expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
    // A session id that is not even UUID-shaped.
    let r = app.get(&format!("/v2/{repo}/blobs/uploads/..%2F..%2Fetc"));
    r.expect_client_error(&["BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID", "NAME_INVALID"]);
    // A real session cannot be driven through another repository's URL.
    let loc = start_upload(&app, &repo);
    let path = loc.split('?').next().unwrap().trim_end_matches('/');
    let uuid = path.rsplit('/').next().unwrap().to_string();
    let other = common::repo("uploads/other");
    push_blob(&app, &other, &unique_bytes(5));
    let r = app.get(&format!("/v2/{other}/blobs/uploads/{uuid}"));
    r.expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
}

fn parallel_sessions_are_independent(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("uploads/parallel");
    let d1 = unique_bytes(40_000);
    let d2 = unique_bytes(40_000);
    let l1 = start_upload(&app, &repo);
    let l2 = start_upload(&app, &repo);
    assert_ne!(l1, l2, "two sessions got the same Location");
    let mut l1 = l1;
    let mut l2 = l2;
    for i in 0..4 {
        let (s, e) = (i * 10_000, (i + 1) * 10_000);
        let r = patch_chunk(&app, &l1, s as u64, d1[s..e].to_vec());
        r.expect(202);
        l1 = r.must_header("location");
        let r = patch_chunk(&app, &l2, s as u64, d2[s..e].to_vec());
        r.expect(202);
        l2 = r.must_header("location");
    }
    let g1 = sha256_digest(&d1);
    let g2 = sha256_digest(&d2);
    finish_upload(&app, &l2, &g2, Vec::new()).expect(201);
    finish_upload(&app, &l1, &g1, Vec::new()).expect(201);
    assert_blob(&app, &repo, &g1, &d1);
    assert_blob(&app, &repo, &g2, &d2);
}

// Property: however a blob is cut into chunks, the assembled blob is intact.
// One server serves all cases to keep the run short.
#[test]
fn fs_random_chunk_splits_reassemble() {
    let app = TestApp::start();
    let repo = repo("uploads/prop");
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 24,
        max_shrink_iters: 32,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = (1usize..40_000, prop::collection::vec(1usize..9_000, 1..12), 0usize..2);
    runner
        .run(&strategy, |(len, cuts, close_with_body)| {
            let data = unique_bytes(len);
            let digest = sha256_digest(&data);
            let mut loc = start_upload(&app, &repo);
            let mut off = 0usize;
            let mut cuts = cuts.into_iter();
            // Leave the last piece for the PUT when close_with_body == 1.
            loop {
                let step = cuts.next().unwrap_or(len);
                let end = (off + step).min(len);
                if end == len && close_with_body == 1 {
                    break;
                }
                let r = patch_chunk(&app, &loc, off as u64, data[off..end].to_vec());
                prop_assert_eq!(r.status, 202, "{}", r.describe());
                prop_assert_eq!(r.header("range"), Some(format!("0-{}", end - 1)));
                loc = r.must_header("location");
                off = end;
                if off == len {
                    break;
                }
            }
            let rest = data[off..].to_vec();
            let mut req = app
                .req(Method::PUT, &with_query(&loc, &format!("digest={}", qenc(&digest))))
                .header("Content-Type", "application/octet-stream");
            if !rest.is_empty() {
                req = req.header("Content-Range", format!("{off}-{}", len - 1));
            }
            let r = req.body(rest).send();
            prop_assert_eq!(r.status, 201, "{}", r.describe());
            let g = app.get(&format!("/v2/{repo}/blobs/{digest}"));
            prop_assert_eq!(g.status, 200);
            prop_assert!(g.body == data, "reassembled blob differs (len {})", len);
            Ok(())
        })
        .unwrap();
}

/// Sends `body_len` announced bytes of a request, only `sent` of them, and
/// hangs up.
fn hang_up_midway(app: &TestApp, method: &str, location: &str, body_len: usize, sent: usize) {
    use std::io::Write;
    let target = app.url(location);
    let target = &target[target.find("/v2/").expect("location path")..];
    let mut s = std::net::TcpStream::connect(("127.0.0.1", app.port())).unwrap();
    write!(
        s,
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: {body_len}\r\n\r\n"
    )
    .unwrap();
    s.write_all(&vec![0xEE; sent]).unwrap();
    s.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    drop(s);
}

/// Whether anything is stored at `digest`'s content address in the blob
/// store itself (not through Wharf's metadata), and on the filesystem any
/// temporary file of a blob write.
fn stored_bytes(app: &TestApp, digest: &str) -> (bool, Vec<String>) {
    let key = blob_key(digest);
    match app.s3_holds(&key) {
        Some(held) => (held, Vec::new()),
        None => {
            let mut temporaries = Vec::new();
            let mut dirs = vec![app.data_dir().join("blobs")];
            while let Some(dir) = dirs.pop() {
                for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if entry.path().is_dir() {
                        dirs.push(entry.path());
                    } else if name.starts_with(".partial-") {
                        temporaries.push(entry.path().display().to_string());
                    }
                }
            }
            (app.data_dir().join("blobs").join(&key).exists(), temporaries)
        }
    }
}

/// A whole blob in one request (`POST ?digest=` with a body, or a `PUT`
/// with the body on an empty session) goes straight towards its content
/// address. A wrong digest or a body cut off midway must leave nothing
/// there and no temporary file, in one part or in many
/// (S3 parts are 8 MiB); a right one is stored exactly, and a second push
/// of a stored blob changes nothing.
fn whole_blob_requests_leave_nothing_behind_unless_stored(b: Backend) {
    let app = TestApp::start_backend(b);
    let (repo, other) = (repo("uploads/whole"), repo("uploads/whole-again"));
    let settle = |digest: &str| {
        // A request cut off cleans up in the background: give it a moment.
        for _ in 0..50 {
            if stored_bytes(&app, digest) == (false, Vec::new()) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("bytes left behind for {digest}: {:?}", stored_bytes(&app, digest));
    };
    for len in [5000, 20 * MIB] {
        let data = unique_bytes(len);
        let digest = sha256_digest(&data);
        let mut wrong_data = data.clone();
        wrong_data[len / 2] ^= 1;

        // Wrong bytes under this digest: by POST and by PUT.
        let post = format!("/v2/{repo}/blobs/uploads/?digest={}", qenc(&digest));
        app.req(Method::POST, &post).body(wrong_data.clone()).send().expect_error(400, &["DIGEST_INVALID"]);
        let loc = start_upload(&app, &repo);
        finish_upload(&app, &loc, &digest, wrong_data).expect_error(400, &["DIGEST_INVALID"]);
        settle(&digest);
        assert_no_blob(&app, &repo, &digest);

        // Cut off midway, by POST and by PUT; the session stays usable.
        hang_up_midway(&app, "POST", &post, len, len / 2);
        let loc = start_upload(&app, &repo);
        hang_up_midway(&app, "PUT", &with_query(&loc, &format!("digest={}", qenc(&digest))), len, len / 2);
        settle(&digest);
        assert_no_blob(&app, &repo, &digest);
        app.get(&loc).expect(204).expect_header("range", "0-0");

        // The right bytes, on the session that survived the hang-up.
        finish_upload(&app, &loc, &digest, data.clone()).expect(201).expect_header("docker-content-digest", &digest);
        assert_blob(&app, &repo, &digest, &data);
        assert!(stored_bytes(&app, &digest).0, "{digest} is not at its content address");
        app.get(&loc).expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);

        // Pushed again (another repository): stored once, no temporary left.
        app.req(Method::POST, &format!("/v2/{other}/blobs/uploads/?digest={}", qenc(&digest))).body(data.clone()).send().expect(201);
        assert_blob(&app, &other, &digest, &data);
        assert_eq!(stored_bytes(&app, &digest), (true, Vec::new()));
    }
}
