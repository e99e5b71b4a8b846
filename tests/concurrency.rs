//! Many clients at once: the same blob pushed by eight clients, racing
//! PATCHes on one upload session, and racing manifest/tag writes.

#[macro_use]
mod common;

use std::sync::{Barrier, Mutex};

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

backend_tests!(
    concurrent_pushes_of_same_blob,
    racing_patches_on_one_session,
    racing_manifest_pushes_to_one_tag,
    many_tags_pushed_concurrently,
);

fn concurrent_pushes_of_same_blob(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("concurrency/blob");
    let src = common::repo("concurrency/blob-src");
    let data = unique_bytes(8 * MIB + 513);
    let digest = sha256_digest(&data);
    push_blob(&app, &src, &data); // for the mounting client
    let clients = 8;
    let barrier = Barrier::new(clients);
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());

    std::thread::scope(|s| {
        for i in 0..clients {
            let (app, repo, src, data, digest, barrier, failures) = (&app, &repo, &src, &data, &digest, &barrier, &failures);
            s.spawn(move || {
                let put_digest = with_query_digest(digest);
                barrier.wait();
                let r = match i {
                    // Single POST.
                    0 | 4 => app
                        .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/?{put_digest}"))
                        .header("Content-Type", "application/octet-stream")
                        .body(data.clone())
                        .send(),
                    // POST then PUT.
                    1 | 5 => {
                        let loc = start_upload(app, repo);
                        finish_upload(app, &loc, digest, data.clone())
                    }
                    // Chunked in 1 MiB PATCHes, empty closing PUT.
                    2 => {
                        let mut loc = start_upload(app, repo);
                        for (k, c) in data.chunks(MIB).enumerate() {
                            let r = patch_chunk(app, &loc, (k * MIB) as u64, c.to_vec());
                            r.expect(202);
                            loc = r.must_header("location");
                        }
                        finish_upload(app, &loc, digest, Vec::new())
                    }
                    // Chunked in 3 MiB PATCHes, last piece on the PUT.
                    3 | 6 => {
                        let mut loc = start_upload(app, repo);
                        let cut = 6 * MIB;
                        for (k, c) in data[..cut].chunks(3 * MIB).enumerate() {
                            let r = patch_chunk(app, &loc, (k * 3 * MIB) as u64, c.to_vec());
                            r.expect(202);
                            loc = r.must_header("location");
                        }
                        app.req(Method::PUT, &with_query(&loc, &put_digest))
                            .header("Content-Type", "application/octet-stream")
                            .header("Content-Range", format!("{cut}-{}", data.len() - 1))
                            .body(data[cut..].to_vec())
                            .send()
                    }
                    // Cross-repository mount (201), or an upload session (202) to complete.
                    _ => {
                        let r = app.post(&format!("/v2/{repo}/blobs/uploads/?mount={}&from={src}", qenc(digest)));
                        if r.status == 202 {
                            finish_upload(app, &r.must_header("location"), digest, data.clone())
                        } else {
                            r
                        }
                    }
                };
                let ok = r.status == 201 && r.header("docker-content-digest").as_deref() == Some(digest.as_ref());
                if !ok {
                    failures.lock().unwrap().push(format!("client {i}: {}", r.describe()));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "concurrent pushes failed:\n{}", failures.join("\n\n"));
    assert_blob(&app, &repo, &digest, &data);
    // A manifest can use it, and it is still intact after that.
    let config = to_bytes(&json!({"t": unique_token()}));
    push_blob(&app, &repo, &config);
    let m = image_manifest(&config, std::slice::from_ref(&data), json!({}));
    push_manifest(&app, &repo, "v1", OCI_MANIFEST, &m);
    let r = app.req(Method::GET, &format!("/v2/{repo}/blobs/{digest}")).send_streaming();
    let (n, got) = drain_hash(r);
    assert_eq!((n, got), (data.len() as u64, digest));
}

fn with_query_digest(digest: &str) -> String {
    format!("digest={}", qenc(digest))
}

/// Two clients PATCH the same first chunk of one session at once: one wins
/// (202), the other is out of order (416), and the session holds exactly
/// the winner's bytes.
fn racing_patches_on_one_session(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("concurrency/session");
    for round in 0..3 {
        let a = unique_bytes(4 * MIB);
        let c = unique_bytes(4 * MIB);
        let loc = start_upload(&app, &repo);
        let barrier = Barrier::new(2);
        let (ra, rc) = std::thread::scope(|s| {
            let ta = s.spawn(|| {
                barrier.wait();
                patch_chunk(&app, &loc, 0, a.clone())
            });
            let tc = s.spawn(|| {
                barrier.wait();
                patch_chunk(&app, &loc, 0, c.clone())
            });
            (ta.join().unwrap(), tc.join().unwrap())
        });
        let statuses = (ra.status, rc.status);
        let winner = match statuses {
            (202, 416) => &a,
            (416, 202) => &c,
            _ => panic!(
                "round {round}: racing PATCHes must give one 202 and one 416, got {statuses:?}\n{}\n{}",
                ra.describe(),
                rc.describe()
            ),
        };
        let s = app.get(&loc);
        s.expect(204).expect_header("range", &format!("0-{}", 4 * MIB - 1));
        let loc = s.header("location").unwrap_or(loc);
        let digest = sha256_digest(winner);
        finish_upload(&app, &loc, &digest, Vec::new()).expect(201);
        assert_blob(&app, &repo, &digest, winner);
    }
}

/// Eight clients push different manifests to the same tag at the same
/// moment, three times over: all succeed, and the tag ends on one of them.
fn racing_manifest_pushes_to_one_tag(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("concurrency/tag");
    let images: Vec<Image> = (0..8).map(|_| push_image(&app, &repo, None, 1)).collect();
    for round in 0..3 {
        let barrier = Barrier::new(images.len());
        let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for img in &images {
                let (app, repo, barrier, failures) = (&app, &repo, &barrier, &failures);
                s.spawn(move || {
                    barrier.wait();
                    let r = put_manifest(app, repo, "race", OCI_MANIFEST, &img.manifest);
                    if r.status != 201 || r.header("docker-content-digest").as_deref() != Some(img.digest.as_str()) {
                        failures.lock().unwrap().push(r.describe());
                    }
                });
            }
        });
        let failures = failures.into_inner().unwrap();
        assert!(failures.is_empty(), "round {round}: racing tag pushes failed:\n{}", failures.join("\n\n"));
        let g = app.get(&format!("/v2/{repo}/manifests/race"));
        g.expect(200);
        let winner = images
            .iter()
            .find(|i| i.manifest == g.body)
            .unwrap_or_else(|| panic!("tag `race` serves bytes of none of the pushed manifests:\n{}", g.describe()));
        assert_manifest(&app, &repo, "race", OCI_MANIFEST, &winner.manifest);
        let t = app.get(&format!("/v2/{repo}/tags/list"));
        t.expect(200);
        assert_eq!(t.json()["tags"], json!(["race"]), "{}", t.describe());
    }
    for img in &images {
        assert_manifest(&app, &repo, &img.digest, OCI_MANIFEST, &img.manifest);
    }
}

/// Eight clients each push ten tags (and a manifest each) at once; every
/// write lands and the tag list is complete and sorted.
fn many_tags_pushed_concurrently(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("concurrency/tags");
    let images: Vec<Image> = (0..8).map(|_| push_image(&app, &repo, None, 1)).collect();
    let barrier = Barrier::new(images.len());
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for (i, img) in images.iter().enumerate() {
            let (app, repo, barrier, failures) = (&app, &repo, &barrier, &failures);
            s.spawn(move || {
                barrier.wait();
                for k in 0..10 {
                    let tag = format!("c{i}-t{k:02}");
                    let r = put_manifest(app, repo, &tag, OCI_MANIFEST, &img.manifest);
                    if r.status != 201 {
                        failures.lock().unwrap().push(r.describe());
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "concurrent tag pushes failed:\n{}", failures.join("\n\n"));
    let mut want: Vec<String> = (0..8).flat_map(|i| (0..10).map(move |k| format!("c{i}-t{k:02}"))).collect();
    want.sort();
    let t = app.get(&format!("/v2/{repo}/tags/list?n=1000"));
    t.expect(200);
    let got: Vec<String> = match &t.json()["tags"] {
        Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_string()).collect(),
        other => panic!("tags: {other}"),
    };
    assert_eq!(got, want);
    for (i, img) in images.iter().enumerate() {
        assert_manifest(&app, &repo, &format!("c{i}-t07"), OCI_MANIFEST, &img.manifest);
    }
}
