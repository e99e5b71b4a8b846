//! Version governance over HTTP: promotion through stages, gates, rollback,
//! history, stage and immutable tags, and the audit log.

mod common;

use std::process::Command;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

/// Pushes an image whose config carries `labels` and `user`, tagged `tag`.
fn push_labeled(app: &TestApp, repo: &str, tag: &str, labels: Value, user: &str) -> String {
    let config = to_bytes(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": labels, "User": user},
        "rootfs": {"type": "layers", "diff_ids": []},
        "nonce": unique_token(),
    }));
    let layer = unique_bytes(700);
    push_blob(app, repo, &config);
    push_blob(app, repo, &layer);
    push_manifest(app, repo, tag, OCI_MANIFEST, &image_manifest(&config, &[layer], json!({})))
}

fn promote(app: &TestApp, repo: &str, reference: &str, stage: &str) -> Resp {
    app.req(Method::POST, &format!("/api/v1/repositories/{repo}/promotions"))
        .header("Content-Type", "application/json")
        .body(json!({"reference": reference, "stage": stage, "version": "1.0", "note": "ship it"}).to_string())
        .send()
}

#[track_caller]
fn promote_ok(app: &TestApp, repo: &str, reference: &str, stage: &str) -> Value {
    let r = promote(app, repo, reference, stage);
    r.expect(201);
    r.json()
}

fn rollback(app: &TestApp, repo: &str, stage: &str, to: Option<i64>) -> Resp {
    let body = match to {
        Some(n) => json!({"to_sequence": n}).to_string(),
        None => String::new(),
    };
    let mut req = app.req(Method::POST, &format!("/api/v1/repositories/{repo}/stages/{stage}/rollback"));
    if to.is_some() {
        req = req.header("Content-Type", "application/json");
    }
    req.body(body).send()
}

fn stage_digest(app: &TestApp, repo: &str, stage: &str) -> Option<String> {
    let r = app.head(&format!("/v2/{repo}/manifests/{stage}"));
    (r.status == 200).then(|| r.must_header("docker-content-digest"))
}

fn failed_gates(r: &Resp) -> Vec<String> {
    r.expect_error(409, &["PROMOTION_DENIED"]);
    r.json()["errors"][0]["detail"]["failed_gates"]
        .as_array()
        .expect("failed_gates list")
        .iter()
        .map(|g| g.as_str().unwrap().to_owned())
        .collect()
}

fn audit(app: &TestApp, query: &str) -> Vec<Value> {
    let r = app.get(&format!("/api/v1/audit?{query}"));
    r.expect(200);
    r.json()["entries"].as_array().unwrap().clone()
}

#[test]
fn full_path_to_prod_and_stage_tags_resolve() {
    let app = TestApp::start();
    let repo = repo("gov");
    let digest = push_labeled(&app, &repo, "v1", json!({}), "app");

    for (i, stage) in ["test", "preprod", "prod"].iter().enumerate() {
        let release = promote_ok(&app, &repo, "v1", stage);
        assert_eq!(release["stage"], *stage);
        assert_eq!(release["sequence"], 1);
        assert_eq!(release["digest"], digest);
        assert_eq!(release["reason"], "promote");
        assert_eq!(release["version"], "1.0");
        assert_eq!(release["note"], "ship it");
        assert_eq!(release["actor"], "anonymous");
        assert!(release["rolled_back_from"].is_null());
        assert_eq!(stage_digest(&app, &repo, stage).as_deref(), Some(digest.as_str()), "after promotion {i}");
    }
    // The stage tag serves the promoted manifest to any client.
    let m = app.get(&format!("/v2/{repo}/manifests/prod"));
    m.expect(200).expect_header("docker-content-digest", &digest);

    let stages = app.get(&format!("/api/v1/repositories/{repo}/stages"));
    stages.expect(200);
    let list = stages.json()["stages"].as_array().unwrap().clone();
    assert_eq!(list.len(), 3);
    for s in &list {
        assert_eq!(s["current"]["digest"], digest);
    }
}

