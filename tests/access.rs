//! Access control over HTTP: every role × action pair, the Docker token
//! flow, bad tokens, robots, anonymous pull, login limits, bootstrap, the
//! local CLI, and HTTPS.

mod common;

use std::process::Command;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const PW: &str = "password-123";

/// A server with auth on; `admin` is the default credential of `app.req`.
fn start() -> TestApp {
    let app = TestApp::builder().with_auth().start();
    app.set_default_auth(Some(basic("admin", ADMIN_PASSWORD)));
    app
}

fn admin_post(app: &TestApp, path: &str, body: Value) -> Resp {
    app.req(Method::POST, path).header("Content-Type", "application/json").body(body.to_string()).send()
}

fn add_user(app: &TestApp, name: &str, grants: &[(&str, &str, &[&str])]) -> String {
    admin_post(app, "/api/v1/users", json!({"name": name, "password": PW})).expect(201);
    for (glob, role, stages) in grants {
        admin_post(app, "/api/v1/grants", json!({"account": name, "repository": glob, "role": role, "stages": stages})).expect(201);
    }
    basic(name, PW)
}

fn promote_as(app: &TestApp, auth: Option<&str>, repo: &str, reference: &str, stage: &str) -> Resp {
    app.req_as(auth, Method::POST, &format!("/api/v1/repositories/{repo}/promotions"))
        .header("Content-Type", "application/json")
        .body(json!({"reference": reference, "stage": stage}).to_string())
        .send()
}

fn stage_digest(app: &TestApp, repo: &str, stage: &str) -> Option<String> {
    let r = app.head(&format!("/v2/{repo}/manifests/{stage}"));
    (r.status == 200).then(|| r.must_header("docker-content-digest"))
}

fn tag_digest(app: &TestApp, repo: &str, tag: &str) -> Option<String> {
    stage_digest(app, repo, tag)
}

fn audit_count(app: &TestApp, action: &str) -> usize {
    let r = app.get(&format!("/api/v1/audit?action={action}&n=1000"));
    r.expect(200);
    r.json()["entries"].as_array().map_or(0, Vec::len)
}

/// Checks a refusal: 401 with the challenge for `None` credentials or 403
/// DENIED otherwise.
#[track_caller]
fn assert_refused(r: &Resp, anonymous: bool) {
    if anonymous {
        r.expect_error(401, &["UNAUTHORIZED"]);
        assert!(r.header("www-authenticate").is_some(), "401 without a challenge:\n{}", r.describe());
    } else {
        r.expect_error(403, &["DENIED"]);
    }
}

const ACTIONS: [&str; 9] =
    ["pull", "push", "delete", "promote:test", "promote:preprod", "promote:prod", "rollback:prod", "read-audit", "manage-accounts"];

/// Sets up `repo` as the admin: tag `del`, image `e` (nowhere yet), `c` in
/// test, `d` in preprod, and prod with two releases (so it can roll back).
struct Fixture {
    del: String,
    e: String,
    c: String,
    d: String,
}

fn fixture(app: &TestApp, repo: &str) -> Fixture {
    let del = push_image(app, repo, Some("del"), 1).digest;
    let e = push_image(app, repo, Some("e"), 1).digest;
    let c = push_image(app, repo, Some("c"), 1).digest;
    let d = push_image(app, repo, Some("d"), 1).digest;
    let a = push_image(app, repo, Some("a"), 1).digest;
    let b = push_image(app, repo, Some("b"), 1).digest;
    let admin = basic("admin", ADMIN_PASSWORD);
    for (digest, stages) in [
        (&c, &["test"][..]),
        (&d, &["test", "preprod"][..]),
        (&a, &["test", "preprod", "prod"][..]),
        (&b, &["test", "preprod", "prod"][..]),
    ] {
        for stage in stages {
            promote_as(app, Some(&admin), repo, digest, stage).expect(201);
        }
    }
    Fixture { del, e, c, d }
}

