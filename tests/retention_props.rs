//! Property test over random histories of pushes (images and multi-arch
//! indexes), tag moves, promotions, rollbacks, retention runs, GC runs (zero
//! grace) and client DELETEs of blobs, manifests, tags and index children,
//! checked through the HTTP API after every step: every stage's current
//! release and rollback window pull completely, and so does every tag that
//! is left unless a client deleted part of its image; at the end, rolling
//! back to each release of every window succeeds and pulls.

mod common;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::Method;
use serde_json::{json, Value};

const STAGES: [&str; 3] = ["test", "preprod", "prod"];
const ROLLBACK_DEPTH: usize = 1;

#[derive(Debug, Clone)]
enum Op {
    Push,
    /// Points tag `m{tag}` at image `image` (modulo images pushed so far).
    MoveTag(usize, usize),
    Promote(usize, usize),
    Rollback(usize),
    Retention,
    Gc,
    /// An index over images `a` and `b`.
    PushIndex(usize, usize),
    /// A client deletes blob `blob` (config or a layer) of image `image`.
    DeleteBlob(usize, usize),
    /// A client deletes pushed manifest `n` (an image, or an index) by digest.
    DeleteManifest(usize),
    /// A client deletes child `child` of index `index`.
    DeleteIndexChild(usize, usize),
    /// A client deletes tag `m{t}`.
    DeleteTag(usize),
    /// A client tries to delete part of a release in stage `s`'s rollback
    /// window: its manifest, a child, or a blob (`part`); always refused.
    DeleteReleased(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Push),
        2 => (0usize..3, 0usize..8).prop_map(|(t, i)| Op::MoveTag(t, i)),
        4 => (0usize..8, 0usize..3).prop_map(|(i, s)| Op::Promote(i, s)),
        1 => (0usize..3).prop_map(Op::Rollback),
        2 => Just(Op::Retention),
        2 => Just(Op::Gc),
        1 => (0usize..8, 0usize..8).prop_map(|(a, b)| Op::PushIndex(a, b)),
        2 => (0usize..8, 0usize..3).prop_map(|(i, b)| Op::DeleteBlob(i, b)),
        2 => (0usize..12).prop_map(Op::DeleteManifest),
        1 => (0usize..4, 0usize..2).prop_map(|(i, c)| Op::DeleteIndexChild(i, c)),
        1 => (0usize..3).prop_map(Op::DeleteTag),
        2 => (0usize..3, 0usize..6).prop_map(|(s, p)| Op::DeleteReleased(s, p)),
    ]
}

fn releases(app: &TestApp, repo: &str, stage: &str) -> Vec<Value> {
    let r = app.get(&format!("/api/v1/repositories/{repo}/stages/{stage}/releases?n=1000"));
    r.expect(200);
    r.json()["releases"].as_array().unwrap().clone()
}

#[track_caller]
fn assert_pulls(app: &TestApp, repo: &str, reference: &str) {
    let accept = format!("{OCI_MANIFEST}, {OCI_INDEX}");
    let m = app.req(Method::GET, &format!("/v2/{repo}/manifests/{reference}")).header("Accept", &accept).send();
    assert_eq!(m.status, 200, "{repo}:{reference} no longer pulls:\n{}", m.describe());
    let manifest = m.json();
    if let Some(children) = manifest["manifests"].as_array() {
        for child in children {
            assert_pulls(app, repo, child["digest"].as_str().unwrap());
        }
        return;
    }
    let blobs = manifest["layers"].as_array().unwrap().iter().chain(std::iter::once(&manifest["config"]));
    for b in blobs {
        let d = b["digest"].as_str().unwrap();
        let r = app.get(&format!("/v2/{repo}/blobs/{d}"));
        assert_eq!(r.status, 200, "blob {d} of {repo}:{reference} is gone:\n{}", r.describe());
        assert_eq!(sha256_digest(&r.body), d);
    }
}

fn window(app: &TestApp, repo: &str, stage: &str) -> Vec<Value> {
    releases(app, repo, stage).into_iter().take(ROLLBACK_DEPTH + 1).collect()
}

/// What the history pushed: images, and indexes over two of them.
struct Pushed {
    digest: String,
    /// For an image: the manifest and its blobs; for an index: its body.
    image: Option<Image>,
    index: Option<(Vec<u8>, [String; 2])>,
}

fn check(app: &TestApp, repo: &str, damaged: &std::collections::HashSet<String>) {
    for stage in STAGES {
        for r in window(app, repo, stage) {
            assert_pulls(app, repo, r["digest"].as_str().unwrap());
        }
    }
    let tags = app.get(&format!("/v2/{repo}/tags/list?n=1000"));
    if tags.status == 200 {
        for t in tags.json()["tags"].as_array().into_iter().flatten() {
            let tag = t.as_str().unwrap();
            let digest = app.head(&format!("/v2/{repo}/manifests/{tag}")).must_header("docker-content-digest");
            if !damaged.contains(&digest) {
                assert_pulls(app, repo, tag);
            }
        }
    }
}

