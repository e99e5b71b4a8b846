//! Image diff over HTTP (`GET /api/v1/repositories/<name>/diff`), with
//! layers the test builds itself: tar entries of every kind, gzip with
//! several members, zstd with several frames, whiteouts, opaque directories,
//! indexes, releases, and hostile layers.

mod common;
mod diff_support;

use common::*;
use diff_support::*;
use reqwest::Method;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

const LONG_PAX: &str =
    "usr/share/pax/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/file.txt";
const LONG_GNU: &str =
    "usr/share/gnu/cccccccccccccccccccccccccccccccccccccccccccccccccccccccccc/dddddddddddddddddddddddddddddddddddddddddddddd/file.txt";

/// Two images sharing a base layer, with one of each kind of change.
#[test]
fn diff_of_two_images_reports_files_config_and_layers() {
    let app = TestApp::start();
    let repo = repo("diff/app");

    let base = tar_of(&[
        E::Dir("etc"),
        file("etc/keep", b"same"),
        file("etc/gone", b"whited out"),
        file("etc/same-size", b"aaaa"),
        E::Dir("opt/cache"),
        file("opt/cache/a", b"1"),
        file("opt/cache/b", b"2"),
        E::File { path: "bin/tool", data: b"#!tool", mode: 0o755, uid: 0 },
        E::File { path: "home/app/data", data: b"d", mode: 0o644, uid: 0 },
        E::Symlink("lib/link", "target-1"),
        file("usr/bin/x", b"old"),
        E::Hardlink("usr/bin/y", "usr/bin/x"),
        E::Dir("srv/d"),
        file("srv/d/f", b"inside"),
    ]);
    // Several gzip members, cut mid-entry.
    let base = gzip_members(&base, 1000);
    let from_only = gzip(&tar_of(&[file("from-only", b"bye")]));
    let upper = tar_of(&[
        file("etc/.wh.gone", b""),
        E::Dir("opt/cache"),
        file("opt/cache/.wh..wh..opq", b""),
        file("opt/cache/c", b"3"),
        file("etc/same-size", b"bbbb"),
        E::File { path: "bin/tool", data: b"#!tool", mode: 0o700, uid: 0 },
        E::File { path: "home/app/data", data: b"d", mode: 0o644, uid: 1000 },
        E::Symlink("lib/link", "target-2"),
        file("srv/d", b"now a file"),
    ]);
    let upper = zstd_frames(&upper, 700);
    let top = tar_of(&[
        file("usr/bin/x", b"new!"),
        E::Hardlink("usr/bin/y", "usr/bin/x"),
        file("new-file", b"hello"),
        E::Pax(LONG_PAX, b"pax"),
        file(LONG_GNU, b"gnu"),
    ]);

    let from = push_image_with(
        &app,
        &repo,
        "v1",
        config(&["PATH=/bin", "MODE=old"], "root", json!({"version": "1", "team": "a"}), &["80/tcp"], &["BASE", "FROM-ONLY"]),
        &[(OCI_LAYER, base.clone()), (OCI_LAYER, from_only.clone())],
    );
    let to = push_image_with(
        &app,
        &repo,
        "v2",
        config(
            &["PATH=/bin", "MODE=new", "EXTRA=1"],
            "app",
            json!({"version": "2", "team": "a"}),
            &["80/tcp", "443/tcp"],
            &["BASE", "UPPER", "TOP"],
        ),
        &[(OCI_LAYER, base.clone()), (LAYER_ZSTD, upper.clone()), (LAYER_TAR, top.clone())],
    );

    let d = diff_ok(&app, &repo, "from=v1&to=v2&n=1000");
    assert_eq!(d["from"]["digest"], from);
    assert_eq!(d["to"]["digest"], to);

    // Files.
    let files = &d["files"];
    let changes: Vec<(String, String)> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap().to_owned(), f["change"].as_str().unwrap().to_owned()))
        .collect();
    let mut expected: Vec<(String, String)> = [
        ("/etc/gone", "removed"),
        ("/opt/cache/a", "removed"),
        ("/opt/cache/b", "removed"),
        ("/srv/d/f", "removed"),
        ("/from-only", "removed"),
        ("/opt/cache/c", "added"),
        ("/new-file", "added"),
        (&format!("/{LONG_PAX}"), "added"),
        (&format!("/{LONG_GNU}"), "added"),
        ("/etc/same-size", "modified"),
        ("/bin/tool", "modified"),
        ("/home/app/data", "modified"),
        ("/lib/link", "modified"),
        ("/usr/bin/x", "modified"),
        ("/usr/bin/y", "modified"),
        ("/srv/d", "modified"),
    ]
    .iter()
    .map(|(p, c)| (p.to_string(), c.to_string()))
    .collect();
    expected.sort();
    assert_eq!(changes, expected, "{files:#}");

    let same_size = by_path(files, "/etc/same-size");
    assert_eq!((same_size["from"]["size"].clone(), same_size["to"]["size"].clone()), (json!(4), json!(4)));
    assert_eq!(same_size["from"]["sha256"], sha(b"aaaa"));
    assert_eq!(same_size["to"]["sha256"], sha(b"bbbb"));
    let tool = by_path(files, "/bin/tool");
    assert_eq!((tool["from"]["mode"].clone(), tool["to"]["mode"].clone()), (json!("0755"), json!("0700")));
    assert_eq!(tool["from"]["sha256"], tool["to"]["sha256"]);
    let data = by_path(files, "/home/app/data");
    assert_eq!((data["from"]["uid"].clone(), data["to"]["uid"].clone(), data["to"]["gid"].clone()), (json!(0), json!(1000), json!(1000)));
    assert_eq!(data["from"]["mode"], data["to"]["mode"]);
    let link = by_path(files, "/lib/link");
    assert_eq!((link["from"]["link"].clone(), link["to"]["link"].clone()), (json!("target-1"), json!("target-2")));
    assert_eq!(link["to"]["type"], "symlink");
    let y = by_path(files, "/usr/bin/y");
    assert_eq!((y["to"]["type"].clone(), y["to"]["link"].clone()), (json!("hardlink"), json!("/usr/bin/x")));
    assert_eq!((y["from"]["sha256"].clone(), y["to"]["sha256"].clone()), (json!(sha(b"old")), json!(sha(b"new!"))));
    let srv = by_path(files, "/srv/d");
    assert_eq!((srv["from"]["type"].clone(), srv["to"]["type"].clone()), (json!("dir"), json!("file")));
    assert_eq!(by_path(files, &format!("/{LONG_PAX}"))["to"]["sha256"], sha(b"pax"));
    assert!(by_path(files, "/etc/gone")["to"].is_null());

    // Config: only what changed, Env and Labels by name.
    let fields: Vec<&str> = d["config"].as_array().unwrap().iter().map(|c| c["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["Env", "User", "ExposedPorts", "Labels", "history"], "{:#}", d["config"]);
    assert_eq!(d["config"][0]["from"], json!({"MODE": "old", "EXTRA": null}));
    assert_eq!(d["config"][0]["to"], json!({"MODE": "new", "EXTRA": "1"}));
    assert_eq!((d["config"][1]["from"].clone(), d["config"][1]["to"].clone()), (json!("root"), json!("app")));
    assert_eq!(d["config"][2]["to"], json!(["443/tcp", "80/tcp"]));
    assert_eq!(d["config"][3]["from"], json!({"version": "1"}));

    // Layers: the base is shared, with its history line.
    let layers = &d["layers"];
    assert_eq!(layers["shared"], json!([{"digest": sha256_digest(&base), "size": base.len(), "history": "BASE"}]));
    assert_eq!(layers["removed"], json!([{"digest": sha256_digest(&from_only), "size": from_only.len(), "history": "FROM-ONLY"}]));
    let added: Vec<&str> = layers["added"].as_array().unwrap().iter().map(|l| l["history"].as_str().unwrap()).collect();
    assert_eq!(added, ["UPPER", "TOP"]);

    let s = &d["summary"];
    assert_eq!((s["files_added"].clone(), s["files_removed"].clone(), s["files_modified"].clone()), (json!(4), json!(5), json!(7)));
    assert_eq!(s["bytes_added"], json!(1 + 5 + 3 + 3));
    assert_eq!((s["layers_indexed"].clone(), s["layers_cached"].clone()), (json!(4), json!(0)), "{s:#}");

    // A second diff reads no layer again; the same answer, from the stored indexes.
    let again = diff_ok(&app, &repo, "from=v1&to=v2&n=1000");
    assert_eq!((again["summary"]["layers_indexed"].clone(), again["summary"]["layers_cached"].clone()), (json!(0), json!(4)));
    assert_eq!(again["files"], d["files"]);
    // And after a restart: the index is in the database, not in memory.
    let mut app = app;
    app.restart();
    let after_restart = diff_ok(&app, &repo, &format!("from={from}&to={to}&n=1000"));
    assert_eq!(after_restart["summary"]["layers_indexed"], json!(0));
    assert_eq!(after_restart["files"], d["files"]);

    // Paging: 5 per page, following next_cursor, gives the same list.
    let mut paged = Vec::new();
    let mut query = "from=v1&to=v2&n=5".to_string();
    let mut pages = 0;
    loop {
        let r = diff_req(&app, &repo, &query);
        r.expect(200);
        let page = r.json();
        let items = page["files"].as_array().unwrap();
        assert!(items.len() <= 5);
        paged.extend(items.iter().cloned());
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => {
                assert!(r.header("link").is_some_and(|l| l.contains("rel=\"next\"")), "{}", r.describe());
                query = format!("from=v1&to=v2&n=5&cursor={}", qenc(c));
            }
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 4);
    assert_eq!(Value::Array(paged), d["files"]);

    // The CLI prints the same diff readably, and whole as JSON.
    let home = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| -> String {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wharf"));
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("WHARF_")) {
            cmd.env_remove(k);
        }
        let out = cmd
            .args(args)
            .args(["--url", &app.base()])
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path())
            .env("DOCKER_CONFIG", home.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "wharf {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let text = cli(&["diff", &repo, "v1", "v2", "--files"]);
    for line in [
        "files   4 added (12 B), 5 removed",
        "  D /etc/gone",
        "  A /new-file",
        "  M /bin/tool  mode 0755 -> 0700",
        "  M /home/app/data  owner 0:0 -> 1000:1000",
        "  M /lib/link  link target-1 -> target-2",
        "  M /srv/d  type dir -> file",
        "  User          \"root\" -> \"app\"",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
    let json: Value = serde_json::from_str(&cli(&["diff", &repo, "v1", "v2", "--json"])).unwrap();
    assert_eq!(json["files"], d["files"]);

    // Identical images: nothing changed.
    let same = diff_ok(&app, &repo, "from=v2&to=v2");
    assert_eq!(same["files"], json!([]));
    assert_eq!(same["config"], json!([]));
    assert_eq!(same["summary"]["layers_shared"], json!(3));
}

/// An index resolves by platform, and `<stage>@<n>` names a release.
#[test]
fn diff_resolves_indexes_by_platform_and_releases_by_number() {
    let app = TestApp::start();
    let repo = repo("diff/multi");
    let (amd1, amd1_digest) = platform_image(&app, &repo, b"amd64 v1");
    let (arm1, _) = platform_image(&app, &repo, b"arm64 v1");
    let (amd2, _) = platform_image(&app, &repo, b"amd64 v2");
    let (arm2, arm2_digest) = platform_image(&app, &repo, b"arm64 v2");
    let i1 = push_manifest(&app, &repo, "r1", OCI_INDEX, &index_of(&[(&amd1, "amd64"), (&arm1, "arm64")]));
    let i2 = push_manifest(&app, &repo, "r2", OCI_INDEX, &index_of(&[(&amd2, "amd64"), (&arm2, "arm64")]));

    let d = diff_ok(&app, &repo, "from=r1&to=r2&platform=linux/arm64");
    assert_eq!((d["from"]["digest"].clone(), d["to"]["digest"].clone()), (json!(i1), json!(i2)));
    assert_eq!(d["to"]["platform"], "linux/arm64");
    assert_eq!(d["to"]["manifest"], arm2_digest);
    let arch = by_path(&d["files"], "/arch");
    assert_eq!((arch["from"]["sha256"].clone(), arch["to"]["sha256"].clone()), (json!(sha(b"arm64 v1")), json!(sha(b"arm64 v2"))));

    let r = diff_req(&app, &repo, "from=r1&to=r2");
    r.expect_error(400, &["PLATFORM_REQUIRED"]);
    assert!(r.text().contains("linux/amd64") && r.text().contains("linux/arm64"), "{}", r.describe());
    diff_req(&app, &repo, "from=r1&to=r2&platform=linux/s390x").expect_error(404, &["MANIFEST_UNKNOWN"]);
    // An index against a plain image: the platform picks the index's side.
    let mixed = diff_ok(&app, &repo, &format!("from={amd1_digest}&to=r2&platform=linux/amd64"));
    assert_eq!(mixed["from"]["platform"], Value::Null);
    assert_eq!(by_path(&mixed["files"], "/arch")["to"]["sha256"], sha(b"amd64 v2"));

    // Releases: test@1 is r1, test@2 is r2; the stage tag is the newest.
    promote(&app, &repo, "r1", "test");
    promote(&app, &repo, "r2", "test");
    let d = diff_ok(&app, &repo, "from=test@1&to=test@2&platform=linux/amd64");
    assert_eq!((d["from"]["digest"].clone(), d["to"]["digest"].clone()), (json!(i1), json!(i2)));
    assert_eq!(d["from"]["reference"], "test@1");
    let d = diff_ok(&app, &repo, "from=test@1&to=test&platform=linux/amd64");
    assert_eq!(d["to"]["digest"], json!(i2));
    diff_req(&app, &repo, "from=test@9&to=test").expect_error(404, &["MANIFEST_UNKNOWN"]);

    // Bad requests change nothing and say what is wrong.
    diff_req(&app, &repo, "from=r1").expect_error(400, &["INVALID_REQUEST"]);
    diff_req(&app, &repo, "from=test@x&to=r2").expect_error(400, &["INVALID_REQUEST"]);
    diff_req(&app, &repo, "from=r1&to=r2&platform=linux").expect_error(400, &["INVALID_REQUEST"]);
    diff_req(&app, &repo, "from=nope&to=r2").expect_error(404, &["MANIFEST_UNKNOWN"]);
    diff_req(&app, "diff/none", "from=a&to=b").expect_error(404, &["NAME_UNKNOWN"]);
}

/// A tar of `n` empty files, gzip-compressed as it is written.
fn many_entries(n: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    let mut h = header(tar::EntryType::Regular, 0, 0o644, 0);
    for i in 0..n {
        b.append_data(&mut h, format!("f/{i}"), &[][..]).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

/// Hostile layers get a 422 naming the problem; the server stays healthy
/// and a good diff still works.
#[test]
fn hostile_layers_are_refused_and_the_server_stays_healthy() {
    let app = TestApp::start();
    let repo = repo("diff/hostile");
    let good = gzip(&tar_of(&[file("ok", b"fine")]));
    push_image_with(&app, &repo, "good", config(&[], "", json!({}), &[], &[]), &[(OCI_LAYER, good)]);

    // A header that declares 1 TiB with nothing behind it.
    let mut h = header(tar::EntryType::Regular, 1 << 40, 0o644, 0);
    h.set_path("huge").unwrap();
    h.set_cksum();
    let mut bomb = h.as_bytes().to_vec();
    bomb.extend_from_slice(&[0u8; 1024]);
    let truncated = {
        let gz = gzip(&tar_of(&[file("a", &unique_bytes(20_000))]));
        gz[..gz.len() / 2].to_vec()
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("dotdot", gzip(&tar_of(&[E::Raw("../../etc/passwd", b"x")])), "unsafe path"),
        ("absolute", gzip(&tar_of(&[E::Raw("/etc/passwd", b"x")])), "unsafe path"),
        ("truncated", truncated, "not a valid tar"),
        ("declared", gzip(&bomb), "declare more than"),
        ("entries", many_entries(500_001), "more than 500000 entries"),
    ];
    for (tag, layer, message) in cases {
        push_image_with(&app, &repo, tag, config(&[], "", json!({}), &[], &[]), &[(OCI_LAYER, layer)]);
        let r = diff_req(&app, &repo, &format!("from=good&to={tag}"));
        r.expect_error(422, &["LAYER_INVALID"]);
        assert!(r.text().contains(message), "{tag}: {}", r.describe());
        app.get("/v2/").expect(200);
    }
    let d = diff_ok(&app, &repo, "from=good&to=good");
    assert_eq!(d["files"], json!([]));
}

/// The diff needs pull on the repository, like every read of it.
#[test]
fn diff_needs_pull_on_the_repository() {
    const PW: &str = "diff-reader-password-1";
    let app = TestApp::builder().with_auth().start();
    app.set_default_auth(Some(basic("admin", ADMIN_PASSWORD)));
    let layer = gzip(&tar_of(&[file("x", b"1")]));
    push_image_with(&app, "team-a/app", "v1", config(&[], "", json!({}), &[], &[]), &[(OCI_LAYER, layer)]);
    let post =
        |path: &str, body: Value| app.req(Method::POST, path).header("Content-Type", "application/json").body(body.to_string()).send();
    post("/api/v1/users", json!({"name": "reader", "password": PW})).expect(201);
    post("/api/v1/grants", json!({"account": "reader", "repository": "team-a/**", "role": "reader", "stages": []})).expect(201);
    let reader = basic("reader", PW);
    let path = |repo: &str| format!("/api/v1/repositories/{repo}/diff?from=v1&to=v1");
    app.req_as(Some(&reader), Method::GET, &path("team-a/app")).send().expect(200);
    app.req_as(Some(&reader), Method::GET, &path("team-b/app")).send().expect_error(403, &["DENIED"]);
    app.req_as(None, Method::GET, &path("team-a/app")).send().expect(401);
}
