//! Nothing node-local (issue 13): registry-token signing keys live in the
//! database, so a token one node issued is accepted by every other, and a
//! rotation (`wharf keys rotate`) keeps tokens in flight valid. Failed-login
//! counters live there too; behind a trusted load balancer the client's
//! address is the one it forwards; filesystem blobs under PostgreSQL start
//! only when declared shared.
//!
//! The tests in `postgres::` run several Wharf processes on one PostgreSQL
//! database (tests/run-all.sh cargo-test-postgres); the others run on
//! whichever engine the run uses.

mod common;

use std::process::Command;

use base64::Engine;
use common::pg::TestDatabase;
use common::*;
use reqwest::Method;
use serde_json::json;

/// The database a test's nodes and CLI share: a PostgreSQL database of its
/// own on a PostgreSQL run, else none (the node's SQLite file).
fn shared_database() -> Option<TestDatabase> {
    database_engine_is_postgres().then(|| TestDatabase::create(&pg::required_postgres_url()))
}

fn node(database: Option<&TestDatabase>) -> TestApp {
    let mut b = TestApp::builder().with_auth();
    if let Some(d) = database {
        b = b.env("WHARF_DATABASE__URL", d.url.as_str());
    }
    b.start()
}

/// `wharf args... --data-dir DIR` on the node's database; its stdout.
fn wharf(app: &TestApp, database: Option<&TestDatabase>, args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("WHARF_")) {
        cmd.env_remove(k);
    }
    if let Some(d) = database {
        cmd.env("WHARF_DATABASE__URL", &d.url);
    }
    let out = cmd.args(args).arg("--data-dir").arg(app.data_dir()).output().expect("run wharf");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "wharf {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// The key ids `wharf keys list` prints, oldest first.
fn kids(app: &TestApp, database: Option<&TestDatabase>) -> Vec<String> {
    wharf(app, database, &["keys", "list"]).lines().filter_map(|l| l.split_whitespace().next().map(str::to_owned)).collect()
}

fn token(app: &TestApp) -> String {
    let r = app.req_as(Some(&basic("admin", ADMIN_PASSWORD)), Method::GET, "/auth/token?service=wharf").send();
    r.expect(200);
    r.json()["token"].as_str().expect("token").to_owned()
}

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().expect("JWT header");
    let json: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).expect("base64")).expect("json");
    json["kid"].as_str().expect("kid in the header").to_owned()
}

fn accepted(app: &TestApp, token: &str) -> bool {
    let r = app.req_as(Some(&bearer(token)), Method::GET, "/v2/").send();
    match r.status {
        200 => true,
        401 => false,
        other => panic!("GET /v2/ with a bearer token: {other} {}", r.text()),
    }
}

#[test]
fn rotation_keeps_tokens_in_flight_and_the_new_key_signs() {
    let database = shared_database();
    let mut app = node(database.as_ref());
    let before = token(&app);
    let first = kids(&app, database.as_ref());
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(kid_of(&before), first[0]);
    assert!(app.log().contains(&first[0]), "the first key's creation is logged by id:\n{}", app.log());

    let out = wharf(&app, database.as_ref(), &["keys", "rotate"]);
    let after = kids(&app, database.as_ref());
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(after[0], first[0], "the previous key still verifies");
    assert!(out.contains(&format!("new signing key {}", after[1])), "{out}");
    assert!(accepted(&app, &before), "a token issued before the rotation still works");

    // A restarted node reads the keys afresh and signs with the newest.
    app.restart();
    let new = token(&app);
    assert_eq!(kid_of(&new), after[1]);
    assert!(accepted(&app, &new) && accepted(&app, &before));

    // A token naming a key nobody has, or signed with another secret under a known id, is refused.
    let forge = |kid: &str| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(kid.to_owned());
        let now = chrono::Utc::now().timestamp();
        let claims = serde_json::json!({"iss": "wharf", "sub": "admin", "aud": "wharf", "exp": now + 300, "nbf": now - 10,
                                        "iat": now, "jti": "x", "access": []});
        jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(b"not-the-key-not-the-key-not-the-k")).unwrap()
    };
    assert!(!accepted(&app, &forge("no-such-key")));
    assert!(!accepted(&app, &forge(&after[1])));
}

/// Creates user `name` (password [`USER_PW`]) through `app` as the admin.
fn add_user(app: &TestApp, name: &str) {
    app.req_as(Some(&basic("admin", ADMIN_PASSWORD)), Method::POST, "/api/v1/users")
        .header("Content-Type", "application/json")
        .body(json!({"name": name, "password": USER_PW}).to_string())
        .send()
        .expect(201);
}

const USER_PW: &str = "user-password-123";

/// `GET /v2/` as `user` with `password`, through `app`, with an
/// `X-Forwarded-For` header if given; the status.
fn login(app: &TestApp, user: &str, password: &str, forwarded_for: Option<&str>) -> u16 {
    let mut r = app.req_as(Some(&basic(user, password)), Method::GET, "/v2/");
    if let Some(xff) = forwarded_for {
        r = r.header("X-Forwarded-For", xff);
    }
    r.send().status
}

/// The sources of the audit rows of failed logins of `user`.
fn failed_login_sources(app: &TestApp, user: &str) -> Vec<String> {
    let r = app.req_as(Some(&basic("admin", ADMIN_PASSWORD)), Method::GET, "/api/v1/audit?action=access.denied&n=1000").send();
    r.expect(200);
    let entries = r.json()["entries"].as_array().cloned().unwrap_or_default();
    entries.iter().filter(|e| e["actor"] == user).map(|e| e["source"].as_str().unwrap_or("").to_owned()).collect()
}

