//! Property test over random histories of pushes, promotions and rollbacks,
//! checked through the HTTP API after every step: each stage tag equals the
//! newest release's digest, and every release's manifest and blobs pull.

mod common;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::Method;
use serde_json::{json, Value};

const STAGES: [&str; 3] = ["test", "preprod", "prod"];

#[derive(Debug, Clone)]
enum Op {
    Push,
    /// Image index (modulo images pushed so far), stage index.
    Promote(usize, usize),
    /// Stage index, and an optional sequence to restore.
    Rollback(usize, Option<i64>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Push),
        5 => (0usize..8, 0usize..3).prop_map(|(i, s)| Op::Promote(i, s)),
        2 => (0usize..3, proptest::option::of(1i64..6)).prop_map(|(s, n)| Op::Rollback(s, n)),
    ]
}

fn releases(app: &TestApp, repo: &str, stage: &str) -> Vec<Value> {
    let r = app.get(&format!("/api/v1/repositories/{repo}/stages/{stage}/releases?n=1000"));
    r.expect(200);
    r.json()["releases"].as_array().unwrap().clone()
}

/// The manifest and every blob it references can be pulled.
fn assert_pullable(app: &TestApp, repo: &str, digest: &str) {
    let m = app.get(&format!("/v2/{repo}/manifests/{digest}"));
    m.expect(200).expect_header("docker-content-digest", digest);
    let manifest = m.json();
    let mut blobs = vec![manifest["config"]["digest"].as_str().unwrap().to_owned()];
    blobs.extend(manifest["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_owned()));
    for b in blobs {
        let r = app.get(&format!("/v2/{repo}/blobs/{b}"));
        r.expect(200);
        assert_eq!(sha256_digest(&r.body), b, "blob bytes match their digest");
    }
}

fn check_invariants(app: &TestApp, repo: &str) {
    for stage in STAGES {
        let history = releases(app, repo, stage);
        let head = app.head(&format!("/v2/{repo}/manifests/{stage}"));
        match history.first() {
            None => assert_eq!(head.status, 404, "{stage} has no release but its tag resolves"),
            Some(newest) => {
                head.expect(200).expect_header("docker-content-digest", newest["digest"].as_str().unwrap());
                let seqs: Vec<i64> = history.iter().map(|r| r["sequence"].as_i64().unwrap()).collect();
                let expected: Vec<i64> = (1..=seqs.len() as i64).rev().collect();
                assert_eq!(seqs, expected, "{stage}: sequences are gapless and newest first");
            }
        }
        for release in &history {
            assert_pullable(app, repo, release["digest"].as_str().unwrap());
        }
    }
}

fn run_history(app: &TestApp, ops: &[Op]) {
    let repo = repo("prop");
    // The repository exists from its first push on.
    let mut images: Vec<String> = vec![push_image(app, &repo, Some("i0"), 2).digest];
    for op in ops {
        match op {
            Op::Push => images.push(push_image(app, &repo, Some(&format!("i{}", images.len())), 2).digest),
            Op::Promote(i, s) => {
                let digest = &images[i % images.len()];
                let before = releases(app, &repo, STAGES[*s]);
                let r = app
                    .req(Method::POST, &format!("/api/v1/repositories/{repo}/promotions"))
                    .header("Content-Type", "application/json")
                    .body(json!({"reference": digest, "stage": STAGES[*s]}).to_string())
                    .send();
                // Allowed exactly when the digest is in the previous stage's
                // history; promoting the current release again changes nothing.
                let allowed = *s == 0 || releases(app, &repo, STAGES[s - 1]).iter().any(|r| r["digest"] == *digest);
                let current = before.first().is_some_and(|r| r["digest"] == *digest);
                let expected = match (allowed, current) {
                    (false, _) => 409,
                    (true, true) => 200,
                    (true, false) => 201,
                };
                assert_eq!(r.status, expected, "{}", r.describe());
                if expected == 200 {
                    assert_eq!(r.json()["unchanged"], true, "{}", r.describe());
                    assert_eq!(releases(app, &repo, STAGES[*s]).len(), before.len(), "a repeated promotion adds no release");
                }
            }
            Op::Rollback(s, to) => {
                let stage = STAGES[*s];
                let before = releases(app, &repo, stage);
                let mut req = app.req(Method::POST, &format!("/api/v1/repositories/{repo}/stages/{stage}/rollback"));
                if let Some(n) = to {
                    req = req.header("Content-Type", "application/json").body(json!({"to_sequence": n}).to_string());
                }
                let r = req.send();
                if r.status == 201 {
                    let restored = r.json()["digest"].as_str().unwrap().to_owned();
                    assert!(before.iter().any(|x| x["digest"] == restored), "rollback restored a digest never released to {stage}");
                } else {
                    r.expect_error(409, &["ROLLBACK_DENIED"]);
                }
            }
        }
        check_invariants(app, &repo);
    }
}

#[test]
fn random_histories_keep_stage_tags_and_releases_consistent() {
    let app = TestApp::start();
    let mut runner = TestRunner::new(Config { cases: 16, failure_persistence: None, ..Config::default() });
    runner
        .run(&proptest::collection::vec(op(), 1..20), |ops| {
            run_history(&app, &ops);
            Ok(())
        })
        .unwrap();
}
