//! `/metrics`: each series moves by what a push, a pull, a promotion, a
//! refused promotion and a GC run did, and repository names never become
//! series unless the switch is on (then only up to its cap).

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::json;

const BLOB_ROUTE: &str = "/v2/{name:.+}/blobs/{digest}";
const MANIFEST_ROUTE: &str = "/v2/{name:.+}/manifests/{reference}";
const PROMOTION_ROUTE: &str = "/api/v1/repositories/{name:.+}/promotions";

fn promote(app: &TestApp, repo: &str, reference: &str, stage: &str) -> Resp {
    app.req(Method::POST, &format!("/api/v1/repositories/{repo}/promotions"))
        .header("Content-Type", "application/json")
        .body(json!({"reference": reference, "stage": stage}).to_string())
        .send()
}

/// How much each series moved between two scrapes.
struct Delta<'a>(&'a Scrape, &'a Scrape);

impl Delta<'_> {
    fn of(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.1.value(name, labels) - self.0.value(name, labels)
    }

    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.1.sum(name, labels) - self.0.sum(name, labels)
    }
}

#[test]
fn each_series_moves_by_what_was_done() {
    let app = TestApp::builder().env("WHARF_GC__GRACE", "0s").env("WHARF_METRICS__REFRESH_INTERVAL", "200ms").start();
    let repo = repo("metrics");

    // The build and the recorder are there from the start.
    let start = scrape(&app);
    let info = start.0.iter().find(|s| s.name == "wharf_build_info").expect("wharf_build_info");
    assert_eq!(info.value, 1.0);
    assert_eq!(info.labels.get("version").map(String::as_str), Some(env!("CARGO_PKG_VERSION")));
    assert!(info.labels.get("commit").is_some_and(|c| !c.is_empty()), "{info:?}");
    // The scrape itself is a request in flight.
    assert!(start.value("wharf_http_requests_in_flight", &[]) >= 1.0);

    // A push: two blobs and a manifest.
    let config = unique_bytes(300);
    let layer = unique_bytes(70_000);
    let manifest = image_manifest(&config, std::slice::from_ref(&layer), json!({}));
    let before = scrape(&app);
    push_blob(&app, &repo, &config);
    push_blob_chunked(&app, &repo, &layer, 50_000);
    push_manifest(&app, &repo, "v1", OCI_MANIFEST, &manifest);
    let after = scrape(&app);
    let d = Delta(&before, &after);
    assert_eq!(d.of("wharf_registry_blobs_stored_total", &[]), 2.0);
    assert_eq!(d.of("wharf_registry_blob_bytes_stored_total", &[]), 70_300.0);
    assert_eq!(d.of("wharf_http_requests_total", &[("route", MANIFEST_ROUTE), ("method", "PUT"), ("status", "2xx")]), 1.0);
    assert_eq!(d.of("wharf_http_request_bytes_total", &[("route", MANIFEST_ROUTE)]), manifest.len() as f64);
    assert_eq!(d.of("wharf_http_request_duration_seconds_count", &[("route", MANIFEST_ROUTE), ("method", "PUT")]), 1.0);
    // On the filesystem a chunked upload is written in place (two PATCHes),
    // then renamed to its content address; a whole blob in one request is
    // staged beside its address and placed there.
    let op = |op| d.of("wharf_storage_operation_duration_seconds_count", &[("backend", "filesystem"), ("op", op)]);
    assert_eq!((op("append"), op("rename")), (2.0, 1.0));
    assert_eq!((op("stage"), op("place")), (1.0, 1.0));
    let engine = if database_engine_is_postgres() { "postgres" } else { "sqlite" };
    assert!(d.of("wharf_db_queue_wait_seconds_count", &[("engine", engine), ("queue", "write")]) >= 3.0);
    assert!(d.of("wharf_db_job_duration_seconds_count", &[("engine", engine), ("queue", "read")]) >= 1.0);

    // A pull: the layer goes out by sendfile, counted as the kernel sends it
    // (after the response head, so poll); the manifest through actix.
    let before = scrape(&app);
    let blob = app.get(&format!("/v2/{repo}/blobs/{}", sha256_digest(&layer)));
    blob.expect(200);
    assert_eq!(blob.body, layer);
    let got = app.get(&format!("/v2/{repo}/manifests/v1"));
    got.expect(200);
    let sendfile = [("route", BLOB_ROUTE), ("transfer", "sendfile")];
    let after = scrape_until(&app, Duration::from_secs(5), "the layer's bytes", |s| {
        s.value("wharf_http_response_bytes_total", &sendfile) - before.value("wharf_http_response_bytes_total", &sendfile) >= 70_000.0
    });
    let d = Delta(&before, &after);
    assert_eq!(d.of("wharf_http_response_bytes_total", &sendfile), 70_000.0);
    assert_eq!(d.of("wharf_http_response_bytes_total", &[("route", MANIFEST_ROUTE), ("transfer", "stream")]), manifest.len() as f64);
    assert_eq!(d.of("wharf_http_requests_total", &[("route", BLOB_ROUTE), ("method", "GET"), ("status", "2xx")]), 1.0);
    assert_eq!(d.of("wharf_http_requests_total", &[("route", MANIFEST_ROUTE), ("method", "GET"), ("status", "2xx")]), 1.0);
    assert!(d.of("wharf_storage_operation_duration_seconds_count", &[("backend", "filesystem"), ("op", "open")]) >= 1.0);

    // A promotion, then one refused by the order gate (prod before preprod).
    let before = scrape(&app);
    promote(&app, &repo, "v1", "test").expect(201);
    let refused = promote(&app, &repo, "v1", "prod");
    refused.expect_error(409, &["PROMOTION_DENIED"]);
    let after = scrape(&app);
    let d = Delta(&before, &after);
    assert_eq!(d.of("wharf_promotions_total", &[("stage", "test")]), 1.0);
    assert_eq!(d.sum("wharf_promotions_total", &[]), 1.0);
    assert_eq!(d.of("wharf_promotions_refused_total", &[("stage", "prod")]), 1.0);
    assert_eq!(d.of("wharf_gate_refusals_total", &[("stage", "prod"), ("gate", "order")]), 1.0);
    assert_eq!(d.sum("wharf_gate_refusals_total", &[]), 1.0);
    assert_eq!(d.of("wharf_http_requests_total", &[("route", PROMOTION_ROUTE), ("method", "POST"), ("status", "4xx")]), 1.0);
    assert_eq!(d.of("wharf_http_requests_total", &[("route", PROMOTION_ROUTE), ("method", "POST"), ("status", "2xx")]), 1.0);

    // A rollback refused (test has one release only).
    let r = app.req(Method::POST, &format!("/api/v1/repositories/{repo}/stages/test/rollback")).send();
    r.expect_error(409, &["ROLLBACK_DENIED"]);
    let s = scrape(&app);
    assert_eq!(Delta(&after, &s).of("wharf_rollbacks_refused_total", &[("stage", "test")]), 1.0);

    // A GC run frees an orphan blob; the counters match its report.
    let orphan = unique_bytes(5_000);
    push_blob(&app, &repo, &orphan);
    app.delete(&format!("/v2/{repo}/blobs/{}", sha256_digest(&orphan))).expect(202);
    let before = scrape(&app);
    let gc = app.req(Method::POST, "/api/v1/gc/runs").send();
    gc.expect(200);
    let report = gc.json();
    let after = scrape(&app);
    let d = Delta(&before, &after);
    let deleted = ["blobs_deleted", "resumed", "strays_deleted"].iter().map(|k| report[k].as_u64().unwrap()).sum::<u64>();
    let freed = report["bytes_freed"].as_u64().unwrap() + report["stray_bytes_freed"].as_u64().unwrap();
    assert!(deleted >= 1 && freed >= 5_000, "GC freed nothing: {report}");
    assert_eq!(d.of("wharf_gc_runs_total", &[("outcome", "ok"), ("mode", "run")]), 1.0);
    assert_eq!(d.of("wharf_gc_blobs_deleted_total", &[]), deleted as f64);
    assert_eq!(d.of("wharf_gc_bytes_freed_total", &[]), freed as f64);
    assert!(after.value("wharf_gc_last_success_timestamp_seconds", &[]) > 0.0);
    // A dry run is counted as such and frees nothing.
    app.req(Method::POST, "/api/v1/gc/runs?dry_run=true").send().expect(200);
    let dry = scrape(&app);
    assert_eq!(Delta(&after, &dry).of("wharf_gc_runs_total", &[("outcome", "ok"), ("mode", "dry_run")]), 1.0);
    assert_eq!(Delta(&after, &dry).of("wharf_gc_bytes_freed_total", &[]), 0.0);

    // The database-backed gauges, refreshed in the background: an open
    // upload session, the test stage's release, the audit chain.
    let location = start_upload(&app, &repo);
    let s = scrape_until(&app, Duration::from_secs(10), "the open upload and the release age", |s| {
        s.value("wharf_registry_uploads_open", &[]) == 1.0
            && s.find("wharf_stage_release_age_seconds", &[("stage", "test"), ("release", "newest")]).is_some()
    });
    let age = s.value("wharf_stage_release_age_seconds", &[("stage", "test"), ("release", "newest")]);
    assert!((0.0..600.0).contains(&age), "age {age}");
    assert!(s.find("wharf_stage_release_age_seconds", &[("stage", "prod"), ("release", "newest")]).is_none(), "prod has no release");
    // Policy recorded, promotion, refusal, rollback refusal, GC: five rows at least.
    assert!(s.value("wharf_audit_chain_height", &[]) >= 5.0);
    app.delete(&location).expect(204);
    scrape_until(&app, Duration::from_secs(10), "the upload closed", |s| s.value("wharf_registry_uploads_open", &[]) == 0.0);
    // The background verification ran at start-up and found the chain intact.
    let s = scrape(&app);
    assert_eq!(s.value("wharf_audit_chain_valid", &[]), 1.0);
    assert!(s.value("wharf_audit_last_verification_timestamp_seconds", &[]) > 0.0);

    // Every exported series has a help line (the documented list is complete).
    let text = app.get("/metrics").text();
    for name in s.0.iter().map(|s| s.name.trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count")) {
        assert!(text.contains(&format!("# HELP {name} ")), "{name} has no description");
    }
}