/// Client DELETEs the histories made: (accepted, refused by protection).
static DELETES: [std::sync::atomic::AtomicUsize; 2] = [std::sync::atomic::AtomicUsize::new(0), std::sync::atomic::AtomicUsize::new(0)];

/// A client DELETE: accepted (202), refused by the protection rule (403),
/// or of something already gone (404).
#[track_caller]
fn client_delete(app: &TestApp, path: &str) -> bool {
    let r = app.delete(path);
    assert!(matches!(r.status, 202 | 403 | 404), "{}", r.describe());
    if r.status == 403 {
        r.expect_error(403, &["DENIED"]);
        assert!(r.text().contains("needed by") || r.text().contains("stage tag"), "{}", r.describe());
        DELETES[1].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    } else if r.status == 202 {
        DELETES[0].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    r.status == 202
}

fn run_history(app: &TestApp, ops: &[Op]) {
    let repo = repo("rprop");
    let first = push_image(app, &repo, Some("i0"), 2);
    // Every history starts with a release, so the window is never empty.
    let r = app
        .req(Method::POST, &format!("/api/v1/repositories/{repo}/promotions"))
        .header("Content-Type", "application/json")
        .body(json!({"reference": "i0", "stage": "test"}).to_string())
        .send();
    r.expect(201);
    let mut pushed: Vec<Pushed> = vec![Pushed { digest: first.digest.clone(), image: Some(first), index: None }];
    // Digests a client deleted part of: their tags may no longer pull.
    let mut damaged = std::collections::HashSet::new();
    let images = |pushed: &Vec<Pushed>| -> Vec<usize> { (0..pushed.len()).filter(|&i| pushed[i].image.is_some()).collect() };
    let indexes = |pushed: &Vec<Pushed>| -> Vec<usize> { (0..pushed.len()).filter(|&i| pushed[i].index.is_some()).collect() };
    for op in ops {
        match op {
            Op::Push => {
                let image = push_image(app, &repo, Some(&format!("i{}", pushed.len())), 2);
                pushed.push(Pushed { digest: image.digest.clone(), image: Some(image), index: None });
            }
            Op::PushIndex(a, b) => {
                let all = images(&pushed);
                let (a, b) = (&pushed[all[a % all.len()]], &pushed[all[b % all.len()]]);
                let children = [a.digest.clone(), b.digest.clone()];
                let descriptors: Vec<Value> = [a, b]
                    .iter()
                    .zip(["amd64", "arm64"])
                    .map(|(p, arch)| {
                        let mut d = p.image.as_ref().unwrap().descriptor();
                        d["platform"] = json!({"os": "linux", "architecture": arch});
                        d
                    })
                    .collect();
                let body = to_bytes(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}));
                let r = put_manifest(app, &repo, &format!("x{}", pushed.len()), OCI_INDEX, &body);
                if r.status == 201 {
                    let digest = sha256_digest(&body);
                    // An index over an image a client damaged is damaged too.
                    if children.iter().any(|c| damaged.contains(c)) {
                        damaged.insert(digest.clone());
                    }
                    pushed.push(Pushed { digest, image: None, index: Some((body, children)) });
                } else {
                    // A child was cleaned up or deleted already.
                    r.expect_error(400, &["MANIFEST_BLOB_UNKNOWN"]);
                }
            }
            Op::MoveTag(t, i) => {
                let all = images(&pushed);
                let img = pushed[all[i % all.len()]].image.as_ref().unwrap();
                // The image may have been cleaned up already: then the PUT is
                // refused for its missing blobs, and that is fine.
                let r = put_manifest(app, &repo, &format!("m{t}"), OCI_MANIFEST, &img.manifest);
                if r.status != 201 {
                    r.expect_error(400, &["MANIFEST_BLOB_UNKNOWN"]);
                }
            }
            Op::Promote(i, s) => {
                let digest = &pushed[i % pushed.len()].digest;
                let r = app
                    .req(Method::POST, &format!("/api/v1/repositories/{repo}/promotions"))
                    .header("Content-Type", "application/json")
                    .body(json!({"reference": digest, "stage": STAGES[*s]}).to_string())
                    .send();
                assert!(matches!(r.status, 200 | 201 | 404 | 409), "{}", r.describe());
            }
            Op::Rollback(s) => {
                let r = app.post(&format!("/api/v1/repositories/{repo}/stages/{}/rollback", STAGES[*s]));
                assert!(matches!(r.status, 201 | 409), "{}", r.describe());
            }
            Op::Retention => {
                std::thread::sleep(std::time::Duration::from_millis(2));
                app.post("/api/v1/retention/runs").expect(200);
            }
            Op::Gc => {
                std::thread::sleep(std::time::Duration::from_millis(2));
                app.post("/api/v1/gc/runs").expect(200);
            }
            Op::DeleteBlob(i, b) => {
                let all = images(&pushed);
                let image = pushed[all[i % all.len()]].image.as_ref().unwrap();
                let blobs: Vec<&String> = std::iter::once(&image.config_digest).chain(&image.layer_digests).collect();
                if client_delete(app, &format!("/v2/{repo}/blobs/{}", blobs[b % blobs.len()])) {
                    damage(&pushed, &mut damaged, &image.digest.clone());
                }
            }
            Op::DeleteManifest(n) => {
                let digest = pushed[n % pushed.len()].digest.clone();
                if client_delete(app, &format!("/v2/{repo}/manifests/{digest}")) {
                    damage(&pushed, &mut damaged, &digest);
                }
            }
            Op::DeleteIndexChild(i, c) => {
                let all = indexes(&pushed);
                if let Some(&index) = all.get(i % all.len().max(1)) {
                    let child = pushed[index].index.as_ref().unwrap().1[c % 2].clone();
                    if client_delete(app, &format!("/v2/{repo}/manifests/{child}")) {
                        damage(&pushed, &mut damaged, &child);
                    }
                }
            }
            Op::DeleteTag(t) => {
                client_delete(app, &format!("/v2/{repo}/manifests/m{t}"));
            }
            Op::DeleteReleased(s, part) => try_delete_released(app, &repo, STAGES[*s], *part),
        }
        check(app, &repo, &damaged);
    }
    // No part of a release in a window can be deleted, whatever the history;
    // a layer of every other image can.
    for stage in STAGES {
        for part in 0..3 {
            try_delete_released(app, &repo, stage, part);
        }
    }
    for p in &pushed {
        if let Some(image) = &p.image {
            if client_delete(app, &format!("/v2/{repo}/blobs/{}", image.layer_digests[0])) {
                damage(&pushed, &mut damaged, &image.digest);
            }
        }
    }
    check(app, &repo, &damaged);
    // Every release in every window is still a working rollback target.
    for stage in STAGES {
        for target in window(app, &repo, stage).iter().skip(1) {
            let seq = target["sequence"].as_i64().unwrap();
            let r = app
                .req(Method::POST, &format!("/api/v1/repositories/{repo}/stages/{stage}/rollback"))
                .header("Content-Type", "application/json")
                .body(json!({"to_sequence": seq}).to_string())
                .send();
            r.expect(201);
            assert_pulls(app, &repo, stage);
        }
    }
}

