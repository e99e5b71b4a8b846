//! Scheduled jobs behind leases (issues 13.3, 15.4): GC and retention run on
//! one node at a time, each run recorded once in a `gc.run` /
//! `retention.run` audit row naming its holder (`node.id`), what started it,
//! when it started and finished, and what it deleted.
//!
//! The test in `postgres::` runs two Wharf nodes on one PostgreSQL database
//! (tests/run-all.sh cargo-test-postgres); the other runs on whichever
//! engine the run uses.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::pg::TestDatabase;
use common::*;
use serde_json::Value;

/// A node with GC and retention every `every` (GC grace 2s: longer than a
/// test's push of one image, so GC never takes a layer before its manifest
/// comes), its blobs in `store` (shared by the nodes of one test).
fn node(id: &str, store: &Path, database: Option<&TestDatabase>, every: &str) -> TestApp {
    let mut b = TestApp::builder()
        .env("WHARF_NODE__ID", id)
        .env("WHARF_STORAGE__PATH", store.to_str().expect("utf-8 path"))
        .env("WHARF_GC__SCHEDULE", every)
        .env("WHARF_GC__GRACE", "2s")
        .env("WHARF_RETENTION__SCHEDULE", every)
        .env("WHARF_RETENTION__POLICIES", r#"[{name="churn", repositories="leases/**", keep_last=1, delete_untagged_after="0s"}]"#);
    if let Some(d) = database {
        b = b.env("WHARF_DATABASE__URL", d.url.as_str());
    }
    b.start()
}

/// Every audit row with `action`, oldest first.
fn rows(app: &TestApp, action: &str) -> Vec<Value> {
    let r = app.get(&format!("/api/v1/audit?action={action}&n=1000"));
    r.expect(200);
    let page = r.json();
    assert!(page["next_cursor"].is_null(), "more than one page of {action} rows");
    let mut rows = page["entries"].as_array().cloned().unwrap_or_default();
    rows.reverse();
    rows
}

fn int(row: &Value, key: &str) -> i64 {
    row["details"][key].as_i64().unwrap_or_else(|| panic!("{key} is no integer in {row}"))
}

/// The scheduled run rows of `action`: each names one of `holders`, ran
/// as `system`, started before it finished; sorted by start, no run began
/// before the previous one finished. Returns them.
fn check_runs(app: &TestApp, action: &str, holders: &[&str]) -> Vec<Value> {
    let runs: Vec<Value> = rows(app, action).into_iter().filter(|r| r["details"]["trigger"] == "schedule").collect();
    assert!(!runs.is_empty(), "no scheduled {action} row");
    let mut spans = Vec::new();
    for r in &runs {
        let holder = r["details"]["holder"].as_str().unwrap_or_else(|| panic!("no holder in {r}"));
        assert!(holders.contains(&holder), "{action} row names {holder:?}, not one of {holders:?}: {r}");
        assert_eq!(r["actor"], "system", "{r}");
        let (start, end) = (int(r, "started_at"), int(r, "finished_at"));
        assert!(0 < start && start <= end, "{r}");
        spans.push((start, end, holder.to_owned()));
    }
    spans.sort();
    for w in spans.windows(2) {
        assert!(
            w[1].0 >= w[0].1,
            "{action}: a run by {} started at {} before the run by {} finished at {}",
            w[1].2,
            w[1].0,
            w[0].2,
            w[0].1
        );
    }
    runs
}

fn sum(runs: &[Value], key: &str) -> i64 {
    runs.iter().map(|r| int(r, key)).sum()
}

/// Rows of `action` written by retention (`details.by`), or by GC for a
/// blob that was no stray.
fn count(app: &TestApp, action: &str, keep: impl Fn(&Value) -> bool) -> i64 {
    rows(app, action).iter().filter(|r| keep(&r["details"])).count() as i64
}

/// Pushes three tagged images (retention keeps the newest) and waits until
/// retention deleted the two older manifests and GC collected their blobs.
fn churn_and_wait(app: &TestApp) {
    let repo = repo("leases");
    let old: Vec<Image> = (0..2).map(|i| push_image(app, &repo, Some(&format!("t{i}")), 1)).collect();
    std::thread::sleep(Duration::from_millis(5));
    push_image(app, &repo, Some("t2"), 1);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let gone = old.iter().all(|i| app.head(&format!("/v2/{repo}/manifests/{}", i.digest)).status == 404);
        let collected = old.iter().all(|i| app.head(&format!("/v2/{repo}/blobs/{}", i.layer_digests[0])).status == 404);
        if gone && collected {
            return;
        }
        assert!(Instant::now() < deadline, "scheduled runs did not clean up: manifests gone {gone}, layers collected {collected}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// With every scheduled run finished (nodes stopped, a quiet one reading):
/// the runs' counts add up to the deletions audited one by one.
fn check_counts(reader: &TestApp, holders: &[&str]) {
    let gc = check_runs(reader, "gc.run", holders);
    let retention = check_runs(reader, "retention.run", holders);
    let by_retention = |d: &Value| d["by"] == "retention";
    assert_eq!(sum(&retention, "manifests_deleted"), count(reader, "manifest.delete", by_retention));
    assert_eq!(sum(&retention, "tags_deleted"), count(reader, "tag.delete", by_retention));
    assert!(sum(&retention, "manifests_deleted") >= 2, "retention deleted the two older images");
    let blobs = count(reader, "gc.blob", |d| d["stray"] != true);
    assert!(blobs >= 4, "GC collected the older images' layers and configs ({blobs})");
    assert_eq!(sum(&gc, "blobs_deleted"), blobs, "gc.run rows count every blob collected");
}

/// The same set-up with no schedule due: reads the audit log while nothing runs.
fn quiet(app: &mut TestApp) {
    app.set_env("WHARF_GC__SCHEDULE", "1day");
    app.set_env("WHARF_RETENTION__SCHEDULE", "1day");
    app.restart();
}

#[test]
fn scheduled_runs_are_recorded_with_their_holder_and_manual_ones_with_their_trigger() {
    let store = tempfile::tempdir().expect("temp dir");
    let mut app = node("leases-solo", store.path(), None, "1s");
    churn_and_wait(&app);
    quiet(&mut app);
    check_counts(&app, &["leases-solo"]);

    // A manual run is recorded with its trigger; a dry run is not recorded.
    let before = (rows(&app, "gc.run").len(), rows(&app, "retention.run").len());
    app.post("/api/v1/gc/runs?dry_run=true").expect(200);
    app.get("/api/v1/retention/plan").expect(200);
    assert_eq!((rows(&app, "gc.run").len(), rows(&app, "retention.run").len()), before, "a dry run wrote a run row");
    app.post("/api/v1/gc/runs?dry_run=false").expect(200);
    app.post("/api/v1/retention/runs").expect(200);
    for action in ["gc.run", "retention.run"] {
        let all = rows(&app, action);
        let last = all.last().expect("a run row");
        assert_eq!(last["details"]["trigger"], "api", "{last}");
        assert_eq!(last["details"]["holder"], "leases-solo", "{last}");
        assert!(last["repository"].is_null(), "{last}");
    }
    // The run rows pass the audit filter and keep the chain valid.
    let verify = app.get("/api/v1/audit/verify").json();
    assert!(verify["first_broken"].is_null(), "{verify}");
    let listed: BTreeSet<String> = app.get("/api/v1/audit?n=1000").json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(listed.contains("gc.run") && listed.contains("retention.run"), "{listed:?}");
    app.get("/api/v1/audit?action=gc.nothing").expect(400);
}

/// Needs the test PostgreSQL server: named `postgres::...`, so the
/// cargo-test step skips it and the cargo-test-postgres step runs it.
mod postgres {
    use super::*;

    #[test]
    fn two_nodes_run_each_job_on_one_node_at_a_time() {
        let Some(server) = pg::postgres_url() else { return };
        let database = TestDatabase::create(&server);
        let store = tempfile::tempdir().expect("temp dir");
        let mut a = node("leases-a", store.path(), Some(&database), "1s");
        let mut b = node("leases-b", store.path(), Some(&database), "1s");
        churn_and_wait(&a);
        // A few more ticks on both nodes, then stop them: every run is finished.
        std::thread::sleep(Duration::from_secs(3));
        let metrics = [a.get("/metrics").text(), b.get("/metrics").text()];
        assert!(a.stop().success() && b.stop().success());
        let reader = node("leases-reader", store.path(), Some(&database), "1day");
        check_counts(&reader, &["leases-a", "leases-b"]);
        // Both nodes ticked; the one without the lease skipped, or each ran in turn.
        for m in &metrics {
            assert!(m.contains("wharf_job_runs_total{job=\"gc\""), "{m}");
        }
    }
}