/// 10,000 repository names: no series per name by default, whatever the
/// requests touched.
#[test]
fn ten_thousand_repositories_do_not_make_ten_thousand_series() {
    let app = TestApp::start();
    let missing = sha256_digest(b"nothing here");
    let names: Vec<String> = (0..10_000).map(|i| format!("card/r{i:05}")).collect();
    for name in &names {
        let r = app.head(&format!("/v2/{name}/blobs/{missing}"));
        assert_eq!(r.status, 404, "{}", r.describe());
    }
    let text = app.get("/metrics").text();
    let s = Scrape::parse(&text);
    assert!(s.0.len() < 1_000, "{} series after 10,000 repositories", s.0.len());
    assert!(!text.contains("card/r0"), "a repository name became a label");
    assert_eq!(s.value("wharf_http_requests_total", &[("route", BLOB_ROUTE), ("method", "HEAD"), ("status", "4xx")]), 10_000.0);
}

/// With `metrics.repository_labels` the first `max_repositories` names get a
/// series each; the rest are counted together as `other`.
#[test]
fn repository_labels_are_capped() {
    let app = TestApp::builder().env("WHARF_METRICS__REPOSITORY_LABELS", "true").env("WHARF_METRICS__MAX_REPOSITORIES", "20").start();
    let missing = sha256_digest(b"nothing here");
    for i in 0..50 {
        app.head(&format!("/v2/capped/r{i:02}/blobs/{missing}")).expect(404);
    }
    // Names already labelled keep their label.
    app.head(&format!("/v2/capped/r00/blobs/{missing}")).expect(404);
    let s = scrape(&app);
    let named: Vec<_> = s.0.iter().filter(|s| s.name == "wharf_http_repository_requests_total").collect();
    assert_eq!(named.len(), 21, "{named:?}");
    assert_eq!(s.value("wharf_http_repository_requests_total", &[("repository", "other")]), 30.0);
    assert_eq!(s.value("wharf_http_repository_requests_total", &[("repository", "capped/r00")]), 2.0);
}

/// `metrics.listen`: `/metrics` moves to its own listener and is gone from
/// the registry's.
#[test]
fn metrics_on_a_separate_listener() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app = TestApp::builder().env("WHARF_METRICS__LISTEN", format!("127.0.0.1:{port}")).start();
    app.get("/metrics").expect(404);
    let scrape = || Scrape::parse(&app.client().get(format!("http://127.0.0.1:{port}/metrics")).send().unwrap().text().unwrap());
    let v2 = [("route", "/v2/"), ("method", "GET"), ("status", "2xx")];
    let before = scrape();
    app.get("/v2/").expect(200);
    assert_eq!(scrape().value("wharf_http_requests_total", &v2) - before.value("wharf_http_requests_total", &v2), 1.0);
}