/// Performs `action` as `auth` on `repo`; returns whether it was allowed,
/// after checking that a refused action changed nothing.
fn attempt<'a>(app: &'a TestApp, auth: Option<&str>, repo: &'a str, f: &'a Fixture, action: &'a str) -> bool {
    let anonymous = auth.is_none();
    let (resp, changed): (Resp, Box<dyn Fn() -> bool + 'a>) = match action {
        "pull" => {
            let r = app.req_as(auth, Method::GET, &format!("/v2/{repo}/manifests/del")).header("Accept", OCI_MANIFEST).send();
            (r, Box::new(|| false))
        }
        "push" => {
            let blob = unique_bytes(300);
            let digest = sha256_digest(&blob);
            let r = app
                .req_as(auth, Method::POST, &format!("/v2/{repo}/blobs/uploads/?digest={digest}"))
                .header("Content-Type", "application/octet-stream")
                .body(blob)
                .send();
            let repo = repo.to_owned();
            (r, Box::new(move || app.head(&format!("/v2/{repo}/blobs/{digest}")).status == 200))
        }
        "delete" => {
            let r = app.req_as(auth, Method::DELETE, &format!("/v2/{repo}/manifests/del")).send();
            (r, Box::new(|| tag_digest(app, repo, "del").as_deref() != Some(f.del.as_str())))
        }
        "promote:test" | "promote:preprod" | "promote:prod" => {
            let stage = &action["promote:".len()..];
            let digest = match stage {
                "test" => &f.e,
                "preprod" => &f.c,
                _ => &f.d,
            };
            let before = stage_digest(app, repo, stage);
            let r = promote_as(app, auth, repo, digest, stage);
            (r, Box::new(move || stage_digest(app, repo, stage) != before))
        }
        "rollback:prod" => {
            let before = stage_digest(app, repo, "prod");
            let r = app.req_as(auth, Method::POST, &format!("/api/v1/repositories/{repo}/stages/prod/rollback")).send();
            (r, Box::new(move || stage_digest(app, repo, "prod") != before))
        }
        "read-audit" => (app.req_as(auth, Method::GET, "/api/v1/audit?n=5").send(), Box::new(|| false)),
        "manage-accounts" => {
            let name = format!("made-{}", unique_token().replace('-', "").chars().rev().take(12).collect::<String>());
            let r = app
                .req_as(auth, Method::POST, "/api/v1/users")
                .header("Content-Type", "application/json")
                .body(json!({"name": name, "password": PW}).to_string())
                .send();
            (r, Box::new(move || app.get("/api/v1/users").text().contains(&format!("\"{name}\""))))
        }
        other => panic!("unknown action {other}"),
    };
    if (200..300).contains(&resp.status) {
        return true;
    }
    assert_refused(&resp, anonymous);
    assert!(!changed(), "refused {action} changed state:\n{}", resp.describe());
    false
}

#[test]
fn every_role_and_action() {
    let app = start();
    let dev = add_user(&app, "dev", &[("team/**", "developer", &[])]);
    let rel = add_user(&app, "rel", &[("team/**", "releaser", &["preprod", "prod"])]);
    let reader = add_user(&app, "reader", &[("team/**", "reader", &[])]);
    let auditor = add_user(&app, "auditor", &[("**", "auditor", &[])]);
    let outsider = add_user(&app, "outsider", &[("other/**", "developer", &[])]);
    let admin = basic("admin", ADMIN_PASSWORD);
    let t = true;
    let f = false;
    //               pull push del  p:test p:pre p:prod rb:prod audit accounts
    let table: Vec<(&str, Option<&str>, [bool; 9])> = vec![
        ("reader", Some(&reader), [t, f, f, f, f, f, f, f, f]),
        ("developer", Some(&dev), [t, t, t, t, f, f, f, f, f]),
        ("releaser", Some(&rel), [t, t, t, t, t, t, t, f, f]),
        ("auditor", Some(&auditor), [t, f, f, f, f, f, f, t, f]),
        ("admin", Some(&admin), [t; 9]),
        ("outsider", Some(&outsider), [f; 9]),
        ("anonymous", None, [f; 9]),
    ];
    for (role, auth, expected) in &table {
        let repo = format!("team/{role}");
        let fx = fixture(&app, &repo);
        for (action, want) in ACTIONS.iter().zip(expected) {
            let got = attempt(&app, *auth, &repo, &fx, action);
            assert_eq!(got, *want, "{role} {action}: allowed={got}, expected {want}");
        }
    }
    // Every 403 above was recorded, naming who was refused.
    let denied = app.get("/api/v1/audit?action=access.denied&actor=outsider&n=100").json();
    assert!(denied["entries"].as_array().is_some_and(|e| e.len() >= 9), "{denied}");
    let log = app.log();
    assert!(!log.contains(PW) && !log.contains(ADMIN_PASSWORD), "a password reached the log");
}

