//! Retention and garbage collection over HTTP: plans with reasons, runs that
//! never strand a release, GC racing pushes, and both killed midway.

#[macro_use]
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

backend_tests!(gc_sweep_lists_the_store);

fn promote(app: &TestApp, repo: &str, reference: &str, stage: &str) {
    app.req(Method::POST, &format!("/api/v1/repositories/{repo}/promotions"))
        .header("Content-Type", "application/json")
        .body(json!({"reference": reference, "stage": stage}).to_string())
        .send()
        .expect(201);
}

fn gc(app: &TestApp, dry_run: bool) -> Value {
    let r = app.post(&format!("/api/v1/gc/runs?dry_run={dry_run}"));
    r.expect(200);
    r.json()
}

/// GET of the manifest and every blob it names (recursively for an index)
/// succeeds with the right bytes.
#[track_caller]
fn assert_pulls(app: &TestApp, repo: &str, reference: &str) {
    let accept = format!("{OCI_MANIFEST}, {OCI_INDEX}");
    let r = app.req(Method::GET, &format!("/v2/{repo}/manifests/{reference}")).header("Accept", &accept).send();
    assert_eq!(r.status, 200, "{repo}:{reference} does not pull:\n{}", r.describe());
    let m = r.json();
    for child in m["manifests"].as_array().into_iter().flatten() {
        assert_pulls(app, repo, child["digest"].as_str().unwrap());
    }
    let blobs = m["layers"].as_array().into_iter().flatten().chain(m.get("config"));
    for b in blobs {
        let digest = b["digest"].as_str().unwrap();
        let g = app.get(&format!("/v2/{repo}/blobs/{digest}"));
        assert_eq!(g.status, 200, "blob {digest} of {repo}:{reference} is gone:\n{}", g.describe());
        assert_eq!(sha256_digest(&g.body), digest);
    }
}

fn push_index(app: &TestApp, repo: &str, tag: &str) -> (String, Vec<Image>) {
    let children: Vec<Image> = (0..2).map(|_| push_image(app, repo, None, 1)).collect();
    let index = to_bytes(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": children.iter().enumerate().map(|(i, c)| {
            let mut d = c.descriptor();
            d["platform"] = json!({"architecture": if i == 0 { "amd64" } else { "arm64" }, "os": "linux"});
            d
        }).collect::<Vec<_>>(),
    }));
    (push_manifest(app, repo, tag, OCI_INDEX, &index), children)
}

/// A signature-like referrer of `subject`.
fn push_referrer(app: &TestApp, repo: &str, subject: &Image) -> String {
    push_blob(app, repo, b"{}");
    let sig = unique_bytes(100);
    push_blob(app, repo, &sig);
    let m = to_bytes(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.signature",
        "config": {"mediaType": OCI_EMPTY, "digest": sha256_digest(b"{}"), "size": 2},
        "layers": [descriptor("application/octet-stream", &sig)],
        "subject": subject.descriptor(),
    }));
    let digest = sha256_digest(&m);
    push_manifest(app, repo, &digest, OCI_MANIFEST, &m)
}

fn decision<'a>(plan: &'a Value, repo: &str, digest: &str) -> &'a Value {
    let r = plan["repositories"].as_array().unwrap().iter().find(|r| r["repository"] == repo).expect("repository in plan");
    r["manifests"].as_array().unwrap().iter().find(|m| m["digest"] == digest).unwrap_or_else(|| panic!("{digest} not in plan: {r}"))
}