#[test]
fn skipping_a_stage_and_unknown_stages_are_refused() {
    let app = TestApp::start();
    let repo = repo("gov");
    let digest = push_labeled(&app, &repo, "v1", json!({}), "app");
    let gates = failed_gates(&promote(&app, &repo, "v1", "prod"));
    assert_eq!(gates.len(), 1, "{gates:?}");
    assert!(gates[0].starts_with("order:") && gates[0].contains("preprod"), "{gates:?}");
    promote_ok(&app, &repo, &digest, "test");
    let gates = failed_gates(&promote(&app, &repo, &digest, "prod"));
    assert!(gates[0].contains("preprod"), "{gates:?}");
    assert_eq!(stage_digest(&app, &repo, "prod"), None, "a refused promotion moved the stage tag");

    promote(&app, &repo, "v1", "staging").expect_error(404, &["STAGE_UNKNOWN"]);
    promote(&app, &repo, "nope", "test").expect_error(404, &["MANIFEST_UNKNOWN"]);
    promote(&app, &repo, "sha256:abc", "test").expect_error(400, &["DIGEST_INVALID"]);
    app.req(Method::POST, &format!("/api/v1/repositories/{repo}/promotions"))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .expect_error(400, &["INVALID_REQUEST"]);
    app.req(Method::POST, &format!("/api/v1/repositories/{repo}/promotions"))
        .header("Content-Type", "application/json")
        .body(json!({"reference": "v1", "stage": "test", "version": "x".repeat(500)}).to_string())
        .send()
        .expect_error(400, &["INVALID_REQUEST"]);

    let denied = audit(&app, &format!("repository={repo}&action=promotion.denied"));
    assert_eq!(denied.len(), 2, "every refused promotion is audited");
    assert!(denied[0]["details"]["failed_gates"][0].as_str().unwrap().starts_with("order:"));
}

#[test]
fn each_gate_refuses_with_its_reason() {
    let app = TestApp::builder()
        .env("WHARF_GOVERNANCE__GATES__PREPROD__MIN_SOAK", "1h")
        .env("WHARF_GOVERNANCE__GATES__PROD__REQUIRED_LABELS", r#"["org.opencontainers.image.revision"]"#)
        .env("WHARF_GOVERNANCE__GATES__PROD__NON_ROOT", "true")
        .env("WHARF_GOVERNANCE__GATES__TEST__SEPARATION_OF_DUTIES", "true")
        .start();
    let repo = repo("gates");
    push_labeled(&app, &repo, "root", json!({}), "root");
    // The same (anonymous) account pushed and promotes: separation of duties fails.
    let gates = failed_gates(&promote(&app, &repo, "root", "test"));
    assert_eq!(gates.len(), 1, "{gates:?}");
    assert!(gates[0].starts_with("separation_of_duties"), "{gates:?}");

    // Without that gate on `test`, the soak gate of `preprod` refuses a fresh release.
    let app2 = TestApp::builder()
        .env("WHARF_GOVERNANCE__GATES__PREPROD__MIN_SOAK", "1h")
        .env("WHARF_GOVERNANCE__GATES__PROD__REQUIRED_LABELS", r#"["org.opencontainers.image.revision"]"#)
        .env("WHARF_GOVERNANCE__GATES__PROD__NON_ROOT", "true")
        .start();
    let repo = common::repo("gates");
    push_labeled(&app2, &repo, "root", json!({}), "root");
    promote_ok(&app2, &repo, "root", "test");
    let gates = failed_gates(&promote(&app2, &repo, "root", "preprod"));
    assert_eq!(gates.len(), 1, "{gates:?}");
    assert!(gates[0].starts_with("min_soak") && gates[0].contains("1h"), "{gates:?}");

    // Soak satisfied with 0s on a third server; prod's label and non-root gates refuse root.
    let app3 = TestApp::builder()
        .env("WHARF_GOVERNANCE__GATES__PREPROD__MIN_SOAK", "0s")
        .env("WHARF_GOVERNANCE__GATES__PROD__REQUIRED_LABELS", r#"["org.opencontainers.image.revision"]"#)
        .env("WHARF_GOVERNANCE__GATES__PROD__NON_ROOT", "true")
        .start();
    let repo = common::repo("gates");
    let bad = push_labeled(&app3, &repo, "bad", json!({}), "0:0");
    let good = push_labeled(&app3, &repo, "good", json!({"org.opencontainers.image.revision": "abc123"}), "1000:1000");
    for d in [&bad, &good] {
        promote_ok(&app3, &repo, d, "test");
        promote_ok(&app3, &repo, d, "preprod");
    }
    let gates = failed_gates(&promote(&app3, &repo, &bad, "prod"));
    assert_eq!(gates.len(), 2, "{gates:?}");
    assert!(gates.iter().any(|g| g.starts_with("required_labels") && g.contains("org.opencontainers.image.revision")), "{gates:?}");
    assert!(gates.iter().any(|g| g.starts_with("non_root")), "{gates:?}");
    let release = promote_ok(&app3, &repo, &good, "prod");
    assert_eq!(release["digest"], good);
    assert_eq!(stage_digest(&app3, &repo, "prod").as_deref(), Some(good.as_str()));
}

#[test]
fn gates_check_every_platform_of_an_index() {
    let app = TestApp::builder().env("WHARF_GOVERNANCE__GATES__TEST__NON_ROOT", "true").start();
    let repo = repo("multi");
    let amd = push_labeled(&app, &repo, "amd", json!({}), "app");
    let arm = push_labeled(&app, &repo, "arm", json!({}), "");
    let manifest_size = |tag: &str| app.get(&format!("/v2/{repo}/manifests/{tag}")).body.len();
    let index = to_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd, "size": manifest_size("amd"), "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "digest": arm, "size": manifest_size("arm"), "platform": {"os": "linux", "architecture": "arm64"}},
        ],
    }));
    push_manifest(&app, &repo, "multi", OCI_INDEX, &index);
    let gates = failed_gates(&promote(&app, &repo, "multi", "test"));
    assert_eq!(gates, vec!["non_root: linux/arm64 runs as root".to_string()]);
}

