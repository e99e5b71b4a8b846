//! `wharf db migrate --to postgres://...` (issue 13): an embedded install
//! with history moves to PostgreSQL and a Wharf started there on the same
//! blob directory serves the same tags, stages, releases and audit chain.
//! Needs a PostgreSQL server (WHARF_TEST_POSTGRES_URL); the source is always
//! the embedded engine, whatever WHARF_TEST_DATABASE says.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::pg::{postgres_url, TestDatabase};
use common::*;
use reqwest::Method;
use serde_json::{json, Value};

fn promote(app: &TestApp, repo: &str, reference: &str, stage: &str) -> Resp {
    app.req(Method::POST, &format!("/api/v1/repositories/{repo}/promotions"))
        .header("Content-Type", "application/json")
        .body(json!({"reference": reference, "stage": stage}).to_string())
        .send()
}

fn migrate(app: &TestApp, to: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("WHARF_")) {
        cmd.env_remove(k);
    }
    cmd.args(["db", "migrate", "--to", to, "--data-dir"]).arg(app.data_dir()).output().expect("run wharf db migrate")
}

/// Everything a client can see of the history, to compare across engines.
fn snapshot(app: &TestApp, repo: &str) -> Vec<Value> {
    let mut seen = vec![app.get(&format!("/v2/{repo}/tags/list")).json(), app.get(&format!("/api/v1/repositories/{repo}/stages")).json()];
    for stage in ["test", "preprod", "prod"] {
        seen.push(app.get(&format!("/api/v1/repositories/{repo}/stages/{stage}/releases?n=100")).json());
    }
    seen.push(app.get(&format!("/api/v1/repositories/{repo}/tags/latest/history")).json());
    seen.push(app.get("/api/v1/audit?n=1000").json());
    seen
}

/// Needs the test PostgreSQL server: named `postgres::...`, so the
/// cargo-test step skips it and the cargo-test-postgres step runs it.
mod postgres {
    use super::*;

    #[test]
    fn an_embedded_install_with_history_moves_to_postgres() {
        let Some(server) = postgres_url() else { return };
        let target = TestDatabase::create(&server);
        let mut app = TestApp::builder()
            .without_env("WHARF_DATABASE__URL")
            .env("WHARF_RETENTION__POLICIES", r#"[{name="default", repositories="**", keep_last=5, delete_untagged_after="1ms"}]"#)
            .start();
        let repo = repo("moving");
        let v1 = push_image(&app, &repo, Some("v1"), 2);
        let v2 = push_image(&app, &repo, Some("v2"), 1);
        promote(&app, &repo, "v1", "test").expect(201);
        promote(&app, &repo, "v2", "test").expect(201);
        promote(&app, &repo, "v1", "preprod").expect(201);
        // A refusal: prod before preprod has v2.
        promote(&app, &repo, "v2", "prod").expect(409);
        app.req(Method::POST, &format!("/api/v1/repositories/{repo}/stages/test/rollback")).send().expect(201);
        // Moving a tag leaves a tag history; the untagged image goes to retention.
        push_image(&app, &repo, Some("latest"), 1);
        push_image(&app, &repo, Some("latest"), 1);
        let untagged = push_image(&app, &repo, None, 1);
        std::thread::sleep(Duration::from_millis(5));
        app.post("/api/v1/retention/runs").expect(200);
        app.head(&format!("/v2/{repo}/manifests/{}", untagged.digest)).expect(404);
        let before = snapshot(&app, &repo);
        let verified = app.get("/api/v1/audit/verify").json();
        assert_eq!(verified["valid"], true);

        // Offline only: the running server holds the data directory's lock.
        let refused = migrate(&app, &target.url);
        assert!(!refused.status.success());
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("in use by another wharf server"),
            "{}",
            String::from_utf8_lossy(&refused.stderr)
        );

        app.stop();
        let out = migrate(&app, &target.url);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            stdout.contains("audit chain verified on PostgreSQL") && stdout.contains(verified["head_hash"].as_str().unwrap()),
            "{stdout}"
        );
        assert!(stdout.lines().any(|l| l.trim_start().starts_with("releases ")), "{stdout}");
        // A second run finds the target no longer empty and changes nothing.
        let again = migrate(&app, &target.url);
        assert!(!again.status.success());
        assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"), "{}", String::from_utf8_lossy(&again.stderr));

        // The same blob directory, metadata on PostgreSQL.
        app.set_env("WHARF_DATABASE__URL", &target.url);
        app.start_again();
        assert_eq!(snapshot(&app, &repo), before);
        assert_eq!(app.get("/api/v1/audit/verify").json(), verified);
        let cli = Command::new(env!("CARGO_BIN_EXE_wharf"))
            .args(["audit", "verify", "--data-dir"])
            .arg(app.data_dir())
            .envs(app.database_env())
            .output()
            .expect("wharf audit verify");
        assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
        assert_manifest(&app, &repo, &v2.digest, OCI_MANIFEST, &v2.manifest);
        assert_manifest(&app, &repo, &v1.digest, OCI_MANIFEST, &v1.manifest);
        // New rows continue after the copied ids (identity sequences moved on).
        let v3 = push_image(&app, &repo, Some("v3"), 1);
        promote(&app, &repo, "v3", "test").expect(201);
        let after = app.get("/api/v1/audit/verify").json();
        assert_eq!(after["valid"], true);
        assert!(after["rows_checked"].as_u64().unwrap() > verified["rows_checked"].as_u64().unwrap());
        let _ = v3;
    }
}
