//! Patterns in the configuration are compiled when it is read: a bad one
//! stops `wharf check-config` and `wharf serve` with a message naming the
//! key and the pattern, instead of being skipped (which would fail open for
//! immutable tags). A choice out of a fixed set names the set.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs wharf with only the given WHARF_* environment, killing it (and
/// failing) if it is still running after `timeout`.
fn wharf(args: &[&str], timeout: Duration) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("WHARF_")) {
        cmd.env_remove(k);
    }
    let mut child = cmd.spawn().expect("run wharf");
    let started = Instant::now();
    while child.try_wait().expect("wait for wharf").is_none() {
        if started.elapsed() > timeout {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect output");
            panic!("wharf {args:?} still ran after {timeout:?}; stderr:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("collect output")
}

#[track_caller]
fn refused(out: &Output, words: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected a failure; stdout:\n{}", String::from_utf8_lossy(&out.stdout));
    for w in words {
        assert!(stderr.contains(w), "stderr lacks {w:?}:\n{stderr}");
    }
}

#[test]
fn a_bad_immutable_tag_pattern_stops_check_config_and_serve() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("wharf.toml");
    let data = dir.path().join("data");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\n[governance]\nimmutable_tags = [\"^v[0-9]+$\", \"^release-(\"]\n").expect("write");
    let (config, data) = (config.to_str().expect("utf-8"), data.to_str().expect("utf-8"));
    let words = ["governance.immutable_tags", "invalid tag pattern \"^release-(\""];

    refused(&wharf(&["check-config", "--config", config], Duration::from_secs(30)), &words);
    refused(&wharf(&["serve", "--config", config, "--data-dir", data], Duration::from_secs(30)), &words);
    // Refused before anything was set up.
    assert!(!std::path::Path::new(data).exists(), "serve created its data directory");

    // The same file with the pattern fixed is accepted.
    std::fs::write(dir.path().join("wharf.toml"), "[governance]\nimmutable_tags = [\"^v[0-9]+$\", \"^release-\"]\n").expect("write");
    let out = wharf(&["check-config", "--config", config], Duration::from_secs(30));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("^release-"));
}

#[test]
fn bad_retention_and_anonymous_globs_name_their_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (toml, words) in [
        (
            "[[retention.policies]]\nname = \"x\"\nrepositories = \"team/[\"\n",
            &["retention.policies", "invalid repository glob \"team/[\""][..],
        ),
        ("[[retention.policies]]\nrepositories = \"**\"\nkeep_tags = [\"*\"]\n", &["keep_tags", "invalid tag pattern \"*\""][..]),
        ("[auth]\nanonymous_pull = [\"\"]\n", &["auth.anonymous_pull", "invalid repository glob \"\""][..]),
    ] {
        let path = dir.path().join("wharf.toml");
        std::fs::write(&path, toml).expect("write");
        refused(&wharf(&["check-config", "--config", path.to_str().expect("utf-8")], Duration::from_secs(30)), words);
    }
}

/// S3 integrity has no "off": anything but its two modes is refused, and
/// the default is the checksum.
#[test]
fn s3_integrity_is_one_of_two_modes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("wharf.toml");
    std::fs::write(&path, "[storage.s3]\nintegrity = \"none\"\n").expect("write");
    let config = path.to_str().expect("utf-8");
    refused(&wharf(&["check-config", "--config", config], Duration::from_secs(30)), &["integrity", "none", "crc64nvme", "signed"]);

    std::fs::write(&path, "[storage.s3]\nbucket = \"b\"\n").expect("write");
    let out = wharf(&["check-config", "--config", config], Duration::from_secs(30));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"integrity\": \"crc64nvme\""), "{}", String::from_utf8_lossy(&out.stdout));
}