#[test]
fn behind_a_trusted_proxy_the_forwarded_address_is_the_source() {
    let app = TestApp::builder()
        .with_auth()
        .env("WHARF_AUTH__MAX_FAILED_LOGINS", "2")
        .env("WHARF_SERVER__TRUSTED_PROXIES", r#"["127.0.0.1", "10.0.0.0/8"]"#)
        .start();
    add_user(&app, "dev");
    // The balancer appends the client's address to what the client wrote.
    for _ in 0..2 {
        assert_eq!(login(&app, "dev", "wrong-wrong", Some("198.51.100.1, 203.0.113.7")), 401);
    }
    assert_eq!(login(&app, "dev", USER_PW, Some("203.0.113.7")), 429, "locked from 203.0.113.7");
    // Another client behind the same balancer is not locked (only slowed), nor is the balancer itself.
    assert_eq!(login(&app, "dev", USER_PW, Some("203.0.113.8, 10.1.2.3")), 200, "an inner trusted proxy is skipped");
    // A header that does not parse: the balancer's own address.
    assert_eq!(login(&app, "dev", USER_PW, Some("not-an-address")), 200);
    assert_eq!(failed_login_sources(&app, "dev"), vec!["203.0.113.7", "203.0.113.7"]);
    assert!(app.log().contains("peer=203.0.113.7"), "the access log names the client:\n{}", app.log());
}

#[test]
fn from_an_untrusted_peer_the_header_is_ignored() {
    let app = TestApp::builder().with_auth().env("WHARF_AUTH__MAX_FAILED_LOGINS", "2").start();
    add_user(&app, "dev");
    // Claiming another address each time changes nothing: the peer is counted.
    assert_eq!(login(&app, "dev", "wrong-wrong", Some("203.0.113.1")), 401);
    assert_eq!(login(&app, "dev", "wrong-wrong", Some("203.0.113.2")), 401);
    assert_eq!(login(&app, "dev", USER_PW, Some("203.0.113.3")), 429);
    assert_eq!(failed_login_sources(&app, "dev"), vec!["127.0.0.1", "127.0.0.1"]);
    assert!(!app.log().contains("peer=203.0.113"), "{}", app.log());
}

#[test]
fn filesystem_blobs_under_postgres_are_refused_unless_declared_shared() {
    // Refused before the database is opened: no server is needed at that URL.
    let (status, log) = TestApp::builder()
        .env("WHARF_DATABASE__URL", "postgres://wharf@127.0.0.1:9/wharf")
        .env(SHARED_FLAG, "false")
        .run_to_exit(std::time::Duration::from_secs(30));
    assert!(!status.success());
    assert!(log.contains("blobs in") && log.contains("are on this node only") && log.contains("storage.filesystem.shared = true"), "{log}");
    assert!(!log.contains("cannot connect"), "refused before connecting: {log}");
}

/// Needs the test PostgreSQL server: named `postgres::...`, so the
/// cargo-test step skips it and the cargo-test-postgres step runs it.
mod postgres {
    use super::*;

    #[test]
    fn a_token_from_one_node_is_accepted_by_another_also_after_a_rotation() {
        let Some(server) = pg::postgres_url() else { return };
        let database = TestDatabase::create(&server);
        let db = Some(&database);
        // One after the other: two nodes creating the admin account at once
        // race on it (a separate start-up step). The first key is created
        // on first use, by whichever node a token is asked of first.
        let a = node(db);
        let b = node(db);
        let (from_a, from_b) = (token(&a), token(&b));
        assert_eq!(kid_of(&from_a), kid_of(&from_b));
        assert_eq!(kids(&a, db), vec![kid_of(&from_a)]);
        assert!(accepted(&b, &from_a) && accepted(&a, &from_b));

        // Rotated from the command line; a node started afterwards signs with
        // the new key, and the running nodes accept its tokens at once (an
        // unknown key id makes them read the keys again).
        wharf(&a, db, &["keys", "rotate"]);
        let c = node(db);
        let from_c = token(&c);
        let keys = kids(&c, db);
        assert_eq!(keys.len(), 2);
        assert_eq!(kid_of(&from_c), keys[1]);
        std::thread::sleep(std::time::Duration::from_millis(1100)); // past the re-read rate limit
        assert!(accepted(&a, &from_c) && accepted(&b, &from_c), "the new key is picked up by the running nodes");
        assert!(accepted(&c, &from_a), "tokens of the previous key still verify on the new node");
    }

    #[test]
    fn failed_logins_on_two_nodes_count_together() {
        let Some(server) = pg::postgres_url() else { return };
        let database = TestDatabase::create(&server);
        let db = Some(&database);
        let a = node(db);
        let b = node(db);
        add_user(&a, "dev");
        // auth.max_failed_logins = 5 (the default): 3 on one node, 2 on the other.
        for app in [&a, &b, &a, &b, &a] {
            assert_eq!(login(app, "dev", "wrong-wrong", None), 401);
        }
        assert_eq!(login(&a, "dev", USER_PW, None), 429, "locked on a");
        assert_eq!(login(&b, "dev", USER_PW, None), 429, "locked on b");
        // An admin's unlock on one node clears the lock on the other.
        a.req_as(Some(&basic("admin", ADMIN_PASSWORD)), Method::POST, "/api/v1/users/dev/unlock").send().expect(204);
        assert_eq!(login(&b, "dev", USER_PW, None), 200);
    }

    #[test]
    fn filesystem_blobs_declared_shared_start_on_postgres() {
        let Some(server) = pg::postgres_url() else { return };
        let database = TestDatabase::create(&server);
        let app = TestApp::builder().env("WHARF_DATABASE__URL", database.url.as_str()).env(SHARED_FLAG, "true").start();
        push_blob(&app, "shared/fs", b"on a shared mount");
    }
}