#[test]
fn docker_token_flow_scopes_tokens_to_their_repository() {
    let app = start();
    let dev = add_user(&app, "dev", &[("team/**", "developer", &[])]);
    // /v2/ challenges clients without credentials with the token realm.
    let r = app.req_as(None, Method::GET, "/v2/").send();
    r.expect_error(401, &["UNAUTHORIZED"]);
    let challenge = r.must_header("www-authenticate");
    assert_eq!(challenge, format!("Bearer realm=\"{}/auth/token\",service=\"wharf\"", app.base()));
    let r = app.req_as(None, Method::GET, "/v2/team/app/manifests/v1").send();
    r.expect(401);
    assert!(r.must_header("www-authenticate").contains("scope=\"repository:team/app:pull\""), "{}", r.describe());

    let r = app
        .req_as(Some(&dev), Method::GET, "/auth/token?service=wharf&scope=repository:team/app:pull,push&scope=repository:secret/x:pull")
        .send();
    r.expect(200);
    let body = r.json();
    let token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(body["access_token"], body["token"]);
    assert!(body["expires_in"].as_u64().unwrap() > 0 && body["issued_at"].is_string());

    let as_token = bearer(&token);
    app.req_as(Some(&as_token), Method::GET, "/v2/").send().expect(200);
    let config = unique_bytes(200);
    let digest = sha256_digest(&config);
    app.req_as(Some(&as_token), Method::POST, &format!("/v2/team/app/blobs/uploads/?digest={digest}")).body(config).send().expect(201);
    // The token covers team/app only: another repository asks for a new token.
    let r = app.req_as(Some(&as_token), Method::GET, &format!("/v2/team/other/blobs/{digest}")).send();
    r.expect_error(401, &["UNAUTHORIZED"]);
    assert!(r.must_header("www-authenticate").contains("repository:team/other:pull"));
    // Nor does a token carry delete when only pull,push was asked for.
    app.req_as(Some(&as_token), Method::DELETE, &format!("/v2/team/app/blobs/{digest}")).send().expect(401);

    // Wrong password at the token endpoint: 401, audited.
    let before = audit_count(&app, "access.denied");
    app.req_as(Some(&basic("dev", "wrong-password")), Method::GET, "/auth/token?scope=repository:team/app:pull").send().expect(401);
    assert_eq!(audit_count(&app, "access.denied"), before + 1);

    // containerd's OAuth2 form works too.
    let r = app
        .req_as(None, Method::POST, "/auth/token")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=password&username=dev&password={PW}&service=wharf&scope=repository%3Ateam%2Fapp%3Apull"))
        .send();
    r.expect(200);
    assert!(r.json()["access_token"].is_string());
}

