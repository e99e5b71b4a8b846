//! Image diff, continued: the summary each promotion keeps in the release
//! history, operating-system package diffs, and the `[diff]` bounds.

mod common;
mod diff_support;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use diff_support::*;
use serde_json::{json, Value};

const DPKG_V1: &str = "Package: base-files\nStatus: install ok installed\nVersion: 12.4\n\n\
                       Package: libssl3\nStatus: install ok installed\nVersion: 3.0.11-1\nDescription: SSL\n more text\n\n\
                       Package: curl\nStatus: install ok installed\nVersion: 7.88.1-10\n\n\
                       Package: gone-config\nStatus: deinstall ok config-files\nVersion: 1\n";
const DPKG_V2: &str = "Package: base-files\nStatus: install ok installed\nVersion: 12.4\n\n\
                       Package: libssl3\nStatus: install ok installed\nVersion: 3.0.13-1\n\n\
                       Package: jq\nStatus: install ok installed\nVersion: 1.6-2.1\n";

/// The release history of `stage`, once no summary in it is pending.
fn settled_history(app: &TestApp, repo: &str, stage: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = app.get(&format!("/api/v1/repositories/{repo}/stages/{stage}/releases"));
        r.expect(200);
        let h = r.json();
        let pending = h["releases"].as_array().unwrap().iter().any(|r| r["diff"]["state"] == "pending");
        if !pending {
            return h;
        }
        assert!(Instant::now() < deadline, "summaries still pending after 60 s: {h:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn names(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|p| format!("{}={}", p["name"].as_str().unwrap(), p["version"].as_str().unwrap_or(""))).collect()
}

/// dpkg and apk databases: packages added, removed and changed version,
/// read from the merged filesystem (the upper layer's file wins, a whiteout
/// removes it), and a warm diff reads no layer.
#[test]
fn packages_added_removed_and_changed_from_the_merged_package_databases() {
    let app = TestApp::start();
    let repo = repo("diff/pkgs");
    let base = gzip(&tar_of(&[E::Dir("var/lib/dpkg"), file("var/lib/dpkg/status", DPKG_V1.as_bytes()), file("etc/os", b"debian")]));
    // The upgrade rewrites the database in an upper layer.
    let upgrade = zstd_frames(&tar_of(&[file("var/lib/dpkg/status", DPKG_V2.as_bytes()), file("usr/bin/jq", b"jq")]), 300);
    let cfg = || config(&[], "", json!({}), &[], &[]);
    push_image_with(&app, &repo, "v1", cfg(), &[(OCI_LAYER, base.clone())]);
    push_image_with(&app, &repo, "v2", cfg(), &[(OCI_LAYER, base.clone()), (LAYER_ZSTD, upgrade)]);

    let d = diff_ok(&app, &repo, "from=v1&to=v2");
    let p = &d["packages"];
    assert_eq!(p["databases"], json!(["dpkg"]), "{p:#}");
    assert_eq!(names(&p["added"]), ["jq=1.6-2.1"]);
    assert_eq!(names(&p["removed"]), ["curl=7.88.1-10"]);
    assert_eq!(p["changed"], json!([{"name": "libssl3", "from": "3.0.11-1", "to": "3.0.13-1"}]));
    assert_eq!(p["skipped"], json!([]));
    let s = &d["summary"];
    assert_eq!((s["packages_added"].clone(), s["packages_removed"].clone(), s["packages_changed"].clone()), (json!(1), json!(1), json!(1)));
    assert_eq!(s["layers_indexed"], 2, "{s}");
    // Warm: every index is stored, packages included.
    let warm = diff_ok(&app, &repo, "from=v2&to=v1");
    assert_eq!((warm["summary"]["layers_indexed"].clone(), warm["summary"]["layers_cached"].clone()), (json!(0), json!(2)));
    assert_eq!(names(&warm["packages"]["added"]), ["curl=7.88.1-10"]);
    assert_eq!(warm["packages"]["changed"][0]["to"], "3.0.11-1");

    // A whiteout of the database removes every package; images with none report null.
    let wipe = gzip(&tar_of(&[file("var/lib/dpkg/.wh.status", b"")]));
    push_image_with(&app, &repo, "wiped", cfg(), &[(OCI_LAYER, base.clone()), (OCI_LAYER, wipe)]);
    let d = diff_ok(&app, &repo, "from=v1&to=wiped");
    assert_eq!(names(&d["packages"]["removed"]), ["base-files=12.4", "curl=7.88.1-10", "libssl3=3.0.11-1"]);
    let plain = gzip(&tar_of(&[file("hello", b"hi")]));
    push_image_with(&app, &repo, "plain", cfg(), &[(OCI_LAYER, plain)]);
    assert_eq!(diff_ok(&app, &repo, "from=plain&to=plain")["packages"], Value::Null);

    // Alpine's apk database.
    let apk1 = "P:musl\nV:1.2.4-r1\nA:x86_64\n\nP:busybox\nV:1.36.1-r0\n\n";
    let apk2 = "P:musl\nV:1.2.4-r2\nA:x86_64\n\nP:busybox\nV:1.36.1-r0\n\nP:curl\nV:8.5.0-r0\n\n";
    let a1 = gzip(&tar_of(&[file("lib/apk/db/installed", apk1.as_bytes())]));
    let a2 = gzip_members(&tar_of(&[file("lib/apk/db/installed", apk2.as_bytes())]), 200);
    push_image_with(&app, &repo, "alpine1", cfg(), &[(OCI_LAYER, a1)]);
    push_image_with(&app, &repo, "alpine2", cfg(), &[(OCI_LAYER, a2)]);
    let d = diff_ok(&app, &repo, "from=alpine1&to=alpine2");
    assert_eq!(d["packages"]["databases"], json!(["apk"]));
    assert_eq!(names(&d["packages"]["added"]), ["curl=8.5.0-r0"]);
    assert_eq!(d["packages"]["removed"], json!([]));
    assert_eq!(d["packages"]["changed"], json!([{"name": "musl", "from": "1.2.4-r1", "to": "1.2.4-r2"}]));
}

/// Each promotion keeps the summary of its diff against the release it
/// replaced, computed after the promotion commits; the history shows it
/// (or why there is none), the CLI too, and the audit chain is untouched.
#[test]
fn the_release_history_shows_each_promotions_diff_summary() {
    let app = TestApp::start();
    let repo = repo("diff/history");
    let cfg = |user: &str| config(&["A=1"], user, json!({}), &[], &[]);
    let base = gzip(&tar_of(&[file("var/lib/dpkg/status", DPKG_V1.as_bytes()), file("app/keep", b"k")]));
    let v1 = push_image_with(&app, &repo, "v1", cfg("root"), &[(OCI_LAYER, base.clone())]);
    let top = gzip(&tar_of(&[file("app/new", b"12345"), file("var/lib/dpkg/status", DPKG_V2.as_bytes())]));
    push_image_with(&app, &repo, "v2", cfg("app"), &[(OCI_LAYER, base.clone()), (OCI_LAYER, top)]);
    let bad = gzip(&tar_of(&[E::Raw("../escape", b"x")]));
    push_image_with(&app, &repo, "v3", cfg("app"), &[(OCI_LAYER, base.clone()), (OCI_LAYER, bad)]);

    promote(&app, &repo, "v1", "test");
    promote(&app, &repo, "v2", "test");
    let audit_before = app.get("/api/v1/audit?n=100").json();
    let h = settled_history(&app, &repo, "test");
    let releases = h["releases"].as_array().unwrap();
    assert_eq!(releases.len(), 2);
    let (second, first) = (&releases[0]["diff"], &releases[1]["diff"]);
    assert_eq!(first["state"], "unavailable");
    assert!(first["reason"].as_str().unwrap().contains("first release"), "{first}");
    assert_eq!(second["state"], "ready", "{second}");
    assert_eq!(second["from_digest"], v1);
    let s = &second["summary"];
    assert_eq!((s["files_added"].clone(), s["files_modified"].clone(), s["files_removed"].clone()), (json!(1), json!(1), json!(0)), "{s}");
    assert_eq!((s["layers_shared"].clone(), s["layers_added"].clone(), s["config_changes"].clone()), (json!(1), json!(1), json!(1)));
    assert_eq!((s["packages_added"].clone(), s["packages_removed"].clone(), s["packages_changed"].clone()), (json!(1), json!(1), json!(1)));
    assert_eq!(s["bytes_added"], 5);

    // A release whose diff cannot be computed says why.
    promote(&app, &repo, "v3", "test");
    let h = settled_history(&app, &repo, "test");
    let third = &h["releases"][0]["diff"];
    assert_eq!(third["state"], "unavailable", "{third}");
    assert!(third["reason"].as_str().unwrap().contains("unsafe path"), "{third}");
    // Summaries are recorded apart: the audit chain gained only the third promotion and still verifies.
    let audit_after = app.get("/api/v1/audit?n=100").json();
    let entries = |a: &Value| a["entries"].as_array().cloned().unwrap_or_default();
    assert_eq!(entries(&audit_after)[entries(&audit_after).len() - entries(&audit_before).len()..], entries(&audit_before)[..]);
    assert_eq!(app.get("/api/v1/audit/verify").json()["valid"], true);

    // `wharf history --stage` shows the summary in a CHANGES column.
    let out = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["history", &repo, "--stage", "test", "--url", &app.base()])
        .env("HOME", app.data_dir())
        .env("XDG_CONFIG_HOME", app.data_dir().join("xdg"))
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}\n{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].ends_with("CHANGES"), "{table}");
    assert!(lines[2].contains("+1 -0 ~1 files, 1 config, +1 layers") && lines[2].contains("packages +1 -1 ~1"), "{table}");
    assert!(lines[1].contains("unavailable: layer") && lines[3].contains("unavailable: first release"), "{table}");
}

