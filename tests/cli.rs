//! The `wharf` command line as a user runs it: the real binary against a
//! running, auth-enabled Wharf (login, pipeline and account commands, the
//! account lifecycle), local maintenance commands on a missing database,
//! and every error message the CLI itself writes.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const PW: &str = "password-123";

/// A CLI user: its own HOME, config directory and docker config, so no test
/// sees another's `wharf login` (or the developer's).
/// A local command's environment for the server's metadata (its database
/// URL on PostgreSQL), in the shape [`User::run_with`] takes.
fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

struct User {
    home: tempfile::TempDir,
}

impl User {
    fn new() -> Self {
        Self { home: tempfile::Builder::new().prefix("wharf-cli-").tempdir().unwrap() }
    }

    fn credentials_path(&self) -> PathBuf {
        self.home.path().join("xdg").join("wharf").join("credentials.json")
    }

    fn docker_dir(&self) -> PathBuf {
        self.home.path().join("docker")
    }

    /// Runs `wharf args...` with `env`, feeding `stdin` (if any).
    fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
        for (k, _) in std::env::vars() {
            if k.starts_with("WHARF_") {
                cmd.env_remove(k);
            }
        }
        cmd.args(args)
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("xdg"))
            .env("DOCKER_CONFIG", self.docker_dir())
            .envs(env.iter().copied())
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn wharf");
        if let Some(input) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    #[track_caller]
    fn ok(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> String {
        let out = self.run_with(args, env, stdin);
        assert!(out.status.success(), "wharf {args:?} failed: {}\n{}", stderr(&out), stdout(&out));
        stdout(&out)
    }

    /// Runs a command that must fail; returns its standard error.
    #[track_caller]
    fn fails(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> String {
        let out = self.run_with(args, env, stdin);
        assert!(!out.status.success(), "wharf {args:?} succeeded: {}", stdout(&out));
        stderr(&out)
    }

    fn login(&self, app: &TestApp, user: &str, password: &str) {
        self.ok(&["login", &app.base(), "-u", user, "--password-stdin"], &[], Some(&format!("{password}\n")));
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_out(s: &str) -> Value {
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn start() -> TestApp {
    let app = TestApp::builder().with_auth().start();
    app.set_default_auth(Some(basic("admin", ADMIN_PASSWORD)));
    app
}

fn admin_post(app: &TestApp, path: &str, body: Value) -> Resp {
    app.req(Method::POST, path).header("Content-Type", "application/json").body(body.to_string()).send()
}

fn add_user(app: &TestApp, name: &str, grants: &[(&str, &str, &[&str])]) {
    admin_post(app, "/api/v1/users", json!({"name": name, "password": PW})).expect(201);
    for (glob, role, stages) in grants {
        admin_post(app, "/api/v1/grants", json!({"account": name, "repository": glob, "role": role, "stages": stages})).expect(201);
    }
}

fn v2_as(app: &TestApp, user: &str, secret: &str) -> u16 {
    app.req_as(Some(&basic(user, secret)), Method::GET, "/v2/").send().status
}

/// Whether `s` holds a `YYYY-MM-DDTHH:MM:SS` time.
fn rfc3339(s: &str) -> bool {
    s.as_bytes().windows(19).any(|w| {
        w.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b'T',
            13 | 16 => *b == b':',
            _ => b.is_ascii_digit(),
        })
    })
}

#[test]
fn local_commands_refuse_a_missing_database() {
    let user = User::new();
    let missing = user.home.path().join("typo-data");
    let dir = missing.to_str().unwrap();
    let commands: [&[&str]; 9] = [
        &["user", "add", "alice", "--data-dir", dir],
        &["user", "list", "--data-dir", dir],
        &["robot", "list", "--data-dir", dir],
        &["grant", "list", "--data-dir", dir],
        &["retention", "plan", "--data-dir", dir],
        &["retention", "run", "--data-dir", dir],
        &["gc", "--dry-run", "--data-dir", dir],
        &["audit", "verify", "--data-dir", dir],
        &["audit", "export", "--data-dir", dir],
    ];
    for args in commands {
        let err = user.fails(args, &[("WHARF_PASSWORD", PW)], None);
        assert!(err.contains(&format!("no Wharf database at {dir}/wharf.db")), "{args:?}: {err}");
        assert!(err.contains("wharf migrate --data-dir DIR"), "{args:?}: {err}");
        assert_eq!(err.matches("no Wharf database").count(), 1, "said once: {err}");
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
    }
    // Without --data-dir, --url or a login there is nothing to manage.
    let err = user.fails(&["user", "list"], &[], None);
    assert!(err.contains("no Wharf to manage: pass --url URL (or run `wharf login URL`)"), "{err}");

    // On an existing database they work and say which one they opened.
    let data = user.home.path().join("data");
    user.ok(&["migrate", "--data-dir", data.to_str().unwrap()], &[], None);
    let out = user.run_with(&["user", "add", "root", "--admin", "--data-dir", data.to_str().unwrap()], &[("WHARF_PASSWORD", PW)], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let canonical = std::fs::canonicalize(data.join("wharf.db")).unwrap();
    assert!(stderr(&out).contains(&format!("using the database at {}", canonical.display())), "{}", stderr(&out));
    let list = json_out(&user.ok(&["user", "list", "--json", "--data-dir", data.to_str().unwrap()], &[], None));
    assert_eq!(list["users"][0]["name"], "root");
    assert_eq!(list["users"][0]["admin"], true);
    // Retention with no policy says so instead of "would delete: 0".
    let plan = user.ok(&["retention", "plan", "--data-dir", data.to_str().unwrap()], &[], None);
    assert!(plan.starts_with("no retention policy matches any repository"), "{plan}");
    assert!(plan.contains("(none is configured: retention.policies); nothing would be deleted"), "{plan}");
    assert!(!plan.contains("would delete: 0"), "{plan}");
    // gc --dry-run says how long an interrupted push's upload is kept.
    let gc = user.ok(&["gc", "--dry-run", "--data-dir", data.to_str().unwrap()], &[], None);
    assert!(gc.starts_with("would free 0 blobs (0 bytes), 0 abandoned uploads"), "{gc}");
    assert!(gc.contains("uploads idle for less than 1day (gc.upload_max_age) are kept"), "{gc}");
    let gc = json_out(&user.ok(&["gc", "--dry-run", "--json", "--data-dir", data.to_str().unwrap()], &[], None));
    assert_eq!((gc["dry_run"].clone(), gc["blobs_deleted"].clone()), (json!(true), json!(0)), "{gc}");
    let verify = json_out(&user.ok(&["audit", "verify", "--json", "--data-dir", data.to_str().unwrap()], &[], None));
    assert_eq!(verify["valid"], true, "{verify}");
    assert!(verify["rows_checked"].as_u64().unwrap() >= 1, "the user creation is audited: {verify}");
    // --url and --data-dir together are refused.
    let err = user.fails(&["user", "list", "--url", "http://127.0.0.1:1", "--data-dir", data.to_str().unwrap()], &[], None);
    assert!(err.contains("--url and --data-dir/--config exclude each other"), "{err}");
}

#[test]
fn login_then_promote_rollback_and_history_with_stored_credentials() {
    let app = start();
    add_user(&app, "rel", &[("**", "releaser", &["test", "preprod", "prod"])]);
    let repo = repo("cli");
    let first = push_image(&app, &repo, Some("v1"), 1);
    let second = push_image(&app, &repo, Some("v2"), 1);
    let user = User::new();
    let url = app.base();

    // No credentials yet: the 401 says how to log in.
    let err = user.fails(&["promote", &repo, "v1", "--to", "test", "--url", &url], &[], None);
    assert!(err.contains(&format!("hint: no credentials: run `wharf login {url}`")), "{err}");

    // A wrong password is refused and nothing is stored.
    let err = user.fails(&["login", &url, "-u", "rel", "--password-stdin"], &[], Some("wrong-password\n"));
    assert!(err.contains(&format!("login to {url} as rel failed: invalid username or password")), "{err}");
    assert!(!user.credentials_path().exists());
    let err = user.fails(&["login", &url, "-u", "rel"], &[], None);
    assert!(err.contains("wharf login needs the password: pass --password-stdin or set WHARF_PASSWORD"), "{err}");

    user.login(&app, "rel", PW);
    let meta = std::fs::metadata(user.credentials_path()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "credentials file mode");
    let stored = json_out(&std::fs::read_to_string(user.credentials_path()).unwrap());
    assert_eq!(stored["servers"][&url]["username"], "rel");
    assert_eq!(stored["default"], url.as_str());

    // Without --url: the server of the last login, with its credentials.
    let out = user.ok(&["promote", &repo, "v1", "--to", "test", "--note", "first cut"], &[], None);
    assert!(out.contains("VERSION") && out.contains("NOTE") && out.contains("first cut"), "{out}");
    let release = json_out(&user.ok(&["promote", &repo, "v2", "--to", "test", "--version", "2.0.0", "--json"], &[], None));
    assert_eq!(release["digest"], second.digest.as_str());
    assert_eq!(release["version"], "2.0.0");
    assert_eq!(release["actor"], "rel");

    let history = json_out(&user.ok(&["history", &repo, "--stage", "test", "--json", "--url", &url], &[], None));
    let releases = history["releases"].as_array().unwrap();
    assert_eq!(releases.len(), 2);
    assert_eq!(releases[1]["version"], "v1", "a promoted tag is the version by default");
    assert_eq!(releases[1]["note"], "first cut");
    let table = user.ok(&["history", &repo, "--stage", "test"], &[], None);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("STAGE") && lines[0].contains("VERSION") && lines[0].contains("NOTE"), "{table}");
    let digest_col = lines[0].find("DIGEST").unwrap();
    assert!(lines.iter().skip(1).all(|l| l[digest_col..].starts_with("sha256:")), "aligned columns: {table}");
    assert!(lines[2].contains("v1") && lines[2].contains("first cut") && rfc3339(lines[2]), "{table}");

    let rolled = json_out(&user.ok(&["rollback", &repo, "test", "--json"], &[], None));
    assert_eq!(rolled["digest"], first.digest.as_str());
    assert_eq!(rolled["reason"], "rollback");
    let stages = json_out(&user.ok(&["history", &repo, "--json"], &[], None));
    assert_eq!(stages["stages"][0]["current"]["digest"], first.digest.as_str());

    // Explicit credentials win over the stored ones.
    let err = user.fails(&["history", &repo, "--username", "rel", "--password-stdin"], &[], Some("not-the-password\n"));
    assert!(err.contains("invalid username or password") && err.contains("hint: check the username and password"), "{err}");
    let out = user.ok(&["history", &repo, "--json"], &[("WHARF_USERNAME", "admin"), ("WHARF_PASSWORD", ADMIN_PASSWORD)], None);
    json_out(&out);

    // Logout forgets them: the next command is refused again.
    user.ok(&["logout", &url], &[], None);
    let err = user.fails(&["history", &repo, "--url", &url], &[], None);
    assert!(err.contains("authentication required") && err.contains("wharf login"), "{err}");
    assert!(user.ok(&["logout", &url], &[], None).contains("not logged in"));
}

#[test]
fn promotion_retries_refusals_and_unknown_stages_read_clearly() {
    let app = start();
    add_user(&app, "rel", &[("**", "releaser", &["test", "preprod", "prod"])]);
    add_user(&app, "dev", &[("**", "releaser", &["test"])]);
    let repo = repo("retry");
    let image = push_image(&app, &repo, Some("v1"), 1);
    let user = User::new();
    user.login(&app, "rel", PW);

    let first = json_out(&user.ok(&["promote", &repo, "v1", "--to", "test", "--json"], &[], None));
    assert_eq!(first["unchanged"], false, "{first}");
    // A retry of the same promotion: an idempotent success that says nothing changed.
    let out = user.run_with(&["promote", &repo, "v1", "--to", "test"], &[], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let seq = first["sequence"].as_i64().unwrap();
    assert!(text.starts_with(&format!("already current: test release #{seq} (nothing changed)\n")), "{text}");
    assert!(text.contains(image.digest.as_str()), "the existing release is shown: {text}");
    let again = json_out(&user.ok(&["promote", &repo, "v1", "--to", "test", "--json"], &[], None));
    assert_eq!(again["unchanged"], true, "--json passes the answer through: {again}");
    assert_eq!(again["sequence"], first["sequence"]);
    let history = json_out(&user.ok(&["history", &repo, "--stage", "test", "--json"], &[], None));
    assert_eq!(history["releases"].as_array().unwrap().len(), 1, "no duplicate release: {history}");

    // A skipped stage: the reason once, naming the tag typed.
    let err = user.fails(&["promote", &repo, "v1", "--to", "prod"], &[], None);
    assert_eq!(err.matches("was never released to preprod").count(), 1, "{err}");
    assert_eq!(err.matches("failed gate").count(), 1, "{err}");
    assert!(err.contains("order: v1 was never released to preprod, the stage before prod; promote it to preprod first"), "{err}");
    assert!(!err.contains("denied: denied"), "{err}");

    // An unknown stage lists the configured ones.
    let err = user.fails(&["promote", &repo, "v1", "--to", "staging"], &[], None);
    assert_eq!(err.trim(), "wharf: unknown stage \"staging\"; the configured stages are test, preprod, prod");
    let err = user.fails(&["rollback", &repo, "staging"], &[], None);
    assert_eq!(err.trim(), "wharf: unknown stage \"staging\"; the configured stages are test, preprod, prod");
    // A stage that exists but is outside the releaser's grant is still refused.
    let err = user.fails(&["promote", &repo, "v1", "--to", "prod", "--username", "dev", "--password-stdin"], &[], Some(&format!("{PW}\n")));
    assert!(err.contains("promote into prod"), "{err}");
    // Anonymous callers learn nothing about stages: 401 first.
    let anon = app.req_as(None, Method::POST, &format!("/api/v1/repositories/{repo}/promotions"));
    let r = anon.header("Content-Type", "application/json").body(json!({"reference": "v1", "stage": "staging"}).to_string()).send();
    assert_eq!(r.status, 401, "{}", r.describe());
}

#[test]
fn url_and_connection_errors_are_clear() {
    let user = User::new();
    let err = user.fails(&["history", "app", "--url", "127.0.0.1:5000"], &[], None);
    assert_eq!(err.trim(), "wharf: URL needs a scheme: did you mean http://127.0.0.1:5000?");
    let err = user.fails(&["login", "localhost:5000", "-u", "x"], &[("WHARF_PASSWORD", PW)], None);
    assert_eq!(err.trim(), "wharf: URL needs a scheme: did you mean http://localhost:5000?");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead = format!("http://127.0.0.1:{port}");
    let err = user.fails(&["history", "app", "--url", &dead], &[], None);
    assert_eq!(err.trim(), format!("wharf: cannot reach Wharf at {dead}: connection refused"));
    let err = user.fails(&["login", &dead, "-u", "x", "--password-stdin"], &[], Some("whatever-pw\n"));
    assert_eq!(err.trim(), format!("wharf: cannot reach Wharf at {dead}: connection refused"));
}

#[test]
fn docker_stored_login_is_used_and_helpers_are_named() {
    use base64::Engine;
    let app = start();
    add_user(&app, "rel", &[("**", "releaser", &["test"])]);
    let repo = repo("dock");
    push_image(&app, &repo, Some("v1"), 1);
    let user = User::new();
    let host = format!("127.0.0.1:{}", app.port());
    std::fs::create_dir_all(user.docker_dir()).unwrap();
    let config = user.docker_dir().join("config.json");

    std::fs::write(&config, json!({"auths": {}, "credsStore": "desktop"}).to_string()).unwrap();
    let err = user.fails(&["history", &repo, "--url", &app.base()], &[], None);
    assert!(err.contains("docker's credential helper `desktop` is not read"), "{err}");

    let auth = base64::engine::general_purpose::STANDARD.encode(format!("rel:{PW}"));
    std::fs::write(&config, json!({"auths": {host.clone(): {"auth": auth}}}).to_string()).unwrap();
    let out = user.ok(&["promote", &repo, "v1", "--to", "test", "--json", "--url", &app.base()], &[], None);
    assert_eq!(json_out(&out)["actor"], "rel");
    let out = user.ok(&["login", &app.base()], &[], None);
    assert!(out.contains(&format!("docker's stored login for {host} (rel) works")), "{out}");
    assert!(!user.credentials_path().exists(), "nothing stored");
}

#[test]
fn account_commands_against_a_remote_wharf() {
    let app = start();
    let user = User::new();
    user.login(&app, "admin", ADMIN_PASSWORD);
    let host = format!("127.0.0.1:{}", app.port());

    let out = user.ok(&["user", "add", "dev"], &[("WHARF_NEW_PASSWORD", PW)], None);
    assert!(out.contains("created user dev"), "{out}");
    assert_eq!(v2_as(&app, "dev", PW), 200, "the user was created on the server");
    // The new password may come from stdin too.
    user.ok(&["user", "add", "ops", "--admin"], &[], Some("ops-password-1\n"));
    assert_eq!(v2_as(&app, "ops", "ops-password-1"), 200);

    let users = json_out(&user.ok(&["user", "list", "--json"], &[], None));
    let names: Vec<&str> = users["users"].as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["admin", "dev", "ops"]);
    let table = user.ok(&["user", "list"], &[], None);
    assert!(table.starts_with("NAME") && table.contains("STATUS") && rfc3339(&table), "{table}");

    let out = user.run_with(&["robot", "add", "ci"], &[], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_owned();
    assert!(stderr(&out).contains(&format!("docker login {host} -u ci --password-stdin")), "{}", stderr(&out));
    assert_eq!(v2_as(&app, "ci", &token), 200);
    let robots = json_out(&user.ok(&["robot", "list", "--json"], &[], None));
    assert_eq!(robots["robots"][0]["name"], "ci");
    assert_eq!(robots["robots"][0]["disabled"], false);

    let grant = json_out(&user.ok(&["grant", "add", "ci", "team/**", "developer", "--json"], &[], None));
    let id = grant["id"].as_i64().unwrap();
    app.req_as(Some(&basic("ci", &token)), Method::POST, "/v2/team/x/blobs/uploads/").send().expect(202);
    let grants = json_out(&user.ok(&["grant", "list", "--json"], &[], None));
    assert_eq!(grants["grants"][0]["repository"], "team/**");
    let table = user.ok(&["grant", "list"], &[], None);
    assert!(table.starts_with("ID") && table.contains("team/**") && table.contains("developer"), "{table}");
    let err = user.fails(&["grant", "add", "ci", "team/**", "emperor"], &[], None);
    assert!(err.contains("unknown role \"emperor\""), "{err}");
    user.ok(&["grant", "delete", &id.to_string()], &[], None);
    assert_eq!(json_out(&user.ok(&["grant", "list", "--json"], &[], None))["grants"], json!([]));

    user.ok(&["robot", "delete", "ci"], &[], None);
    assert_eq!(v2_as(&app, "ci", &token), 401);
    user.ok(&["user", "delete", "ops"], &[], None);
    let err = user.fails(&["user", "delete", "ops"], &[], None);
    assert!(err.contains("user ops not found"), "{err}");

    // A non-admin is refused by the server, and told so.
    let err = user.fails(&["user", "add", "eve", "-u", "dev", "--password-stdin"], &[("WHARF_NEW_PASSWORD", PW)], Some(&format!("{PW}\n")));
    assert!(err.contains("dev may not"), "{err}");
    // Stdin cannot carry both passwords.
    let err = user.fails(&["user", "add", "eve", "-u", "admin", "--password-stdin"], &[], Some(&format!("{ADMIN_PASSWORD}\n")));
    assert!(err.contains("pass the new one in WHARF_NEW_PASSWORD"), "{err}");

    // Locally, on the server's own (existing) database, the same commands work.
    let data = app.data_dir().to_str().unwrap().to_owned();
    let db = app.database_env();
    let local = json_out(&user.ok(&["user", "list", "--json", "--data-dir", &data], &pairs(&db), None));
    assert_eq!(local["users"].as_array().unwrap().len(), 2);
}

#[test]
fn password_change_self_and_by_admin() {
    let app = start();
    add_user(&app, "dev", &[("**", "reader", &[])]);
    add_user(&app, "other", &[]);
    let user = User::new();
    let url = app.base();
    // Self: dev changes its own password with its current one.
    let token = app.req_as(Some(&basic("dev", PW)), Method::GET, "/auth/token?service=wharf&scope=repository:x:pull").send();
    token.expect(200);
    let bearer_before = token.json()["token"].as_str().unwrap().to_owned();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    user.ok(
        &["user", "passwd", "--url", &url, "-u", "dev", "--password-stdin"],
        &[("WHARF_NEW_PASSWORD", "new-password-1")],
        Some(&format!("{PW}\n")),
    );
    assert_eq!(v2_as(&app, "dev", PW), 401, "the old password stops working");
    assert_eq!(v2_as(&app, "dev", "new-password-1"), 200);
    let r = app.req_as(Some(&bearer(&bearer_before)), Method::GET, "/v2/x/tags/list").send();
    assert_eq!(r.status, 401, "a token issued before the change is refused");
    // Someone else's: refused for dev, allowed for an admin.
    let err = user.fails(
        &["user", "passwd", "other", "--url", &url, "-u", "dev", "--password-stdin"],
        &[("WHARF_NEW_PASSWORD", "hijacked-pw-1")],
        Some("new-password-1\n"),
    );
    assert!(err.contains("dev may not"), "{err}");
    assert_eq!(v2_as(&app, "other", PW), 200, "unchanged");
    user.login(&app, "admin", ADMIN_PASSWORD);
    user.ok(&["user", "passwd", "other"], &[("WHARF_NEW_PASSWORD", "reset-by-admin")], None);
    assert_eq!(v2_as(&app, "other", "reset-by-admin"), 200);
    let err = user.fails(&["user", "passwd", "other"], &[("WHARF_NEW_PASSWORD", "short")], None);
    assert!(err.contains("passwords must be 8 to 1024 bytes"), "{err}");
    let audit = app.get("/api/v1/audit?action=account.update&n=100").json();
    assert_eq!(audit["entries"].as_array().unwrap().len(), 2, "{audit}");
    assert_eq!(audit["entries"][0]["details"]["change"], "password");
}

#[test]
fn lockout_gives_retry_after_is_per_source_and_admin_unlocks() {
    let app = TestApp::builder().with_auth().env("WHARF_AUTH__MAX_FAILED_LOGINS", "2").env("WHARF_AUTH__LOCKOUT", "120s").start();
    app.set_default_auth(Some(basic("admin", ADMIN_PASSWORD)));
    add_user(&app, "dev", &[("**", "reader", &[])]);
    // An attacker at another loopback address guesses dev's password.
    let attacker = reqwest::blocking::Client::builder().local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap()).build().unwrap();
    let v2 = format!("{}/v2/", app.base());
    for _ in 0..2 {
        assert_eq!(attacker.get(&v2).basic_auth("dev", Some("guess-guess")).send().unwrap().status(), 401);
    }
    let locked = attacker.get(&v2).basic_auth("dev", Some(PW)).send().unwrap();
    assert_eq!(locked.status(), 429);
    let retry: u64 = locked.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((110..=120).contains(&retry), "Retry-After {retry}");
    let body: Value = locked.json().unwrap();
    assert_eq!(body["errors"][0]["message"], format!("too many failed logins; try again in {retry} seconds"));
    // dev, from its own address, is slowed but not locked out by name.
    let started = std::time::Instant::now();
    assert_eq!(v2_as(&app, "dev", PW), 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(900), "logins of an account under attack are slowed");

    // Locked from 127.0.0.1 too; the CLI shows when to retry; an admin unlocks.
    for _ in 0..2 {
        assert_eq!(v2_as(&app, "dev", "guess-guess"), 401);
    }
    assert_eq!(v2_as(&app, "dev", PW), 429);
    let user = User::new();
    let err = user.fails(&["login", &app.base(), "-u", "dev", "--password-stdin"], &[], Some(&format!("{PW}\n")));
    assert!(err.contains("too many failed logins; try again in") && err.contains("retry after"), "{err}");
    user.login(&app, "admin", ADMIN_PASSWORD);
    let out = user.ok(&["user", "unlock", "dev"], &[], None);
    assert!(out.contains("unlocked dev"), "{out}");
    assert_eq!(v2_as(&app, "dev", PW), 200);
    assert_eq!(attacker.get(&v2).basic_auth("dev", Some(PW)).send().unwrap().status(), 200, "unlock clears every source");
    let err = user.fails(&["user", "unlock", "nobody"], &[], None);
    assert!(err.contains("user nobody not found"), "{err}");
    // The counters are in the database: unlocked from it, the server sees it.
    for _ in 0..2 {
        assert_eq!(v2_as(&app, "dev", "guess-guess"), 401);
    }
    assert_eq!(v2_as(&app, "dev", PW), 429);
    let db = app.database_env();
    let out = user.ok(&["user", "unlock", "dev", "--data-dir", app.data_dir().to_str().unwrap()], &pairs(&db), None);
    assert!(out.contains("unlocked dev"), "{out}");
    assert_eq!(v2_as(&app, "dev", PW), 200);
}

#[test]
fn robot_token_rotation_invalidates_the_old_token() {
    let app = start();
    let user = User::new();
    user.login(&app, "admin", ADMIN_PASSWORD);
    let old = user.ok(&["robot", "add", "ci"], &[], None).trim().to_owned();
    assert_eq!(v2_as(&app, "ci", &old), 200);
    let rotated = json_out(&user.ok(&["robot", "rotate", "ci", "--json"], &[], None));
    assert_eq!(rotated["username"], "ci");
    let new = rotated["token"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(v2_as(&app, "ci", &old), 401, "the old token is refused");
    assert_eq!(v2_as(&app, "ci", new), 200);
    let err = user.fails(&["robot", "rotate", "nobody"], &[], None);
    assert!(err.contains("robot nobody not found"), "{err}");
}

#[test]
fn disabled_accounts_cannot_log_in_and_their_tokens_are_refused() {
    let app = start();
    add_user(&app, "dev", &[("**", "reader", &[])]);
    let token = app.req_as(Some(&basic("dev", PW)), Method::GET, "/auth/token?service=wharf&scope=repository:x:pull").send().json()
        ["token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.req_as(Some(&bearer(&token)), Method::GET, "/v2/x/tags/list").send().expect_error(404, &["NAME_UNKNOWN"]);
    let user = User::new();
    user.login(&app, "admin", ADMIN_PASSWORD);
    user.ok(&["user", "disable", "dev"], &[], None);
    let r = app.req_as(Some(&basic("dev", PW)), Method::GET, "/v2/").send();
    assert_eq!(r.status, 401);
    assert!(r.text().contains("account dev is disabled"), "{}", r.text());
    assert_eq!(app.req_as(Some(&bearer(&token)), Method::GET, "/v2/x/tags/list").send().status, 401, "its token is refused");
    let listed = json_out(&user.ok(&["user", "list", "--json"], &[], None));
    let dev = listed["users"].as_array().unwrap().iter().find(|u| u["name"] == "dev").unwrap().clone();
    assert_eq!(dev["disabled"], true);
    assert!(user.ok(&["user", "list"], &[], None).contains("disabled"));
    user.ok(&["user", "enable", "dev"], &[], None);
    assert_eq!(v2_as(&app, "dev", PW), 200);
    // Robots too; locally as well.
    let robot = user.ok(&["robot", "add", "ci"], &[], None).trim().to_owned();
    let db = app.database_env();
    user.ok(&["robot", "disable", "ci", "--data-dir", app.data_dir().to_str().unwrap()], &pairs(&db), None);
    assert_eq!(v2_as(&app, "ci", &robot), 401);
    user.ok(&["robot", "enable", "ci"], &[], None);
    assert_eq!(v2_as(&app, "ci", &robot), 200);
}

#[test]
fn audit_export_uses_rfc3339_times() {
    let app = start();
    add_user(&app, "dev", &[]);
    let user = User::new();
    let db = app.database_env();
    let out = user.ok(&["audit", "export", "--data-dir", app.data_dir().to_str().unwrap()], &pairs(&db), None);
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let time = line["time"].as_str().unwrap();
        let parsed = chrono_parse(time);
        assert_eq!(parsed, line["created_at"].as_i64().unwrap(), "{line}");
    }
}

/// Milliseconds since the epoch of an RFC 3339 UTC time `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn chrono_parse(t: &str) -> i64 {
    assert!(t.ends_with('Z') && t.len() == 24 && rfc3339(t), "{t}");
    let n = |a: usize, b: usize| t[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    ((days * 24 + n(11, 13)) * 60 + n(14, 16)) * 60_000 + n(17, 19) * 1000 + n(20, 23)
}

#[test]
fn completions_and_man_page() {
    let user = User::new();
    let bash = user.ok(&["completions", "bash"], &[], None);
    assert!(bash.contains("_wharf()") && bash.contains("promote"), "{}", &bash[..bash.len().min(300)]);
    let zsh = user.ok(&["completions", "zsh"], &[], None);
    assert!(zsh.starts_with("#compdef wharf"), "{}", &zsh[..zsh.len().min(300)]);
    let man = user.ok(&["man"], &[], None);
    assert!(man.contains(".TH wharf") && man.contains("login"), "{}", &man[..man.len().min(300)]);
    let help = user.ok(&["promote", "--help"], &[], None);
    for needle in
        ["--to <STAGE>", "Stage to promote into", "--version", "Version recorded", "--note", "--url", "--password-stdin", "WHARF_URL"]
    {
        assert!(help.contains(needle), "promote --help lacks {needle}: {help}");
    }
    let err = user.fails(&["completions", "tcsh"], &[], None);
    assert!(err.contains("invalid value 'tcsh'"), "{err}");
}