#[test]
fn forged_expired_tampered_and_foreign_tokens_are_refused() {
    use jsonwebtoken::{encode, EncodingKey, Header};
    // A key file of the test's own: on SQLite and on PostgreSQL alike it
    // becomes the first signing key (PostgreSQL makes no token.key itself).
    let key_dir = tempfile::tempdir().expect("tempdir");
    let key_file = key_dir.path().join("token.key");
    std::fs::write(&key_file, rand_key()).expect("writing the key file");
    let app = TestApp::builder().with_auth().env("WHARF_AUTH__TOKEN_KEY_FILE", key_file.to_string_lossy()).start();
    app.set_default_auth(Some(basic("admin", ADMIN_PASSWORD)));
    add_user(&app, "dev", &[("team/**", "developer", &[])]);
    push_image(&app, "team/app", Some("v1"), 1);
    let key = std::fs::read(&key_file).expect("token key");
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64, aud: &str| {
        json!({"iss": "wharf", "sub": "dev", "aud": aud, "exp": exp, "nbf": now - 10, "iat": now - 10, "jti": "x",
               "access": [{"type": "repository", "name": "team/app", "actions": ["pull"]}]})
    };
    let sign = |k: &[u8], c: &Value| encode(&Header::default(), c, &EncodingKey::from_secret(k)).unwrap();
    let pull =
        |token: &str| app.req_as(Some(&bearer(token)), Method::GET, "/v2/team/app/manifests/v1").header("Accept", OCI_MANIFEST).send();

    let good = sign(&key, &claims(now + 300, "wharf"));
    pull(&good).expect(200);
    let other_key = sign(b"another-key-another-key-another-key!", &claims(now + 300, "wharf"));
    pull(&other_key).expect_error(401, &["UNAUTHORIZED"]);
    let expired = sign(&key, &claims(now - 60, "wharf"));
    pull(&expired).expect_error(401, &["UNAUTHORIZED"]);
    let foreign_audience = sign(&key, &claims(now + 300, "some-other-registry"));
    pull(&foreign_audience).expect_error(401, &["UNAUTHORIZED"]);
    // Tampered: the payload edited to grant push, signature kept.
    let parts: Vec<&str> = good.split('.').collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = String::from_utf8(b64.decode(parts[1]).unwrap()).unwrap().replace("\"pull\"", "\"pull\",\"push\"");
    let tampered = format!("{}.{}.{}", parts[0], b64.encode(payload), parts[2]);
    pull(&tampered).expect_error(401, &["UNAUTHORIZED"]);
    pull("not.a.token").expect_error(401, &["UNAUTHORIZED"]);
    // A token for another repository.
    let token = app.req_as(Some(&basic("dev", PW)), Method::GET, "/auth/token?scope=repository:team/other:pull").send().json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    pull(&token).expect(401);
}

#[test]
fn robots_push_with_their_token_until_deleted_or_expired() {
    let app = start();
    let r = admin_post(&app, "/api/v1/robots", json!({"name": "ci", "expires_in_days": 30}));
    r.expect(201);
    let token = r.json()["token"].as_str().unwrap().to_owned();
    admin_post(&app, "/api/v1/grants", json!({"account": "ci", "repository": "team/*", "role": "developer"})).expect(201);
    let robot = basic("ci", &token);
    app.set_default_auth(Some(robot.clone()));
    push_image(&app, "team/app", Some("v1"), 2);
    app.set_default_auth(Some(basic("admin", ADMIN_PASSWORD)));
    // Outside its glob: 403.
    let r = app.req_as(Some(&robot), Method::POST, "/v2/elsewhere/app/blobs/uploads/").send();
    r.expect_error(403, &["DENIED"]);
    // The token is never listed, and never logged.
    assert!(!app.get("/api/v1/robots").text().contains(&token));
    assert!(!app.log().contains(&token), "robot token reached the log");
    app.delete("/api/v1/robots/ci").expect(204);
    app.req_as(Some(&robot), Method::GET, "/v2/team/app/manifests/v1").send().expect(401);
    admin_post(&app, "/api/v1/robots", json!({"name": "bad", "expires_in_days": 0})).expect_error(400, &["INVALID_REQUEST"]);
}