#[test]
fn rollback_twice_walks_back_and_keeps_history() {
    let app = TestApp::start();
    let repo = repo("rb");
    let digests: Vec<String> = (0..3).map(|i| push_labeled(&app, &repo, &format!("v{i}"), json!({}), "app")).collect();
    for d in &digests {
        promote_ok(&app, &repo, d, "test");
    }
    assert_eq!(stage_digest(&app, &repo, "test").as_ref(), Some(&digests[2]));

    let first = rollback(&app, &repo, "test", None);
    first.expect(201);
    let first = first.json();
    assert_eq!(first["digest"], digests[1]);
    assert_eq!(first["reason"], "rollback");
    assert_eq!(first["sequence"], 4);
    assert_eq!(first["rolled_back_from"], 3);
    assert_eq!(stage_digest(&app, &repo, "test").as_ref(), Some(&digests[1]));

    let second = rollback(&app, &repo, "test", None);
    second.expect(201);
    assert_eq!(second.json()["digest"], digests[0], "a second rollback goes one step further back");
    assert_eq!(stage_digest(&app, &repo, "test").as_ref(), Some(&digests[0]));

    rollback(&app, &repo, "test", None).expect_error(409, &["ROLLBACK_DENIED"]);
    let explicit = rollback(&app, &repo, "test", Some(3));
    explicit.expect(201);
    assert_eq!(explicit.json()["digest"], digests[2]);
    rollback(&app, &repo, "test", Some(99)).expect_error(409, &["ROLLBACK_DENIED"]);
    rollback(&app, &repo, "prod", None).expect_error(409, &["ROLLBACK_DENIED"]);
    rollback(&app, &repo, "nope", None).expect_error(404, &["STAGE_UNKNOWN"]);

    // History: newest first, paginated with n/last and a Link header.
    let page = app.get(&format!("/api/v1/repositories/{repo}/stages/test/releases?n=4"));
    page.expect(200);
    let seqs: Vec<i64> = page.json()["releases"].as_array().unwrap().iter().map(|r| r["sequence"].as_i64().unwrap()).collect();
    assert_eq!(seqs, vec![6, 5, 4, 3]);
    let next = next_link(&page).expect("Link to the next page");
    let rest = app.get(&next);
    let seqs: Vec<i64> = rest.json()["releases"].as_array().unwrap().iter().map(|r| r["sequence"].as_i64().unwrap()).collect();
    assert_eq!(seqs, vec![2, 1]);

    // Every rollback target is still pullable, and cannot be deleted.
    for d in &digests {
        app.get(&format!("/v2/{repo}/manifests/{d}")).expect(200);
        app.delete(&format!("/v2/{repo}/manifests/{d}")).expect_error(403, &["DENIED"]);
    }
}

