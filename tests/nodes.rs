//! Nothing node-local (issue 13): registry-token signing keys live in the
//! database, so a token one node issued is accepted by every other, and a
//! rotation (`wharf keys rotate`) keeps tokens in flight valid.
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
}