#[test]
fn management_api_validates_input() {
    let app = start();
    admin_post(&app, "/api/v1/users", json!({"name": "Bad Name", "password": PW})).expect_error(400, &["INVALID_REQUEST"]);
    admin_post(&app, "/api/v1/users", json!({"name": "short", "password": "x"})).expect_error(400, &["INVALID_REQUEST"]);
    admin_post(&app, "/api/v1/users", json!({"name": "ok", "password": PW})).expect(201);
    admin_post(&app, "/api/v1/users", json!({"name": "ok", "password": PW})).expect_error(409, &["CONFLICT"]);
    admin_post(&app, "/api/v1/grants", json!({"account": "ok", "repository": "a/[", "role": "reader"}))
        .expect_error(400, &["INVALID_REQUEST"]);
    admin_post(&app, "/api/v1/grants", json!({"account": "ok", "repository": "a/*", "role": "king"}))
        .expect_error(400, &["INVALID_REQUEST"]);
    admin_post(&app, "/api/v1/grants", json!({"account": "ok", "repository": "a/*", "role": "releaser", "stages": ["moon"]}))
        .expect_error(400, &["INVALID_REQUEST"]);
    admin_post(&app, "/api/v1/grants", json!({"account": "ghost", "repository": "a/*", "role": "reader"}))
        .expect_error(404, &["NOT_FOUND"]);
    app.delete("/api/v1/grants/abc").expect_error(400, &["INVALID_REQUEST"]);
    app.delete("/api/v1/grants/999999").expect_error(404, &["NOT_FOUND"]);
    let grants = app.get("/api/v1/grants").json();
    assert_eq!(grants["grants"].as_array().map(Vec::len), Some(0), "{grants}");
    // Account changes are audited.
    assert!(audit_count(&app, "account.create") >= 2);
}

#[test]
fn catalog_lists_only_what_the_caller_may_pull() {
    let app = start();
    for repo in ["team/a", "team/b", "other/c", "zzz/d"] {
        push_image(&app, repo, Some("v1"), 1);
    }
    let dev = add_user(&app, "dev", &[("team/*", "developer", &[])]);
    let list = |auth: &str, n: u32| app.req_as(Some(auth), Method::GET, &format!("/v2/_catalog?n={n}")).send();
    let r = list(&dev, 100);
    r.expect(200);
    assert_eq!(r.json()["repositories"], json!(["team/a", "team/b"]));
    // Paged by one, the Link header walks the visible names only.
    let r = list(&dev, 1);
    assert_eq!(r.json()["repositories"], json!(["team/a"]));
    let next = r.must_header("link");
    let next_path = next.trim_start_matches('<').split('>').next().unwrap().to_owned();
    let r = app.req_as(Some(&dev), Method::GET, &next_path).send();
    assert_eq!(r.json()["repositories"], json!(["team/b"]));
    let admin = list(&basic("admin", ADMIN_PASSWORD), 100);
    assert_eq!(admin.json()["repositories"].as_array().map(Vec::len), Some(4));
    app.req_as(None, Method::GET, "/v2/_catalog").send().expect(401);
}

/// The catalog's `Link` (and the `last=` it suggests) never names a
/// repository the caller may not pull, whatever the page size.
#[test]
fn catalog_links_never_leak_private_names() {
    let app = start();
    for repo in ["aaa/private", "team/a", "mmm/private", "team/b", "zzz/private"] {
        push_image(&app, repo, Some("v1"), 1);
    }
    let nobody = add_user(&app, "nobody", &[]);
    let dev = add_user(&app, "dev", &[("team/*", "reader", &[])]);
    let list = |auth: &str, path: &str| {
        let r = app.req_as(Some(auth), Method::GET, path).send();
        r.expect(200);
        let link = r.header("link");
        assert!(!link.as_deref().unwrap_or_default().contains("private"), "Link leaks a private name: {link:?}");
        (r.json()["repositories"].clone(), next_link(&r))
    };
    // A user who may pull nothing learns nothing, at any page size.
    for n in [1, 2, 100] {
        assert_eq!(list(&nobody, &format!("/v2/_catalog?n={n}")), (json!([]), None));
    }
    // Paging by one walks only the visible names, and ends after the last.
    let (page, next) = list(&dev, "/v2/_catalog?n=1");
    assert_eq!(page, json!(["team/a"]));
    let (page, next) = list(&dev, &next.expect("a Link after team/a"));
    assert_eq!(page, json!(["team/b"]));
    assert_eq!(next, None, "nothing pullable follows team/b");
    // Starting from a private name the caller typed still reveals nothing new.
    assert_eq!(list(&dev, "/v2/_catalog?n=1&last=mmm/private"), (json!(["team/a"]), Some("/v2/_catalog?n=1&last=team%2Fa".into())));
}

