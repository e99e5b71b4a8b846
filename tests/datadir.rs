//! The data directory at rest: private modes on a fresh install and on an
//! old one, one server per directory, and a server that cannot listen
//! writing nothing.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// The files that must be private, by name in the data directory.
const SECRETS: [&str; 5] = ["wharf.db", "wharf.db-wal", "wharf.db-shm", "token.key", "wharf.lock"];

fn assert_private(data: &Path) {
    assert_eq!(mode(data), 0o700, "data directory mode");
    for name in SECRETS {
        assert_eq!(mode(&data.join(name)), 0o600, "{name} mode");
    }
}

/// Starts `wharf serve` by hand (not through the harness, which retries on
/// a taken port) and waits for it to exit; returns (exited successfully, stderr).
fn serve_until_exit(data_dir: &Path, port: u16) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"]).arg(data_dir);
    // Defaults only: the filesystem backend, whatever the environment says.
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("WHARF_")) {
        cmd.env_remove(k);
    }
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn wharf");
    let pid = child.id();
    let waiter = std::thread::spawn(move || child.wait_with_output().expect("wait for wharf"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !waiter.is_finished() {
        if Instant::now() > deadline {
            let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
            panic!("wharf serve did not exit within 20 s (it should have refused to start)");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = waiter.join().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn fresh_install_is_private_under_umask_022() {
    let app = TestApp::builder().umask(0o022).start();
    let repo = repo("datadir/fresh");
    let data = unique_bytes(4096);
    let digest = push_blob(&app, &repo, &data);
    assert_blob(&app, &repo, &digest, &data);
    // -wal and -shm are SQLite's own creations; they must follow the database file.
    assert_private(app.data_dir());
    let lock = std::fs::read_to_string(app.data_dir().join("wharf.lock")).unwrap();
    assert!(lock.contains(&format!("pid={}\n", app.pid())), "lock file records its holder: {lock}");
}

#[test]
fn existing_install_is_tightened_at_start_up() {
    let mut app = TestApp::builder().umask(0o022).start();
    let repo = repo("datadir/old");
    let data = unique_bytes(4096);
    let digest = push_blob(&app, &repo, &data);
    // SIGKILL leaves -wal and -shm behind, as a crashed old install would.
    app.kill();
    let dir = app.data_dir().to_owned();
    set_mode(&dir, 0o755);
    for name in SECRETS {
        set_mode(&dir.join(name), 0o644);
    }
    app.start_again();
    assert_private(&dir);
    let log = app.log();
    let line = log.lines().find(|l| l.contains("tightened permissions")).unwrap_or_else(|| panic!("no tightening line in the log:\n{log}"));
    for name in SECRETS {
        assert!(line.contains(&format!("{name} 0644→0600")), "{name} missing from: {line}");
    }
    assert!(line.contains("0755→0700"), "data directory missing from: {line}");
    assert_blob(&app, &repo, &digest, &data);
    // Nothing left to tighten on the next start.
    app.restart();
    assert_eq!(app.log().matches("tightened permissions").count(), 1);
}

#[test]
fn second_server_on_the_same_data_dir_is_refused_and_names_the_holder() {
    let mut app = TestApp::start();
    let repo = repo("datadir/owner");
    let before = unique_bytes(2048);
    let before_digest = push_blob(&app, &repo, &before);

    let port = free_port();
    let (ok, stderr) = serve_until_exit(app.data_dir(), port);
    assert!(!ok, "a second server on the same data directory started; stderr:\n{stderr}");
    assert!(stderr.contains("in use by another wharf server"), "{stderr}");
    assert!(stderr.contains(&format!("pid {} on host ", app.pid())), "the holder is named: {stderr}");
    assert!(stderr.contains(", since "), "{stderr}");
    // It gave up before listening.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "the refused server bound its port");

    // The first server is unaffected.
    assert!(app.is_running());
    app.get("/v2/").expect(200);
    assert_blob(&app, &repo, &before_digest, &before);
    let after = unique_bytes(2048);
    let after_digest = push_blob(&app, &repo, &after);
    assert_blob(&app, &repo, &after_digest, &after);
    assert!(!app.log().contains("in use by another"), "the first server noticed nothing");

    // Once it stops, the directory is free again.
    app.restart();
    assert_blob(&app, &repo, &after_digest, &after);
}

#[test]
fn a_server_that_cannot_listen_writes_nothing() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (ok, stderr) = serve_until_exit(&data, port);
    assert!(!ok, "wharf started on a taken port; stderr:\n{stderr}");
    assert!(stderr.contains("cannot listen on") && stderr.contains("in use"), "{stderr}");
    // No database (so no migration and no audit row), no key, no blobs: only the lock file.
    let mut left: Vec<String> = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, vec!["wharf.lock".to_string()], "files a server that could not listen left behind");
    drop(taken);
}