/// Tries to delete part of a release in `stage`'s rollback window (its
/// manifest, a child, or a blob, as `part` picks) and asserts the refusal.
fn try_delete_released(app: &TestApp, repo: &str, stage: &str, part: usize) {
    let releases = window(app, repo, stage);
    let Some(release) = releases.get(part % releases.len().max(1)) else { return };
    let digest = release["digest"].as_str().unwrap();
    let accept = format!("{OCI_MANIFEST}, {OCI_INDEX}");
    let manifest = app.req(Method::GET, &format!("/v2/{repo}/manifests/{digest}")).header("Accept", &accept).send().json();
    let target = match (part % 3, manifest["manifests"].as_array()) {
        (0, _) => format!("manifests/{digest}"),
        (1, Some(children)) => format!("manifests/{}", children[0]["digest"].as_str().unwrap()),
        (_, Some(children)) => {
            let child = children[children.len() - 1]["digest"].as_str().unwrap();
            let m = app.req(Method::GET, &format!("/v2/{repo}/manifests/{child}")).header("Accept", OCI_MANIFEST).send().json();
            format!("blobs/{}", m["config"]["digest"].as_str().unwrap())
        }
        (1, None) => format!("blobs/{}", manifest["config"]["digest"].as_str().unwrap()),
        (_, None) => format!("blobs/{}", manifest["layers"][0]["digest"].as_str().unwrap()),
    };
    let r = app.delete(&format!("/v2/{repo}/{target}"));
    r.expect_error(403, &["DENIED"]);
    DELETES[1].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Marks `digest` and every index over it as damaged.
fn damage(pushed: &[Pushed], damaged: &mut std::collections::HashSet<String>, digest: &str) {
    damaged.insert(digest.to_owned());
    for p in pushed {
        if p.index.as_ref().is_some_and(|(_, children)| children.iter().any(|c| c == digest)) {
            damaged.insert(p.digest.clone());
        }
    }
}

#[test]
fn random_histories_with_cleanup_never_strand_a_release_or_a_kept_tag() {
    let app = TestApp::builder()
        .env("WHARF_RETENTION__POLICIES", r#"[{name="p", repositories="**", keep_last=2, delete_untagged_after="1ms"}]"#)
        .env("WHARF_GC__GRACE", "0s")
        .env("WHARF_GOVERNANCE__ROLLBACK_DEPTH", ROLLBACK_DEPTH.to_string())
        .start();
    let mut runner = TestRunner::new(Config { cases: 12, failure_persistence: None, ..Config::default() });
    runner
        .run(&proptest::collection::vec(op(), 1..18), |ops| {
            run_history(&app, &ops);
            Ok(())
        })
        .unwrap();
    let [accepted, refused] = DELETES.each_ref().map(|n| n.load(std::sync::atomic::Ordering::Relaxed));
    eprintln!("client deletes: {accepted} accepted, {refused} refused by the protection rule");
    assert!(accepted > 0 && refused > 0, "the histories must exercise both outcomes: {accepted} / {refused}");
}