#[test]
fn anonymous_pull_only_where_configured() {
    let app = TestApp::builder().with_auth().env("WHARF_AUTH__ANONYMOUS_PULL", "[\"public/**\"]").start();
    app.set_default_auth(Some(basic("admin", ADMIN_PASSWORD)));
    push_image(&app, "public/tool", Some("v1"), 1);
    push_image(&app, "private/tool", Some("v1"), 1);
    // Without credentials: allowed where configured, challenged elsewhere.
    app.req_as(None, Method::GET, "/v2/public/tool/manifests/v1").header("Accept", OCI_MANIFEST).send().expect(200);
    app.req_as(None, Method::GET, "/v2/private/tool/manifests/v1").header("Accept", OCI_MANIFEST).send().expect(401);
    // Docker-style clients follow the /v2/ challenge to an anonymous token.
    app.req_as(None, Method::GET, "/v2/").send().expect(401);
    let t = app
        .req_as(None, Method::GET, "/auth/token?service=wharf&scope=repository:public/tool:pull,push&scope=repository:private/tool:pull")
        .send();
    t.expect(200);
    let token = bearer(t.json()["token"].as_str().unwrap());
    app.req_as(Some(&token), Method::GET, "/v2/public/tool/manifests/v1").header("Accept", OCI_MANIFEST).send().expect(200);
    app.req_as(Some(&token), Method::GET, "/v2/private/tool/manifests/v1").header("Accept", OCI_MANIFEST).send().expect(401);
    app.req_as(Some(&token), Method::POST, "/v2/public/tool/blobs/uploads/").send().expect(401);
}

#[test]
fn failed_logins_are_rate_limited() {
    let app = TestApp::builder().with_auth().env("WHARF_AUTH__MAX_FAILED_LOGINS", "3").start();
    app.set_default_auth(Some(basic("admin", ADMIN_PASSWORD)));
    add_user(&app, "dev", &[("**", "reader", &[])]);
    for _ in 0..3 {
        app.req_as(Some(&basic("dev", "nope-nope-nope")), Method::GET, "/v2/").send().expect(401);
    }
    // Locked out, even with the right password.
    app.req_as(Some(&basic("dev", PW)), Method::GET, "/v2/").send().expect_error(429, &["TOOMANYREQUESTS"]);
    // Other accounts still log in.
    app.req_as(Some(&basic("admin", ADMIN_PASSWORD)), Method::GET, "/v2/").send().expect(200);
}

#[test]
fn no_default_password_and_cli_bootstrap() {
    let app = TestApp::builder().env("WHARF_AUTH__ENABLED", "true").start();
    for guess in ["admin", "password", "wharf", ""] {
        app.req_as(Some(&basic("admin", guess)), Method::GET, "/v2/").send().expect(401);
    }
    // `wharf user add` works on the local database, next to a running server.
    let out = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["user", "add", "root", "--admin", "--data-dir"])
        .arg(app.data_dir())
        .envs(app.database_env())
        .env("WHARF_PASSWORD", PW)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    app.req_as(Some(&basic("root", PW)), Method::GET, "/v2/").send().expect(200);
    let out = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["robot", "add", "ci", "--data-dir"])
        .arg(app.data_dir())
        .envs(app.database_env())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let out = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["grant", "add", "ci", "team/**", "developer", "--data-dir"])
        .arg(app.data_dir())
        .envs(app.database_env())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    app.req_as(Some(&basic("ci", &token)), Method::POST, "/v2/team/x/blobs/uploads/").send().expect(202);
    let out = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["grant", "add", "ci", "team/**", "emperor", "--data-dir"])
        .arg(app.data_dir())
        .envs(app.database_env())
        .output()
        .unwrap();
    assert!(!out.status.success(), "an unknown role was accepted");
}