#[test]
fn concurrent_promotions_keep_a_consistent_history() {
    let app = TestApp::start();
    let repo = repo("race");
    let digests: Vec<String> = (0..12).map(|i| push_labeled(&app, &repo, &format!("c{i}"), json!({}), "app")).collect();
    std::thread::scope(|s| {
        for d in &digests {
            let (app, repo) = (&app, &repo);
            s.spawn(move || promote_ok(app, repo, d, "test"));
        }
    });
    let page = app.get(&format!("/api/v1/repositories/{repo}/stages/test/releases?n=100"));
    let releases = page.json()["releases"].as_array().unwrap().clone();
    let mut seqs: Vec<i64> = releases.iter().map(|r| r["sequence"].as_i64().unwrap()).collect();
    seqs.sort();
    assert_eq!(seqs, (1..=12).collect::<Vec<_>>(), "no lost or duplicated sequence numbers");
    let mut promoted: Vec<String> = releases.iter().map(|r| r["digest"].as_str().unwrap().to_owned()).collect();
    promoted.sort();
    let mut expected = digests.clone();
    expected.sort();
    assert_eq!(promoted, expected);
    assert_eq!(stage_digest(&app, &repo, "test").as_deref(), releases[0]["digest"].as_str(), "tag = newest release");
}