fn retention_app() -> TestApp {
    TestApp::builder()
        .env("WHARF_RETENTION__POLICIES", r#"[{name="default", repositories="**", keep_last=2, delete_untagged_after="1ms"}]"#)
        .env("WHARF_GC__GRACE", "0s")
        .env("WHARF_GOVERNANCE__ROLLBACK_DEPTH", "1")
        .start()
}

#[test]
fn plan_explains_and_run_keeps_releases_children_and_referrers() {
    let app = retention_app();
    let repo = "ret/app";
    let old: Vec<Image> = (1..=4).map(|i| push_image(&app, repo, Some(&format!("v{i}")), 2)).collect();
    // v1 and v2 are prod releases (v2 current, v1 the rollback target); v3 went to test only.
    for img in &old[..2] {
        for stage in ["test", "preprod", "prod"] {
            promote(&app, repo, &img.digest, stage);
        }
    }
    let sig = push_referrer(&app, repo, &old[0]);
    let (index, children) = push_index(&app, repo, "multi");
    let newest = push_image(&app, repo, Some("v5"), 1);
    let untagged = push_image(&app, repo, None, 1);
    std::thread::sleep(Duration::from_millis(5));

    let plan = app.get("/api/v1/retention/plan");
    plan.expect(200);
    let plan = plan.json();
    let reason = |d: &str| decision(&plan, repo, d)["reason"].as_str().unwrap().to_owned();
    let keep = |d: &str| decision(&plan, repo, d)["keep"].as_bool().unwrap();
    assert!(keep(&old[1].digest) && reason(&old[1].digest).contains("prod release"), "{}", reason(&old[1].digest));
    assert!(keep(&old[0].digest) && reason(&old[0].digest).contains("rollback window"), "{}", reason(&old[0].digest));
    assert!(keep(&sig) && reason(&sig).contains("referrer"), "{}", reason(&sig));
    assert!(keep(&index) && keep(&newest.digest));
    for c in &children {
        assert!(keep(&c.digest) && reason(&c.digest).contains("child"), "{}", reason(&c.digest));
    }
    // v3 (test release #.. but outside test's window of 1 after v1, v2) and v4 lose their tags.
    assert!(!keep(&old[3].digest), "{}", reason(&old[3].digest));
    assert!(!keep(&untagged.digest) && reason(&untagged.digest).contains("untagged"), "{}", reason(&untagged.digest));
    // A plan changes nothing.
    assert_pulls(&app, repo, "v4");
    assert_pulls(&app, repo, &untagged.digest);

    let run = app.post("/api/v1/retention/runs");
    run.expect(200);
    let run = run.json();
    assert!(run["manifests_deleted"].as_u64().unwrap() >= 2, "{run}");
    app.head(&format!("/v2/{repo}/manifests/v4")).expect(404);
    app.head(&format!("/v2/{repo}/manifests/{}", untagged.digest)).expect(404);
    // Every deletion is audited with its reason.
    let audit = app.get(&format!("/api/v1/audit?action=manifest.delete&repository={repo}")).json();
    let entries = audit["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .all(|e| e["details"]["by"] == "retention" && e["details"]["reason"].as_str().is_some_and(|r| r.starts_with("deleted"))),
        "{audit}"
    );

    // GC frees the bytes only deleted manifests used; everything kept still pulls.
    let report = gc(&app, false);
    assert!(report["blobs_deleted"].as_u64().unwrap() >= 3 && report["bytes_freed"].as_u64().unwrap() > 0, "{report}");
    app.head(&format!("/v2/{repo}/blobs/{}", old[3].layer_digests[0])).expect(404);
    for reference in ["prod", "v1", "v2", "multi", "v5", sig.as_str()] {
        assert_pulls(&app, repo, reference);
    }
    // The rollback target is intact: rolling back works and pulls.
    app.post(&format!("/api/v1/repositories/{repo}/stages/prod/rollback")).expect(201);
    assert_eq!(app.head(&format!("/v2/{repo}/manifests/prod")).must_header("docker-content-digest"), old[0].digest);
    assert_pulls(&app, repo, "prod");
    let verify = app.get("/api/v1/audit/verify").json();
    assert!(verify["first_broken"].is_null(), "{verify}");
    // A second run finds nothing more to do.
    assert_eq!(gc(&app, true)["blobs_deleted"], 0);
}

#[test]
fn retention_and_gc_endpoints_need_rights() {
    let app = TestApp::builder().with_auth().start();
    app.set_default_auth(Some(basic("admin", ADMIN_PASSWORD)));
    app.req(Method::POST, "/api/v1/users")
        .header("Content-Type", "application/json")
        .body(json!({"name": "dev", "password": "password-123"}).to_string())
        .send()
        .expect(201);
    let dev = basic("dev", "password-123");
    app.req_as(Some(&dev), Method::POST, "/api/v1/gc/runs").send().expect_error(403, &["DENIED"]);
    app.req_as(Some(&dev), Method::POST, "/api/v1/retention/runs").send().expect_error(403, &["DENIED"]);
    app.req_as(Some(&dev), Method::GET, "/api/v1/retention/plan").send().expect_error(403, &["DENIED"]);
    app.req_as(None, Method::POST, "/api/v1/gc/runs").send().expect(401);
    app.post("/api/v1/gc/runs?dry_run=maybe").expect_error(400, &[]);
    let policies = app.get("/api/v1/retention/policies").json();
    assert!(policies["always_kept"].as_array().is_some_and(|a| a.len() == 5), "{policies}");
}

#[test]
fn gc_racing_pushes_never_leaves_a_manifest_without_its_blobs() {
    let app = Arc::new(TestApp::builder().env("WHARF_GC__GRACE", "0s").env("WHARF_GC__BATCH_SIZE", "5").start());
    let shared: Arc<Vec<Vec<u8>>> = Arc::new((0..4).map(|_| unique_bytes(20_000)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let gc_loop = {
        let (app, stop) = (app.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut runs = 0;
            while !stop.load(Ordering::SeqCst) {
                gc(&app, false);
                runs += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            runs
        })
    };
    let pushers: Vec<_> = (0..4)
        .map(|w| {
            let (app, shared) = (app.clone(), shared.clone());
            std::thread::spawn(move || {
                let mut accepted = Vec::new();
                for i in 0..12 {
                    let repo = format!("race/w{w}");
                    let config = to_bytes(&json!({"architecture": "amd64", "os": "linux", "n": unique_token()}));
                    let layers = vec![shared[i % 4].clone(), shared[(i + 1) % 4].clone(), unique_bytes(3000)];
                    let manifest = image_manifest(&config, &layers, json!({}));
                    let tag = format!("t{i}");
                    // A blob collected between its upload and the manifest PUT
                    // makes the PUT fail with MANIFEST_BLOB_UNKNOWN: upload again.
                    // With a zero grace period a tight GC loop may starve a
                    // push (more so now that blobs are fsynced before they
                    // are recorded); only what was accepted must pull completely.
                    let mut ok = false;
                    for _ in 0..30 {
                        for blob in layers.iter().chain(std::iter::once(&config)) {
                            push_blob(&app, &repo, blob);
                        }
                        let r = put_manifest(&app, &repo, &tag, OCI_MANIFEST, &manifest);
                        if r.status == 201 {
                            ok = true;
                            break;
                        }
                        r.expect_error(400, &["MANIFEST_BLOB_UNKNOWN"]);
                    }
                    if ok {
                        accepted.push((repo, tag));
                    }
                }
                accepted
            })
        })
        .collect();
    let accepted: Vec<(String, String)> = pushers.into_iter().flat_map(|p| p.join().expect("pusher")).collect();
    stop.store(true, Ordering::SeqCst);
    let runs = gc_loop.join().expect("gc loop");
    assert!(runs > 1, "GC ran {runs} times only");
    gc(&app, false);
    for (repo, tag) in &accepted {
        assert_pulls(&app, repo, tag);
    }
    assert!(accepted.len() >= 12, "only {} of 48 images were accepted", accepted.len());
    eprintln!("{} of 48 images accepted while GC ran {runs} times", accepted.len());
}

/// Starts `path` and SIGKILLs the server as soon as the audit log shows it
/// has committed its first deletion (`action`), i.e. in the middle of it.
fn kill_during(app: &mut TestApp, path: &str, action: &str) {
    let url = app.url(path);
    let client = reqwest::blocking::Client::new();
    let call = std::thread::spawn(move || client.post(url).timeout(Duration::from_secs(60)).send().map(|r| r.status().as_u16()));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        let r = app.get(&format!("/api/v1/audit?action={action}&n=1"));
        if r.json()["entries"].as_array().is_some_and(|e| !e.is_empty()) {
            break;
        }
    }
    app.kill();
    let _ = call.join();
    app.start_again();
}

#[test]
fn gc_and_retention_killed_midway_finish_on_the_next_run() {
    let mut app = TestApp::builder()
        .env("WHARF_GC__GRACE", "0s")
        .env("WHARF_GC__BATCH_SIZE", "5")
        .env("WHARF_RETENTION__POLICIES", r#"[{name="last", repositories="kill/**", keep_last=1}]"#)
        .start();
    let kept = push_image(&app, "kill/keep", Some("v1"), 2).digest;
    promote(&app, "kill/keep", "v1", "test");
    // Many unreferenced blobs, so the sweep takes many batches.
    for _ in 0..1200 {
        push_blob(&app, "kill/junk", &unique_bytes(64));
    }
    // Past the (zero) grace period: strictly older than now.
    std::thread::sleep(Duration::from_millis(5));
    let before = gc(&app, true)["blobs_deleted"].as_u64().unwrap();
    assert!(before >= 1200, "{before}");
    kill_during(&mut app, "/api/v1/gc/runs", "gc.blob");
    let left = gc(&app, true)["blobs_deleted"].as_u64().unwrap();
    eprintln!("gc killed midway: {left} of {before} blobs still to collect");
    assert!(left < before, "the sweep made no progress before the kill");
    assert_pulls(&app, "kill/keep", "v1");
    let report = gc(&app, false);
    assert_eq!(gc(&app, true)["blobs_deleted"], 0, "{report}");
    assert_pulls(&app, "kill/keep", "v1");

    // Retention over many repositories, killed midway.
    for r in 0..60 {
        for t in 0..3 {
            push_image(&app, &format!("kill/r{r:02}"), Some(&format!("t{t}")), 1);
        }
    }
    kill_during(&mut app, "/api/v1/retention/runs", "manifest.delete");
    let left = app.get("/api/v1/retention/plan").json()["manifests_deleted"].as_u64().unwrap();
    eprintln!("retention killed midway: {left} of 120 manifests still to delete");
    let verify = app.get("/api/v1/audit/verify").json();
    assert!(verify["first_broken"].is_null(), "{verify}");
    app.post("/api/v1/retention/runs").expect(200);
    let plan = app.get("/api/v1/retention/plan").json();
    assert_eq!(plan["manifests_deleted"], 0, "the second run left work: {plan}");
    for r in 0..60 {
        assert_pulls(&app, &format!("kill/r{r:02}"), "t2");
    }
    assert_pulls(&app, "kill/keep", "test");
    assert_pulls(&app, "kill/keep", &kept);
    let verify = app.get("/api/v1/audit/verify").json();
    assert!(verify["first_broken"].is_null(), "{verify}");
}

#[test]
fn grace_period_upload_expiry_and_schedules() {
    // Default grace (1h): a fresh unreferenced blob is not collected.
    let app = TestApp::start();
    let blob = unique_bytes(500);
    let digest = push_blob(&app, "grace/app", &blob);
    assert_eq!(gc(&app, false)["blobs_deleted"], 0);
    assert_blob(&app, "grace/app", &digest, &blob);

    // Abandoned uploads expire with their parts; scheduled runs need no call.
    let app = TestApp::builder()
        // Long enough that the scheduled runs never race this test's own pushes.
        .env("WHARF_GC__GRACE", "2s")
        .env("WHARF_GC__UPLOAD_MAX_AGE", "1s")
        .env("WHARF_GC__SCHEDULE", "300ms")
        .env("WHARF_RETENTION__SCHEDULE", "300ms")
        .env("WHARF_RETENTION__POLICIES", r#"[{name="one", repositories="sched/**", keep_last=1}]"#)
        .start();
    let loc = start_upload(&app, "sched/app");
    patch_chunk(&app, &loc, 0, unique_bytes(1000)).expect(202);
    let junk = push_blob(&app, "sched/app", &unique_bytes(700));
    push_image(&app, "sched/app", Some("old"), 1);
    std::thread::sleep(Duration::from_millis(5));
    let newest = push_image(&app, "sched/app", Some("new"), 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let upload_gone = app.get(&loc).status == 404;
        let blob_gone = app.head(&format!("/v2/sched/app/blobs/{junk}")).status == 404;
        let old_gone = app.head("/v2/sched/app/manifests/old").status == 404;
        if upload_gone && blob_gone && old_gone {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "scheduled runs did not clean up: upload {upload_gone}, blob {blob_gone}, old tag {old_gone}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_pulls(&app, "sched/app", "new");
    assert_pulls(&app, "sched/app", &newest.digest);
    let audit = app.get("/api/v1/audit?actor=system&n=100").json();
    let actions: Vec<&str> = audit["entries"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"gc.upload") && actions.contains(&"gc.blob") && actions.contains(&"manifest.delete"), "{actions:?}");
}

/// Backdates a file's modification time by `age`.
fn age_file(path: &std::path::Path, age: Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.set_modified(std::time::SystemTime::now() - age).unwrap();
}

/// Writes `bytes` at `path` (creating directories), backdated by `age`.
fn plant(path: &std::path::Path, bytes: &[u8], age: Duration) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    age_file(path, age);
}

/// Bytes in the store that no row accounts for (a crash between writing and
/// recording them) are swept once old enough; nothing live is touched, and
/// the digest of a swept stray can be pushed again.
#[test]
fn gc_sweeps_stray_objects_and_nothing_live() {
    let app = TestApp::builder().env("WHARF_GC__GRACE", "1h").env("WHARF_GC__UPLOAD_MAX_AGE", "2h").start();
    let root = app.data_dir().join("blobs");
    let blob_path = |digest: &str| root.join(blob_key(digest));
    let old = Duration::from_secs(3 * 3600);

    // Live: a pushed blob and an upload in progress, both backdated.
    let live = unique_bytes(5000);
    let live_digest = push_blob(&app, "stray/app", &live);
    age_file(&blob_path(&live_digest), old);
    let loc = start_upload(&app, "stray/app");
    let first = unique_bytes(3000);
    let r = patch_chunk(&app, &loc, 0, first.clone());
    r.expect(202);
    let loc = r.must_header("location");
    let upload_id = loc.trim_end_matches('/').rsplit('/').next().unwrap().split('?').next().unwrap().to_owned();
    for entry in std::fs::read_dir(root.join("uploads").join(&upload_id)).expect("the live upload's files") {
        age_file(&entry.unwrap().path(), old);
    }

    // Strays: old bytes at a blob address, an old file of a gone upload, an
    // old join temporary; and young bytes at a blob address (kept for now).
    let stray = unique_bytes(7000);
    let stray_digest = sha256_digest(&stray);
    plant(&blob_path(&stray_digest), &stray, old);
    let gone_upload = root.join("uploads").join(uuid_like()).join("data");
    plant(&gone_upload, &unique_bytes(1000), old);
    let temporary = blob_path(&stray_digest).with_file_name(".concat-leftover");
    plant(&temporary, &unique_bytes(300), old);
    // A whole blob being written beside its address is an upload in
    // progress: kept past the grace period, up to `upload_max_age`.
    let writing = blob_path(&stray_digest).with_file_name(".partial-in-flight");
    plant(&writing, &unique_bytes(200), Duration::from_secs(90 * 60));
    let young = unique_bytes(900);
    let young_digest = sha256_digest(&young);
    plant(&blob_path(&young_digest), &young, Duration::ZERO);

    let dry = gc(&app, true);
    assert_eq!(dry["strays_deleted"], 3, "{dry}");
    assert_eq!(dry["stray_bytes_freed"], 7000 + 1000 + 300, "{dry}");
    assert!(blob_path(&stray_digest).exists() && gone_upload.exists() && temporary.exists(), "a dry run deleted something");

    let report = gc(&app, false);
    assert_eq!(report["strays_deleted"], 3, "{report}");
    assert!(!blob_path(&stray_digest).exists(), "stray blob bytes are still there");
    assert!(!gone_upload.exists(), "the gone upload's file is still there");
    assert!(!temporary.exists(), "the join temporary is still there");
    assert!(blob_path(&young_digest).exists(), "young bytes were swept before the grace period");
    assert!(writing.exists(), "a blob write in progress was swept before upload_max_age");
    assert_eq!(gc(&app, false)["strays_deleted"], 0, "a second run found more strays");

    // Live things are intact: the blob pulls, the upload goes on to the end.
    assert_blob(&app, "stray/app", &live_digest, &live);
    let second = unique_bytes(2000);
    let whole: Vec<u8> = first.iter().chain(second.iter()).copied().collect();
    let done_digest = sha256_digest(&whole);
    finish_upload(&app, &loc, &done_digest, second).expect(201);
    assert_blob(&app, "stray/app", &done_digest, &whole);
    // The swept digest is an ordinary push again.
    assert_eq!(push_blob(&app, "stray/app", &stray), stray_digest);
    assert_blob(&app, "stray/app", &stray_digest, &stray);

    let audit = app.get("/api/v1/audit?n=100").json();
    let collected: Vec<&Value> = audit["entries"].as_array().expect("audit entries").iter().filter(|e| e["action"] == "gc.blob").collect();
    assert!(
        collected.iter().any(|e| e["digest"] == stray_digest.as_str() && e["details"]["stray"] == true),
        "no audit entry for the stray: {audit}"
    );
}

fn uuid_like() -> String {
    format!("00000000-0000-4000-8000-{:012x}", std::process::id() as u64 * 7919 + unique_token().len() as u64)
}

/// The sweep on either backend, through the store's own listing: with no
/// grace, bytes at a blob address that no row accounts for go, while the
/// blobs of a pushed image stay.
fn gc_sweep_lists_the_store(b: Backend) {
    let app = TestApp::builder().backend(b).env("WHARF_GC__GRACE", "0s").start();
    let image = push_image(&app, "sweep/app", Some("v1"), 2);
    let stray = unique_bytes(4000);
    let digest = sha256_digest(&stray);
    let key = blob_key(&digest);
    let exists: Box<dyn Fn() -> bool> = match app.s3_location(&key) {
        Some((bucket_url, object)) => {
            let client = reqwest::blocking::Client::new();
            let put = client
                .put(format!("{bucket_url}/{object}"))
                .header("Content-Type", "application/octet-stream")
                .body(stray.clone())
                .send()
                .expect("PUT to the test S3 server");
            assert!(put.status().is_success(), "planting the stray: {}", put.status());
            Box::new(move || {
                let listing = client
                    .get(&bucket_url)
                    .query(&[("list-type", "2"), ("prefix", object.as_str())])
                    .send()
                    .and_then(|r| r.text())
                    .expect("listing on the test S3 server");
                listing.contains("<KeyCount>1</KeyCount>")
            })
        }
        None => {
            let path = app.data_dir().join("blobs").join(&key);
            plant(&path, &stray, Duration::from_secs(1));
            Box::new(move || path.exists())
        }
    };
    assert!(exists(), "the stray was not planted");
    let report = gc(&app, false);
    assert_eq!(report["blobs_deleted"], 0, "{report}");
    assert_eq!(report["strays_deleted"], 1, "{report}");
    assert!(!exists(), "the stray is still in the store");
    assert_pulls(&app, "sweep/app", "v1");
    assert_pulls(&app, "sweep/app", &image.digest);
}
