//! Backup and restore, black-box: `wharf backup create` beside a serving
//! Wharf while a client keeps pushing, `wharf backup verify`, and
//! `wharf restore` into a wiped data directory, then pulls, a rollback and
//! the audit chain over HTTP. Damaged backups (a flipped byte in a blob, a
//! truncated database) are refused by verify and restore, naming the damage,
//! before anything is overwritten.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

/// Runs `wharf args...` with only `env` of the WHARF_/AWS_ variables.
fn wharf(args: &[&str], env: &[(String, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
    for (k, _) in std::env::vars() {
        if k.starts_with("WHARF_") || k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args).envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str()))).stdin(Stdio::null());
    cmd.output().expect("running wharf")
}

/// The variables a `wharf` command beside `app` needs for its database:
/// on PostgreSQL (WHARF_TEST_DATABASE=postgres) the server's database.url.
fn db_env(app: &TestApp) -> Vec<(String, String)> {
    app.database_url().map(|url| ("WHARF_DATABASE__URL".to_owned(), url.to_owned())).into_iter().collect()
}

/// Runs `sql` on `app`'s PostgreSQL database and returns the first column
/// of the first row as text. On a thread: the synchronous client may not
/// run inside a runtime.
fn pg_query(app: &TestApp, sql: &str) -> Option<String> {
    let (url, sql) = (app.database_url().expect("a PostgreSQL test").to_owned(), sql.to_owned());
    thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect to the test database");
        client.batch_execute("SET client_min_messages = warning").unwrap();
        client.simple_query(&sql).unwrap_or_else(|e| panic!("{sql}: {e}")).into_iter().find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("").to_owned()),
            _ => None,
        })
    })
    .join()
    .unwrap()
}