#[test]
fn stage_tags_move_only_by_promotion() {
    let app = TestApp::start();
    let repo = repo("stagetag");
    let digest = push_labeled(&app, &repo, "v1", json!({}), "app");
    let manifest = app.get(&format!("/v2/{repo}/manifests/v1")).body;
    put_manifest(&app, &repo, "prod", OCI_MANIFEST, &manifest).expect_error(403, &["DENIED"]);
    app.req(Method::PUT, &format!("/v2/{repo}/manifests/{digest}?tag=test"))
        .header("Content-Type", OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .expect_error(403, &["DENIED"]);
    assert_eq!(stage_digest(&app, &repo, "prod"), None);
    assert_eq!(stage_digest(&app, &repo, "test"), None);
    promote_ok(&app, &repo, "v1", "test");
    app.delete(&format!("/v2/{repo}/manifests/test")).expect_error(403, &["DENIED"]);
    assert_eq!(stage_digest(&app, &repo, "test").as_deref(), Some(digest.as_str()));
    let denied = audit(&app, &format!("repository={repo}&action=access.denied"));
    assert_eq!(denied.len(), 3, "{denied:?}");
    assert!(denied.iter().all(|d| d["details"]["reason"].as_str().unwrap().contains("stage")));
}

#[test]
fn immutable_tags_can_be_neither_moved_nor_deleted() {
    let app = TestApp::builder().env("WHARF_GOVERNANCE__IMMUTABLE_TAGS", r#"["^v[0-9]+\\.[0-9]+\\.[0-9]+$"]"#).start();
    let repo = repo("immutable");
    let first = push_labeled(&app, &repo, "v1.2.3", json!({}), "app");
    // Re-pushing the same content is fine; moving it is not.
    let manifest = app.get(&format!("/v2/{repo}/manifests/v1.2.3")).body;
    push_manifest(&app, &repo, "v1.2.3", OCI_MANIFEST, &manifest);
    let config = to_bytes(&json!({"other": unique_token()}));
    push_blob(&app, &repo, &config);
    let other = image_manifest(&config, &[], json!({}));
    put_manifest(&app, &repo, "v1.2.3", OCI_MANIFEST, &other).expect_error(403, &["DENIED"]);
    app.delete(&format!("/v2/{repo}/manifests/v1.2.3")).expect_error(403, &["DENIED"]);
    app.delete(&format!("/v2/{repo}/manifests/{first}")).expect_error(403, &["DENIED"]);
    assert_eq!(app.head(&format!("/v2/{repo}/manifests/v1.2.3")).must_header("docker-content-digest"), first);
    // A mutable tag still moves.
    push_manifest(&app, &repo, "latest", OCI_MANIFEST, &manifest);
    push_manifest(&app, &repo, "latest", OCI_MANIFEST, &other);
}

#[test]
fn tag_history_lists_every_digest() {
    let app = TestApp::start();
    let repo = repo("taghist");
    let a = push_labeled(&app, &repo, "latest", json!({}), "app");
    let b = push_labeled(&app, &repo, "latest", json!({}), "app");
    app.delete(&format!("/v2/{repo}/manifests/latest")).expect(202);
    let h = app.get(&format!("/api/v1/repositories/{repo}/tags/latest/history"));
    h.expect(200);
    let events: Vec<Value> = h.json()["history"].as_array().unwrap().clone();
    let digests: Vec<Value> = events.iter().map(|e| e["digest"].clone()).collect();
    assert_eq!(digests, vec![Value::Null, json!(b), json!(a)]);
    assert!(events.iter().all(|e| e["actor"] == "anonymous" && e["created_at"].is_string()));
    app.get(&format!("/api/v1/repositories/{repo}/tags/-bad/history")).expect_client_error(&["MANIFEST_INVALID"]);
}

#[test]
fn audit_log_records_changes_filters_and_verifies() {
    let app = TestApp::start();
    let repo = repo("audit");
    let d = push_labeled(&app, &repo, "v1", json!({}), "app");
    // Deleted before the promotion: a tag on a release is protected.
    app.delete(&format!("/v2/{repo}/manifests/v1")).expect(202);
    promote_ok(&app, &repo, &d, "test");

    let all = audit(&app, &format!("repository={repo}"));
    let actions: Vec<&str> = all.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["promotion", "tag.delete", "tag.create", "manifest.push"]);
    assert!(all.iter().all(|e| e["source"] == "127.0.0.1" && e["actor"] == "anonymous"));
    assert_eq!(all[0]["digest"], d);
    assert_eq!(all[0]["reference"], "test");

    // Filters and cursor pagination.
    assert_eq!(audit(&app, &format!("repository={repo}&action=promotion")).len(), 1);
    assert_eq!(audit(&app, &format!("repository={repo}&actor=nobody")).len(), 0);
    assert_eq!(audit(&app, &format!("repository={repo}&since=2999-01-01T00:00:00Z")).len(), 0);
    assert_eq!(audit(&app, &format!("repository={repo}&until=2000-01-01T00:00:00Z")).len(), 0);
    let page = app.get(&format!("/api/v1/audit?repository={repo}&n=3"));
    let cursor = page.json()["next_cursor"].as_i64().expect("cursor");
    let rest = audit(&app, &format!("repository={repo}&n=3&cursor={cursor}"));
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["action"], "manifest.push");
    app.get("/api/v1/audit?action=bogus").expect_error(400, &["INVALID_REQUEST"]);
    app.get("/api/v1/audit?since=yesterday").expect_error(400, &["INVALID_REQUEST"]);

    let v = app.get("/api/v1/audit/verify");
    v.expect(200);
    assert_eq!(v.json()["valid"], true);
    assert_eq!(v.json()["rows_checked"], 5, "4 changes + the policy recorded at start-up");
}

fn wharf(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wharf")).args(args).output().expect("run wharf")
}

/// `wharf` on `app`'s metadata, whichever engine holds it.
fn wharf_on(app: &TestApp, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wharf")).args(args).envs(app.database_env()).output().expect("run wharf")
}

