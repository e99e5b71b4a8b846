//! What a newcomer meets first (issue 11): configuration mistakes explained,
//! a quiet server log, the commit in `wharf --version`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::Duration;

use common::*;

fn wharf(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
    cmd.args(args);
    // The developer's own WHARF_* settings must not change the answers.
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("WHARF_")) {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied()).output().expect("run wharf")
}

fn check_config_file(toml: &str) -> (Output, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wharf.toml");
    std::fs::write(&path, toml).unwrap();
    let path = path.to_str().unwrap().to_owned();
    (wharf(&["check-config", "--config", &path], &[]), path)
}

#[track_caller]
fn stderr_of_failure(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected a failure; stdout:\n{}", String::from_utf8_lossy(&out.stdout));
    assert!(out.stdout.is_empty(), "nothing is printed on stdout for a bad config");
    stderr
}

#[test]
fn an_unknown_config_key_names_the_key_the_source_and_the_valid_keys() {
    let (out, path) = check_config_file("[auth]\nenable = true\n");
    let stderr = stderr_of_failure(&out);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "wharf: configuration: unknown configuration key auth.enable (in {path}); did you mean auth.enabled? \
             valid keys in [auth]: enabled, token_ttl, token_key_file, realm, anonymous_pull, max_failed_logins, lockout"
        )
    );

    let out = wharf(&["check-config"], &[("WHARF_AUTH__ENABLE", "true")]);
    let stderr = stderr_of_failure(&out);
    assert!(
        stderr.contains("unknown configuration key auth.enable (from environment variable WHARF_AUTH__ENABLE); did you mean auth.enabled?"),
        "{stderr}"
    );

    // Top level and deep inside a table; nothing close: no guess.
    let (out, _) = check_config_file("listn = \"127.0.0.1:5000\"\n");
    let stderr = stderr_of_failure(&out);
    assert!(stderr.contains("unknown configuration key listn ("), "{stderr}");
    assert!(stderr.contains("did you mean listen? valid keys at the top level: listen, data_dir, registry,"), "{stderr}");
    let (out, _) = check_config_file("[governance.gates.prod]\nnon_rot = true\n");
    let stderr = stderr_of_failure(&out);
    assert!(stderr.contains("unknown configuration key governance.gates.prod.non_rot ("), "{stderr}");
    assert!(stderr.contains("did you mean governance.gates.prod.non_root? valid keys in [governance.gates.prod]: min_soak,"), "{stderr}");
    let (out, _) = check_config_file("[gc]\nxyzzy = 1\n");
    let stderr = stderr_of_failure(&out);
    assert!(stderr.contains("unknown configuration key gc.xyzzy (") && stderr.contains("; valid keys in [gc]: grace,"), "{stderr}");
    assert!(!stderr.contains("did you mean"), "{stderr}");

    // A wrong type names the key and the file too.
    let (out, path) = check_config_file("[auth]\nenabled = \"yes\"\n");
    let stderr = stderr_of_failure(&out);
    assert!(stderr.contains(&format!("configuration key auth.enabled (in {path}): invalid type")), "{stderr}");

    // And a good file still passes.
    let (out, _) = check_config_file("[auth]\nenabled = false\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn version_names_the_commit() {
    let out = wharf(&["--version"], &[]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let expected_commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(text, format!("wharf {} (commit {expected_commit})", env!("CARGO_PKG_VERSION")));
}

/// The first bytes of a TLS 1.2 ClientHello, as docker sends to find out
/// whether a registry speaks HTTPS before falling back to plain HTTP.
const TLS_CLIENT_HELLO: &[u8] = &[
    0x16, 0x03, 0x01, 0x00, 0x2f, 0x01, 0x00, 0x00, 0x2b, 0x03, 0x03, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
    0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x00,
    0x00, 0x02, 0x00, 0x2f, 0x01, 0x00, 0x00, 0x00, 0x0d, 0x0a, 0x0d, 0x0a,
];

#[test]
fn the_server_log_stays_quiet_and_readable() {
    let mut app = TestApp::start();
    // docker's TLS probe on the plain port: refused, but no ERROR line.
    for _ in 0..3 {
        let mut conn = TcpStream::connect(("127.0.0.1", app.port())).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        conn.write_all(TLS_CLIENT_HELLO).unwrap();
        let mut answer = Vec::new();
        let _ = conn.read_to_end(&mut answer);
        assert!(answer.starts_with(b"HTTP/1.1 400"), "{}", String::from_utf8_lossy(&answer));
    }
    let repo = repo("quiet");
    push_image(&app, &repo, Some("v1"), 1);
    app.get(&format!("/v2/{repo}/manifests/v1")).expect(200);
    app.restart();
    app.get("/v2/").expect(200);
    app.stop();

    let log = app.log();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "ERROR lines in the server log:\n{}", errors.join("\n"));
    assert!(!log.contains("stream error"), "{log}");
    // First start on an empty database: recorded, not "changed"; the restart
    // with the same policy says nothing about it.
    assert_eq!(log.matches("governance policy recorded").count(), 1, "{log}");
    assert!(!log.contains("governance policy changed"), "{log}");
    // Durations in whole microseconds: elapsed_ms=0.84, not 0.8403660000000001.
    let mut seen = 0;
    for value in log.split("elapsed_ms=").skip(1) {
        let number: String = value.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
        let decimals = number.split_once('.').map_or(0, |(_, d)| d.len());
        assert!(decimals <= 3 && number.parse::<f64>().is_ok(), "elapsed_ms={number}");
        seen += 1;
    }
    assert!(seen >= 4, "request lines carry elapsed_ms:\n{log}");
}
