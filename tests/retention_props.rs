//! Property test over random histories of pushes, tag moves, promotions,
//! rollbacks, retention runs and GC runs (zero grace), checked through the
//! HTTP API after every step: every stage's current release and rollback
//! window, and every tag that is left, pull completely; at the end, rolling
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
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Push),
        2 => (0usize..3, 0usize..8).prop_map(|(t, i)| Op::MoveTag(t, i)),
        4 => (0usize..8, 0usize..3).prop_map(|(i, s)| Op::Promote(i, s)),
        1 => (0usize..3).prop_map(Op::Rollback),
        2 => Just(Op::Retention),
        2 => Just(Op::Gc),
    ]
}

fn releases(app: &TestApp, repo: &str, stage: &str) -> Vec<Value> {
    let r = app.get(&format!("/api/v1/repositories/{repo}/stages/{stage}/releases?n=1000"));
    r.expect(200);
    r.json()["releases"].as_array().unwrap().clone()
}

#[track_caller]
fn assert_pulls(app: &TestApp, repo: &str, reference: &str) {
    let m = app.req(Method::GET, &format!("/v2/{repo}/manifests/{reference}")).header("Accept", OCI_MANIFEST).send();
    assert_eq!(m.status, 200, "{repo}:{reference} no longer pulls:\n{}", m.describe());
    let manifest = m.json();
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

fn check(app: &TestApp, repo: &str) {
    for stage in STAGES {
        for r in window(app, repo, stage) {
            assert_pulls(app, repo, r["digest"].as_str().unwrap());
        }
    }
    let tags = app.get(&format!("/v2/{repo}/tags/list?n=1000"));
    if tags.status == 200 {
        for t in tags.json()["tags"].as_array().into_iter().flatten() {
            assert_pulls(app, repo, t.as_str().unwrap());
        }
    }
}

fn run_history(app: &TestApp, ops: &[Op]) {
    let repo = repo("rprop");
    let mut images: Vec<Image> = vec![push_image(app, &repo, Some("i0"), 2)];
    for op in ops {
        match op {
            Op::Push => images.push(push_image(app, &repo, Some(&format!("i{}", images.len())), 2)),
            Op::MoveTag(t, i) => {
                let img = &images[i % images.len()];
                // The image may have been cleaned up already: then the PUT is
                // refused for its missing blobs, and that is fine.
                let r = put_manifest(app, &repo, &format!("m{t}"), OCI_MANIFEST, &img.manifest);
                if r.status != 201 {
                    r.expect_error(400, &["MANIFEST_BLOB_UNKNOWN"]);
                }
            }
            Op::Promote(i, s) => {
                let digest = &images[i % images.len()].digest;
                let r = app
                    .req(Method::POST, &format!("/api/v1/repositories/{repo}/promotions"))
                    .header("Content-Type", "application/json")
                    .body(json!({"reference": digest, "stage": STAGES[*s]}).to_string())
                    .send();
                assert!(matches!(r.status, 201 | 404 | 409), "{}", r.describe());
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
        }
        check(app, &repo);
    }
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
}