/// Wipes the data directory, and on PostgreSQL every table of the database.
fn wipe(app: &TestApp) {
    std::fs::remove_dir_all(app.data_dir()).unwrap();
    if app.database_url().is_some() {
        pg_query(app, "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
    }
}

/// What a refused restore must leave unchanged: the SQLite file, or on
/// PostgreSQL the audit chain and the tags.
fn metadata_fingerprint(app: &TestApp) -> String {
    match app.database_url() {
        Some(_) => pg_query(
            app,
            "SELECT (SELECT string_agg(hash, ',' ORDER BY id) FROM audit_log) || '/' || (SELECT string_agg(digest, ',' ORDER BY repository_id, name) FROM tags)",
        )
        .unwrap_or_default(),
        None => sha_of_file(&app.data_dir().join("wharf.db")),
    }
}

fn text(out: &Output) -> String {
    format!("status {}\nstdout:\n{}\nstderr:\n{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[track_caller]
fn ok_json(out: Output) -> Value {
    assert!(out.status.success(), "wharf failed: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out)))
}

#[track_caller]
fn refused(out: Output, needle: &str) -> String {
    let all = text(&out);
    assert!(!out.status.success(), "wharf should have failed: {all}");
    assert!(all.contains(needle), "the error should say {needle:?}: {all}");
    all
}

fn backup(app: &TestApp, dest: &str, env: &[(String, String)]) -> Value {
    let data = app.data_dir().to_str().unwrap();
    ok_json(wharf(&["backup", "create", dest, "--data-dir", data, "--json"], env))
}

fn restore(data_dir: &Path, src: &str, env: &[(String, String)], force: bool) -> Output {
    let mut args = vec!["restore", src, "--data-dir", data_dir.to_str().unwrap(), "--json"];
    if force {
        args.push("--force");
    }
    wharf(&args, env)
}

fn promote(app: &TestApp, repo: &str, reference: &str, stage: &str) {
    app.req(Method::POST, &format!("/api/v1/repositories/{repo}/promotions"))
        .header("Content-Type", "application/json")
        .body(json!({"reference": reference, "stage": stage}).to_string())
        .send()
        .expect(201);
}

/// Pushes an image and promotes it through every stage to prod.
fn ship(app: &TestApp, repo: &str, tag: &str) -> Image {
    let image = push_image(app, repo, Some(tag), 2);
    for stage in ["test", "preprod", "prod"] {
        promote(app, repo, tag, stage);
    }
    image
}

/// Pulls the manifest and every blob of `image` and checks their bytes.
#[track_caller]
fn pull(app: &TestApp, image: &Image) {
    assert_manifest(app, &image.repo, &image.digest, OCI_MANIFEST, &image.manifest);
    assert_blob(app, &image.repo, &image.config_digest, &image.config);
    for (digest, data) in image.layer_digests.iter().zip(&image.layers) {
        assert_blob(app, &image.repo, digest, data);
    }
}

fn prod_digest(app: &TestApp, repo: &str) -> String {
    app.head(&format!("/v2/{repo}/manifests/prod")).expect(200).must_header("docker-content-digest")
}

#[track_caller]
fn audit_verifies(app: &TestApp) -> Value {
    let r = app.get("/api/v1/audit/verify");
    r.expect(200);
    let report = r.json();
    assert_eq!(report["valid"], true, "audit chain: {report}");
    report
}

fn blob_file(backup_dir: &Path, digest: &str) -> PathBuf {
    backup_dir.join(blob_key(digest))
}

fn copy_dir(from: &Path, to: &Path) {
    let out = Command::new("cp").arg("-a").arg(from).arg(to).output().expect("cp");
    assert!(out.status.success(), "cp -a: {out:?}");
}

fn sha_of_file(path: &Path) -> String {
    sha256_digest(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

#[test]
fn backup_while_pushing_then_wipe_restore_pull_and_roll_back() {
    let mut app = TestApp::start();
    let env = db_env(&app);
    let repo = repo("backup");
    let releases: Vec<Image> = (1..=3).map(|n| ship(&app, &repo, &format!("v{n}"))).collect();
    assert_eq!(prod_digest(&app, &repo), releases[2].digest);

    // A client keeps pushing to another repository the whole time.
    let busy = repo.replace("backup", "busy");
    let stop = AtomicBool::new(false);
    let pushed: Mutex<Vec<Image>> = Mutex::default();
    let dest = tempfile::tempdir().unwrap();
    let dest_str = dest.path().join("wharf-backups").to_str().unwrap().to_owned();
    let (first, before_backup, during_backup) = thread::scope(|scope| {
        let pusher = scope.spawn(|| {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let image = push_image(&app, &busy, Some(&format!("b{n}")), 1);
                pushed.lock().unwrap().push(image);
                n += 1;
            }
        });
        while pushed.lock().unwrap().len() < 3 {
            thread::sleep(std::time::Duration::from_millis(20));
        }
        let before = pushed.lock().unwrap().len();
        let first = backup(&app, &dest_str, &env);
        let during = pushed.lock().unwrap().len() - before;
        stop.store(true, Ordering::SeqCst);
        pusher.join().unwrap();
        (first, before, during)
    });
    assert!(during_backup > 0, "the client pushed while the backup ran");
    assert_eq!(first["blobs_copied"], first["blobs"], "a first backup copies every blob: {first}");
    assert!(first["blobs"].as_u64().unwrap() >= 9 + before_backup as u64 * 2, "{first}");
    assert_eq!(first["audit"]["valid"], true);
    assert_eq!(first["counts"]["releases"], 9, "3 releases in each of 3 stages: {first}");

    // Incremental: a second backup copies only what is new since the first.
    let second = backup(&app, &dest_str, &env);
    let extra = push_image(&app, &repo, Some("extra"), 2);
    let third = backup(&app, &dest_str, &env);
    assert_eq!(third["blobs_copied"], 3, "only the new image's config and 2 layers are copied: {third}");
    assert_eq!(third["blobs"].as_u64().unwrap(), second["blobs"].as_u64().unwrap() + 3, "{second} {third}");
    assert_eq!(third["bytes_copied"].as_u64().unwrap(), (extra.config.len() + extra.layers.iter().map(Vec::len).sum::<usize>()) as u64);
    let verify = wharf(&["backup", "verify", &dest_str], &[]);
    assert!(verify.status.success(), "verify: {}", text(&verify));
    assert!(String::from_utf8_lossy(&verify.stdout).contains("is sound"), "{}", text(&verify));

    // A restore refuses a data directory that a server holds.
    refused(restore(app.data_dir(), &dest_str, &env, true), "in use by another wharf server");

    // Wipe, restore the newest snapshot, serve again.
    app.stop();
    wipe(&app);
    let restored = ok_json(restore(app.data_dir(), &dest_str, &env, false));
    assert_eq!(restored["snapshot"], third["snapshot"]);
    assert_eq!(restored["blobs_copied"], third["blobs"], "{restored}");
    assert_eq!(restored["blobs_verified"], third["blobs"], "{restored}");
    assert_eq!(restored["stage_pointers_checked"], 3, "{restored}");
    assert_eq!(restored["audit_head"], third["audit"]["head"]);
    // Restoring over an existing database needs --force.
    refused(restore(app.data_dir(), &dest_str, &env, false), "--force");
    app.start_again();

    assert_eq!(prod_digest(&app, &repo), releases[2].digest, ":prod is the last release");
    app.get(&format!("/v2/{repo}/manifests/prod")).expect(200).expect_header("docker-content-digest", &releases[2].digest);
    for image in releases.iter().chain([&extra]) {
        pull(&app, image);
    }
    // Every image whose push finished before the backup started is there.
    for image in pushed.lock().unwrap().iter().take(before_backup) {
        pull(&app, image);
    }
    app.req(Method::POST, &format!("/api/v1/repositories/{repo}/stages/prod/rollback")).send().expect(201);
    assert_eq!(prod_digest(&app, &repo), releases[1].digest, "rolled back to v2");
    let audit = audit_verifies(&app);
    assert!(
        audit["rows_checked"].as_u64().unwrap() > third["audit"]["rows"].as_u64().unwrap(),
        "the rollback extended the restored chain: {audit}"
    );
}

#[test]
fn damaged_backups_are_refused_by_verify_and_restore_naming_the_damage() {
    let mut app = TestApp::start();
    let env = db_env(&app);
    let repo = repo("damage");
    let image = ship(&app, &repo, "v1");
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    let good_str = good.to_str().unwrap().to_owned();
    let manifest = backup(&app, &good_str, &env);
    let snapshot = manifest["snapshot"].as_str().unwrap().to_owned();

    let flipped = tmp.path().join("flipped");
    copy_dir(&good, &flipped);
    let layer = blob_file(&flipped, &image.layer_digests[1]);
    let mut bytes = std::fs::read(&layer).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(&layer, &bytes).unwrap();
    let computed = sha256_digest(&bytes);

    let truncated = tmp.path().join("truncated");
    copy_dir(&good, &truncated);
    let db = truncated.join("snapshots").join(&snapshot).join("wharf.db");
    let len = std::fs::metadata(&db).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&db).unwrap().set_len(len / 2).unwrap();

    let blob_damage = format!("blob {} content hashes to {computed}", image.layer_digests[1]);
    refused(wharf(&["backup", "verify", flipped.to_str().unwrap()], &[]), &blob_damage);
    refused(wharf(&["backup", "verify", truncated.to_str().unwrap()], &[]), "database truncated/corrupt");

    // Restore refuses both before touching the data directory.
    app.stop();
    let (db_before, blob_before) =
        (metadata_fingerprint(&app), sha_of_file(&blob_file(&app.data_dir().join("blobs"), &image.layer_digests[1])));
    refused(restore(app.data_dir(), flipped.to_str().unwrap(), &env, true), &blob_damage);
    let out = refused(restore(app.data_dir(), truncated.to_str().unwrap(), &env, true), "database truncated/corrupt");
    assert!(out.contains("nothing was restored"), "{out}");
    assert_eq!(metadata_fingerprint(&app), db_before, "a refused restore changed the database");
    assert_eq!(sha_of_file(&blob_file(&app.data_dir().join("blobs"), &image.layer_digests[1])), blob_before);
    // SQLite: into a data directory with no database yet, nothing is left behind.
    if app.database_url().is_none() {
        let fresh = tmp.path().join("fresh-data");
        refused(restore(&fresh, flipped.to_str().unwrap(), &[], false), &blob_damage);
        assert!(!fresh.join("wharf.db").exists(), "a refused restore left a database behind");
    }

    // The intact backup still verifies, and the server still serves.
    let verify = wharf(&["backup", "verify", &good_str], &[]);
    assert!(verify.status.success(), "{}", text(&verify));
    app.start_again();
    pull(&app, &image);
}

#[test]
fn backup_to_an_s3_prefix_and_restore_from_it() {
    if !s3_available() {
        return;
    }
    let get = |k: &str| std::env::var(k).unwrap();
    let mut env: Vec<(String, String)> = [
        ("WHARF_STORAGE__S3__ENDPOINT", get("WHARF_TEST_S3_ENDPOINT")),
        ("WHARF_STORAGE__S3__REGION", get("WHARF_TEST_S3_REGION")),
        ("WHARF_STORAGE__S3__ACCESS_KEY_ID", get("WHARF_TEST_S3_ACCESS_KEY_ID")),
        ("WHARF_STORAGE__S3__SECRET_ACCESS_KEY", get("WHARF_TEST_S3_SECRET_ACCESS_KEY")),
        ("WHARF_STORAGE__S3__ALLOW_HTTP", "true".into()),
        ("WHARF_STORAGE__S3__PATH_STYLE", "true".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let dest = format!("s3://{}/wharf-backup-tests/{}", get("WHARF_TEST_S3_BUCKET"), unique_token());

    let mut app = TestApp::start();
    env.extend(db_env(&app));
    let repo = repo("s3backup");
    let image = ship(&app, &repo, "v1");
    let first = backup(&app, &dest, &env);
    assert_eq!(first["blobs_copied"], 2 + 1, "{first}");
    let second = backup(&app, &dest, &env);
    assert_eq!(second["blobs_copied"], 0, "nothing new: {second}");
    let verify = wharf(&["backup", "verify", &dest], &env);
    assert!(verify.status.success(), "{}", text(&verify));

    app.stop();
    wipe(&app);
    let restored = ok_json(restore(app.data_dir(), &dest, &env, false));
    assert_eq!(restored["snapshot"], second["snapshot"]);
    app.start_again();
    assert_eq!(prod_digest(&app, &repo), image.digest);
    pull(&app, &image);
    audit_verifies(&app);
}

#[test]
fn the_server_backs_up_on_its_schedule_and_prunes_to_keep() {
    let dest = tempfile::tempdir().unwrap();
    let dest_str = dest.path().to_str().unwrap().to_owned();
    let mut app = TestApp::builder()
        .env("WHARF_BACKUP__DESTINATION", &dest_str)
        .env("WHARF_BACKUP__SCHEDULE", "1s")
        .env("WHARF_BACKUP__KEEP", "2")
        .start();
    let repo = repo("scheduled");
    let image = ship(&app, &repo, "v1");
    let snapshots = || -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(dest.path().join("snapshots"))
            .map(|d| {
                d.flatten().filter(|e| e.path().join("manifest.json").exists()).map(|e| e.file_name().to_string_lossy().into()).collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // Wait for a backup that holds the image, then for more runs than `keep`.
    let mut holds_image = false;
    while std::time::Instant::now() < deadline && !(holds_image && app.log().matches("backup finished").count() >= 4) {
        thread::sleep(std::time::Duration::from_millis(200));
        holds_image = blob_file(dest.path(), &image.layer_digests[0]).exists() && snapshots().len() == 2;
    }
    assert!(holds_image, "no scheduled backup holds the image; log:\n{}", app.log());
    assert!(app.log().matches("backup finished").count() >= 4, "the schedule kept running; log:\n{}", app.log());
    app.stop();
    assert_eq!(snapshots().len(), 2, "backup.keep = 2 leaves the newest two snapshots");
    let verify = wharf(&["backup", "verify", &dest_str], &[]);
    assert!(verify.status.success(), "{}", text(&verify));
}