#[test]
fn editing_an_audit_row_is_detected_by_wharf_audit_verify() {
    let mut app = TestApp::start();
    let repo = repo("tamper");
    for i in 0..3 {
        push_labeled(&app, &repo, &format!("t{i}"), json!({}), "app");
    }
    app.stop();
    let data_dir = app.data_dir().to_str().unwrap().to_owned();
    let ok = wharf_on(&app, &["audit", "verify", "--data-dir", &data_dir]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("7 rows verified"));

    let export = wharf_on(&app, &["audit", "export", "--data-dir", &data_dir]);
    assert!(export.status.success());
    let lines: Vec<Value> = String::from_utf8_lossy(&export.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 7);
    assert_eq!(lines[0]["action"], "policy.change");
    assert_eq!(lines[1]["action"], "manifest.push");
    assert!(lines.iter().all(|l| l["hash"].as_str().unwrap().len() == 64));

    // The tampering goes straight to whichever engine holds the rows.
    let tamper = "UPDATE audit_log SET actor = 'mallory' WHERE id = 4";
    if let Some(url) = app.database_url().map(str::to_owned) {
        // On a thread: the synchronous client may not run inside a tokio runtime.
        std::thread::spawn(move || postgres::Client::connect(&url, postgres::NoTls).unwrap().execute(tamper, &[]).unwrap()).join().unwrap();
    } else {
        let db = rusqlite::Connection::open(app.data_dir().join("wharf.db")).unwrap();
        db.execute(tamper, []).unwrap();
    }
    let broken = wharf_on(&app, &["audit", "verify", "--data-dir", &data_dir]);
    assert!(!broken.status.success());
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(stderr.contains("BROKEN at row 4"), "{stderr}");

    app.start_again();
    let v = app.get("/api/v1/audit/verify");
    assert_eq!(v.json()["valid"], false);
    assert_eq!(v.json()["first_broken"]["id"], 4);
}