/// With summaries off, a promotion records why there is none.
#[test]
fn release_summaries_can_be_turned_off() {
    let app = TestApp::builder().env("WHARF_DIFF__RELEASE_SUMMARIES", "false").start();
    let repo = repo("diff/off");
    for (tag, data) in [("a", b"1"), ("b", b"2")] {
        push_image_with(&app, &repo, tag, config(&[], "", json!({}), &[], &[]), &[(OCI_LAYER, gzip(&tar_of(&[file("f", data)])))]);
        promote(&app, &repo, tag, "test");
    }
    let h = settled_history(&app, &repo, "test");
    assert_eq!(h["releases"][0]["diff"]["state"], "unavailable");
    assert!(h["releases"][0]["diff"]["reason"].as_str().unwrap().contains("diff.release_summaries"), "{h}");
}

/// The `[diff]` bounds come from the configuration; exceeding one is a
/// clear 4xx naming it, and pages follow the configured sizes.
#[test]
fn configured_bounds_are_enforced_with_clear_errors() {
    let app = TestApp::builder()
        .env("WHARF_DIFF__MAX_ENTRIES", "20")
        .env("WHARF_DIFF__MAX_LAYER_BYTES", "100000")
        .env("WHARF_DIFF__DEFAULT_PAGE_SIZE", "4")
        .env("WHARF_DIFF__MAX_PAGE_SIZE", "8")
        .start();
    let repo = repo("diff/bounds");
    let cfg = || config(&[], "", json!({}), &[], &[]);
    let names: Vec<String> = (0..15).map(|i| format!("f{i:02}")).collect();
    let entries: Vec<E<'_>> = names.iter().map(|n| file(n, b"x")).collect();
    push_image_with(&app, &repo, "empty", cfg(), &[(OCI_LAYER, gzip(&tar_of(&[])))]);
    push_image_with(&app, &repo, "fifteen", cfg(), &[(OCI_LAYER, gzip(&tar_of(&entries)))]);

    // Pages of 4 by default, up to 8 on request; the cursor walks them all.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = diff_req(&app, &repo, &format!("from=empty&to=fifteen&cursor={cursor}"));
        r.expect(200);
        let d = r.json();
        assert!(d["files"].as_array().unwrap().len() <= 4);
        seen.extend(d["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap().to_owned()));
        match d["next_cursor"].as_str() {
            Some(c) => {
                assert!(r.must_header("link").contains("rel=\"next\""));
                cursor = c.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(seen, names.iter().map(|n| format!("/{n}")).collect::<Vec<_>>());
    assert_eq!(diff_ok(&app, &repo, "from=empty&to=fifteen&n=8")["files"].as_array().unwrap().len(), 8);
    let r = diff_req(&app, &repo, "from=empty&to=fifteen&n=9");
    r.expect_error(400, &["INVALID_REQUEST"]);
    assert!(r.text().contains("diff.max_page_size = 8"), "{}", r.describe());

    // Over the entry and byte bounds: 422 naming the bound.
    let many: Vec<String> = (0..21).map(|i| format!("m{i}")).collect();
    let many: Vec<E<'_>> = many.iter().map(|n| file(n, b"")).collect();
    push_image_with(&app, &repo, "many", cfg(), &[(OCI_LAYER, gzip(&tar_of(&many)))]);
    let r = diff_req(&app, &repo, "from=empty&to=many");
    r.expect_error(422, &["LAYER_INVALID"]);
    assert!(r.text().contains("more than 20 entries"), "{}", r.describe());
    let big = unique_bytes(100_001);
    push_image_with(&app, &repo, "big", cfg(), &[(OCI_LAYER, gzip(&tar_of(&[file("big", &big)])))]);
    let r = diff_req(&app, &repo, "from=empty&to=big");
    r.expect_error(422, &["LAYER_INVALID"]);
    assert!(r.text().contains("declare more than 100000 bytes"), "{}", r.describe());
    app.get("/v2/").expect(200);
}