#[test]
fn serves_https_with_configured_certificate() {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let app = TestApp::builder()
        .with_auth()
        .env("WHARF_SERVER__TLS__CERT_FILE", cert_path.to_str().unwrap())
        .env("WHARF_SERVER__TLS__KEY_FILE", key_path.to_str().unwrap())
        .https(cert.cert.pem().into_bytes())
        .start();
    assert!(app.base().starts_with("https://"));
    let r = app.req_as(None, Method::GET, "/v2/").send();
    r.expect(401);
    assert!(r.must_header("www-authenticate").contains("realm=\"https://127.0.0.1:"), "{}", r.describe());
    app.set_default_auth(Some(basic("admin", ADMIN_PASSWORD)));
    let image = push_image(&app, "tls/app", Some("v1"), 2);
    assert_manifest(&app, "tls/app", "v1", OCI_MANIFEST, &image.manifest);
    // Blobs over TLS take the streamed path, not sendfile.
    for (layer, digest) in image.layers.iter().zip(&image.layer_digests) {
        assert_blob(&app, "tls/app", digest, layer);
    }
}

#[test]
fn identities_are_the_actors_and_separation_of_duties_uses_them() {
    let app = TestApp::builder().with_auth().env("WHARF_GOVERNANCE__GATES__TEST__SEPARATION_OF_DUTIES", "true").start();
    app.set_default_auth(Some(basic("admin", ADMIN_PASSWORD)));
    let dev = add_user(&app, "dev", &[("team/**", "developer", &[])]);
    let rel = add_user(&app, "rel", &[("team/**", "releaser", &["preprod", "prod"])]);
    app.set_default_auth(Some(dev.clone()));
    let image = push_image(&app, "team/sod", Some("v1"), 1);
    app.set_default_auth(Some(basic("admin", ADMIN_PASSWORD)));
    let r = promote_as(&app, Some(&dev), "team/sod", "v1", "test");
    r.expect_error(409, &["PROMOTION_DENIED"]);
    assert!(r.text().contains("separation_of_duties: dev pushed this image"), "{}", r.describe());
    let r = promote_as(&app, Some(&rel), "team/sod", "v1", "test");
    r.expect(201);
    assert_eq!(r.json()["actor"], "rel");
    let pushes = app.get("/api/v1/audit?action=manifest.push&repository=team/sod").json();
    assert_eq!(pushes["entries"][0]["actor"], "dev", "{pushes}");
    assert_eq!(pushes["entries"][0]["digest"], image.digest.as_str());
}

#[test]
fn token_endpoint_refuses_bad_input() {
    let app = start();
    add_user(&app, "dev", &[("team/**", "developer", &[])]);
    let dev = basic("dev", PW);
    let get = |q: &str| app.req_as(Some(&dev), Method::GET, &format!("/auth/token?{q}")).send();
    get("scope=repository-team-app-pull").expect_error(400, &["INVALID_REQUEST"]);
    get("scope=repository:Bad..Name:pull").expect_error(400, &["INVALID_REQUEST"]);
    let many = (0..40).map(|i| format!("scope=repository:team/a{i}:pull")).collect::<Vec<_>>().join("&");
    get(&many).expect_error(400, &["INVALID_REQUEST"]);
    get(&format!("scope={}", "a".repeat(20_000))).expect_error(400, &["INVALID_REQUEST"]);
    // Unknown actions and resource types grant nothing rather than fail.
    let r = get("scope=repository:team/app:fly&scope=gizmo:x:y");
    r.expect(200);
    let token = bearer(r.json()["token"].as_str().unwrap());
    app.req_as(Some(&token), Method::GET, "/v2/team/app/tags/list").send().expect(401);
    app.req_as(None, Method::POST, "/auth/token")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=refresh_token&refresh_token=x")
        .send()
        .expect_error(400, &["UNSUPPORTED"]);
    app.req_as(Some("Digest username=dev"), Method::GET, "/v2/").send().expect_error(401, &["UNAUTHORIZED"]);
    app.req_as(Some("Basic !!!not-base64"), Method::GET, "/v2/").send().expect_error(401, &["UNAUTHORIZED"]);
}

/// 32 random bytes for a token key file.
fn rand_key() -> [u8; 32] {
    rand::random()
}