#[test]
fn pipeline_cli_promotes_rolls_back_and_shows_history() {
    let app = TestApp::start();
    let repo = repo("cli");
    let a = push_labeled(&app, &repo, "a", json!({}), "app");
    let b = push_labeled(&app, &repo, "b", json!({}), "app");
    let url = app.base();
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--url", &url]);
        wharf(&all)
    };
    let out = run(&["promote", &repo, "a", "--to", "test", "--version", "1.0", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let release: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(release["digest"], a);
    assert!(run(&["promote", &repo, "b", "--to", "test"]).status.success());
    let refused = run(&["promote", &repo, "b", "--to", "prod"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("order:"));

    let out = run(&["rollback", &repo, "test"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(table.contains(&a) && table.contains("rollback"), "{table}");

    let out = run(&["history", &repo, "--stage", "test"]);
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(table.starts_with("STAGE"), "{table}");
    assert_eq!(table.lines().count(), 4, "header + 3 releases:\n{table}");
    let out = run(&["history", &repo, "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["stages"][0]["current"]["digest"], a);
    assert!(v["stages"][2]["current"].is_null());
    let _ = b;
}

#[test]
fn policy_changes_at_start_up_are_audited() {
    let mut app = TestApp::start();
    let first = audit(&app, "action=policy.change");
    assert_eq!(first.len(), 1, "the first start records the policy");
    assert_eq!(first[0]["actor"], "system");
    assert_eq!(first[0]["details"]["policy"]["stages"], json!(["test", "preprod", "prod"]));
    app.restart();
    assert_eq!(audit(&app, "action=policy.change").len(), 1, "an unchanged policy is not recorded again");
    app.stop();
    // The same data directory, started by hand under a stricter policy.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir", app.data_dir().to_str().unwrap()])
        .env("WHARF_GOVERNANCE__GATES__PROD__NON_ROOT", "true")
        .envs(app.database_env())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::blocking::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/v1/audit?action=policy.change");
    let mut entries = Value::Null;
    for _ in 0..100 {
        if let Ok(r) = client.get(&url).send() {
            entries = r.json::<Value>().unwrap()["entries"].clone();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let entries = entries.as_array().expect("audit entries from the restarted server").clone();
    assert_eq!(entries.len(), 2, "a changed policy is recorded");
    assert_eq!(entries[0]["details"]["policy"]["gates"]["prod"]["non_root"], true);
    assert!(entries[0]["details"]["previous"]["gates"]["prod"].is_null());
}

#[test]
fn promoting_the_current_digest_again_is_an_idempotent_success() {
    let app = TestApp::start();
    let repo = repo("idem");
    let digest = push_labeled(&app, &repo, "v1", json!({}), "app");
    let first = promote_ok(&app, &repo, "v1", "test");
    assert_eq!(first["unchanged"], false);

    // A CI retry: same tag, then the same digest; both answer 200 with the
    // existing release and write nothing.
    for reference in ["v1", digest.as_str()] {
        let again = promote(&app, &repo, reference, "test");
        again.expect(200);
        let again = again.json();
        assert_eq!(again["unchanged"], true);
        assert_eq!(again["sequence"], first["sequence"]);
        assert_eq!(again["digest"], digest);
        assert_eq!(again["created_at"], first["created_at"], "the existing release, not a new one");
    }
    // Racing retries still leave one release.
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| {
                promote(&app, &repo, "v1", "test").expect(200);
            });
        }
    });
    let releases = app.get(&format!("/api/v1/repositories/{repo}/stages/test/releases"));
    assert_eq!(releases.json()["releases"].as_array().unwrap().len(), 1, "no duplicate releases");
    assert_eq!(audit(&app, &format!("repository={repo}&action=promotion")).len(), 1, "retries add no audit rows");
    let history = app.get(&format!("/api/v1/repositories/{repo}/tags/test/history"));
    assert_eq!(history.json()["history"].as_array().unwrap().len(), 1, "the stage tag did not move again");

    // A different digest is a real promotion again, and after it the first
    // digest is no longer current, so promoting it again is a new release.
    push_labeled(&app, &repo, "v2", json!({}), "app");
    assert_eq!(promote_ok(&app, &repo, "v2", "test")["sequence"], 2);
    let back = promote_ok(&app, &repo, "v1", "test");
    assert_eq!((back["sequence"].as_i64(), back["unchanged"].as_bool()), (Some(3), Some(false)));
}

#[test]
fn refusals_name_what_was_typed_and_say_each_reason_once() {
    let app = TestApp::start();
    let repo = repo("msg");
    let digest = push_labeled(&app, &repo, "v1", json!({}), "app");

    // Skipping a stage: the tag typed and its digest in the message, the
    // reason once (in the failed gate), naming the tag, with what to do.
    let r = promote(&app, &repo, "v1", "prod");
    let gates = failed_gates(&r);
    let message = r.json()["errors"][0]["message"].as_str().unwrap().to_owned();
    assert_eq!(message, format!("cannot promote {repo}:v1 ({digest}) to prod: failed gate order"));
    assert_eq!(gates, vec!["order: v1 was never released to preprod, the stage before prod; promote it to preprod first".to_string()]);
    assert_eq!(r.text().matches("never released").count(), 1, "the reason is stated once: {}", r.text());
    // By digest, the digest is what was typed.
    let r = promote(&app, &repo, &digest, "preprod");
    assert_eq!(r.json()["errors"][0]["message"], format!("cannot promote {repo}@{digest} to preprod: failed gate order"));
    assert!(failed_gates(&r)[0].starts_with(&format!("order: {digest} was never released to test")));

    // An unknown stage lists the configured ones (promotion, rollback, history).
    let expected = r#"unknown stage "staging"; the configured stages are test, preprod, prod"#;
    for r in [
        promote(&app, &repo, "v1", "staging"),
        rollback(&app, &repo, "staging", None),
        app.get(&format!("/api/v1/repositories/{repo}/stages/staging/releases")),
    ] {
        r.expect_error(404, &["STAGE_UNKNOWN"]);
        assert_eq!(r.json()["errors"][0]["message"], expected);
    }

    // A push to a stage tag: one sentence; docker prints "denied: " itself.
    let manifest = app.get(&format!("/v2/{repo}/manifests/v1")).body;
    let r = put_manifest(&app, &repo, "prod", OCI_MANIFEST, &manifest);
    r.expect_error(403, &["DENIED"]);
    assert_eq!(r.json()["errors"][0]["message"], "prod is a stage tag: only promotion and rollback move it");
}
