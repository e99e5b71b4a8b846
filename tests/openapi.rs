//! `/api/v1/openapi.json`: an OpenAPI 3 document that describes what the
//! server really answers. Every documented operation is called on a running
//! Wharf (auth on), and every answer's status and body are checked against
//! the document's schema for it (JSON Schema, with the `jsonschema` crate).
//! The document itself is also checked by openapi-spec-validator in
//! tests/run-all.sh (step `openapi`).

mod common;
mod diff_support;

use std::collections::BTreeSet;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

struct Checker<'a> {
    app: &'a TestApp,
    doc: Value,
    /// (method, path template) of every operation called with a documented answer.
    called: BTreeSet<(String, String)>,
}

impl Checker<'_> {
    /// Calls `method concrete` (documented as `template`) and checks the
    /// answer against the document; returns it.
    #[track_caller]
    fn call(&mut self, method: Method, template: &str, concrete: &str, body: Option<Value>) -> Resp {
        self.call_as(None, method, template, concrete, body)
    }

    /// [`Self::call`] with other credentials than the admin's.
    #[track_caller]
    fn call_as(&mut self, auth: Option<&str>, method: Method, template: &str, concrete: &str, body: Option<Value>) -> Resp {
        let mut req = match auth {
            Some(a) => self.app.req_as(Some(a), method.clone(), concrete),
            None => self.app.req(method.clone(), concrete),
        };
        if let Some(body) = body {
            req = req.header("Content-Type", "application/json").body(body.to_string());
        }
        let r = req.send();
        let m = method.as_str().to_ascii_lowercase();
        let op = &self.doc["paths"][template][&m];
        assert!(op.is_object(), "{m} {template} is not documented");
        let documented = &op["responses"][r.status.to_string()];
        assert!(documented.is_object(), "{m} {template}: status {} is not documented:\n{}", r.status, r.describe());
        match documented["content"]["application/json"]["schema"].clone() {
            Value::Null => assert!(r.body.is_empty(), "{m} {template} {}: no body documented:\n{}", r.status, r.describe()),
            schema => {
                let root = json!({"components": self.doc["components"], "allOf": [schema]});
                let validator =
                    jsonschema::draft202012::new(&root).unwrap_or_else(|e| panic!("schema of {m} {template} {}: {e}", r.status));
                let body = r.json();
                let errors: Vec<String> = validator.iter_errors(&body).map(|e| format!("{} at {}", e, e.instance_path())).collect();
                assert!(
                    errors.is_empty(),
                    "{m} {template} {}: answer does not match the document:\n{}\n{body:#}",
                    r.status,
                    errors.join("\n")
                );
            }
        }
        self.called.insert((m, template.to_owned()));
        r
    }
}

/// Every `$ref` in the document points at something that exists.
fn check_refs(doc: &Value, node: &Value, at: &str) {
    match node {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    let target = v.as_str().expect("$ref is a string");
                    let pointer = target.strip_prefix('#').unwrap_or_else(|| panic!("external $ref {target} at {at}"));
                    assert!(doc.pointer(pointer).is_some(), "dangling $ref {target} at {at}");
                }
                check_refs(doc, v, &format!("{at}/{k}"));
            }
        }
        Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| check_refs(doc, v, &format!("{at}/{i}"))),
        _ => {}
    }
}

#[test]
fn the_openapi_document_describes_every_real_answer() {
    let app = TestApp::builder()
        .with_auth()
        .env("WHARF_RETENTION__POLICIES", r#"[{name = "recent", repositories = "**", keep_last = 1}]"#)
        // A webhook nobody listens on: its deliveries fail and are dead letters to list and replay.
        .env("WHARF_EVENTS__ENDPOINTS", r#"[{name = "doc", url = "http://127.0.0.1:9/", max_attempts = 1}]"#)
        .env("WHARF_EVENTS__POLL_INTERVAL", "100ms")
        .start();
    // Readable without credentials, like /v2/.
    let r = app.get("/api/v1/openapi.json");
    r.expect(200).expect_header("content-type", "application/json");
    let doc = r.json();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", doc["openapi"]);
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"] == env!("CARGO_PKG_VERSION"));
    check_refs(&doc, &doc, "#");
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, ops)| ops.as_object().unwrap().keys().filter(|k| *k != "parameters").map(move |m| (m.clone(), path.clone())))
        .collect();
    assert!(documented.len() >= 20, "{documented:?}");
    let mut operation_ids = BTreeSet::new();
    for (m, path) in &documented {
        // The probes are documented too: a load balancer's config is written from them.
        assert!(path.starts_with("/api/v1/") || ["/livez", "/readyz"].contains(&path.as_str()), "{path}");
        let op = &doc["paths"][path][m];
        assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{m} {path} has no responses");
        let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{m} {path} has no operationId"));
        assert!(operation_ids.insert(id.to_owned()), "operationId {id} of {m} {path} is not unique");
        for name in path.split('{').skip(1).map(|s| s.split('}').next().unwrap()) {
            let declared = op["parameters"].as_array().into_iter().flatten().any(|p| p["name"] == name && p["in"] == "path");
            assert!(declared, "{m} {path}: path parameter {name} is not declared");
        }
    }

    app.set_default_auth(Some(basic("admin", ADMIN_PASSWORD)));
    let mut c = Checker { app: &app, doc: doc.clone(), called: BTreeSet::new() };
    let repo = repo("openapi");
    let v1 = push_image(&app, &repo, Some("v1"), 1);
    let v2 = push_image(&app, &repo, Some("v2"), 1);
    let _ = (v1, v2);

    // Releases.
    let promotions = "/api/v1/repositories/{name}/promotions";
    let at = format!("/api/v1/repositories/{repo}/promotions");
    let body = |reference: &str, stage: &str| Some(json!({"reference": reference, "stage": stage, "version": "1.0", "note": "n"}));
    c.call(Method::POST, promotions, &at, body("v1", "test")).expect(201);
    c.call(Method::POST, promotions, &at, body("v1", "test")).expect(200);
    c.call(Method::POST, promotions, &at, body("v1", "prod")).expect(409);
    c.call(Method::POST, promotions, &at, body("v1", "staging")).expect(404);
    c.call(Method::POST, promotions, &at, Some(json!({"reference": "v1"}))).expect(400);
    c.call(Method::POST, promotions, &at, body("v2", "test")).expect(201);
    let rollback = "/api/v1/repositories/{name}/stages/{stage}/rollback";
    c.call(Method::POST, rollback, &format!("/api/v1/repositories/{repo}/stages/test/rollback"), None).expect(201);
    c.call(Method::POST, rollback, &format!("/api/v1/repositories/{repo}/stages/prod/rollback"), None).expect(409);
    c.call(Method::POST, rollback, &format!("/api/v1/repositories/{repo}/stages/test/rollback"), Some(json!({"to_sequence": 2})))
        .expect(201);
    c.call(Method::GET, "/api/v1/repositories/{name}/stages", &format!("/api/v1/repositories/{repo}/stages"), None).expect(200);
    c.call(Method::GET, "/api/v1/repositories/{name}/stages", "/api/v1/repositories/no/such/stages", None).expect(404);
    let releases = "/api/v1/repositories/{name}/stages/{stage}/releases";
    c.call(Method::GET, releases, &format!("/api/v1/repositories/{repo}/stages/test/releases?n=2"), None).expect(200);
    c.call(Method::GET, releases, &format!("/api/v1/repositories/{repo}/stages/nope/releases"), None).expect(404);
    let history = "/api/v1/repositories/{name}/tags/{tag}/history";
    c.call(Method::GET, history, &format!("/api/v1/repositories/{repo}/tags/test/history"), None).expect(200);
    c.call(Method::GET, history, &format!("/api/v1/repositories/{repo}/tags/-bad/history"), None).expect(400);

    // Image diff: images with real tar layers (200, a page and its Link), the
    // random-bytes layers of v1 and v2 (422), bad and unknown references.
    let diff = "/api/v1/repositories/{name}/diff";
    let tar_layer = |name: &str| diff_support::gzip(&diff_support::tar_of(&[diff_support::file(name, b"x")]));
    let cfg = || diff_support::config(&["A=1"], "root", json!({"l": "1"}), &["80/tcp"], &["ADD"]);
    diff_support::push_image_with(&app, &repo, "d1", cfg(), &[(OCI_LAYER, tar_layer("a"))]);
    let status = diff_support::tar_of(&[
        diff_support::file("etc/new", b"n"),
        diff_support::file("var/lib/dpkg/status", b"Package: p\nStatus: install ok installed\nVersion: 1\n"),
    ]);
    diff_support::push_image_with(&app, &repo, "d2", cfg(), &[(OCI_LAYER, tar_layer("a")), (OCI_LAYER, diff_support::gzip(&status))]);
    let d = c.call(Method::GET, diff, &format!("/api/v1/repositories/{repo}/diff?from=d1&to=d2&n=1"), None);
    d.expect(200);
    assert!(d.json()["packages"].is_object() && d.json()["next_cursor"].is_string(), "{}", d.describe());
    c.call(Method::GET, diff, &format!("/api/v1/repositories/{repo}/diff?from=d2&to=d1"), None).expect(200);
    c.call(Method::GET, diff, &format!("/api/v1/repositories/{repo}/diff?from=v1&to=v2"), None).expect(422);
    c.call(Method::GET, diff, &format!("/api/v1/repositories/{repo}/diff?from=v1"), None).expect(400);
    c.call(Method::GET, diff, "/api/v1/repositories/no/such/diff?from=a&to=b", None).expect(404);
    // A ready release summary in the history, checked against the document.
    c.call(Method::POST, promotions, &at, body("d1", "test")).expect(201);
    c.call(Method::POST, promotions, &at, body("d2", "test")).expect(201);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let h = c.call(Method::GET, releases, &format!("/api/v1/repositories/{repo}/stages/test/releases?n=1"), None);
        if h.json()["releases"][0]["diff"]["state"] == "ready" {
            assert_eq!(h.json()["releases"][0]["diff"]["summary"]["packages_added"], 1, "{}", h.describe());
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no ready summary: {}", h.describe());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // Audit.
    c.call(Method::GET, "/api/v1/audit", "/api/v1/audit?n=5", None).expect(200);
    c.call(Method::GET, "/api/v1/audit", "/api/v1/audit?action=bogus", None).expect(400);
    c.call(Method::GET, "/api/v1/audit/verify", "/api/v1/audit/verify", None).expect(200);

    // Retention and GC.
    c.call(Method::GET, "/api/v1/retention/policies", "/api/v1/retention/policies", None).expect(200);
    let plan = c.call(Method::GET, "/api/v1/retention/plan", "/api/v1/retention/plan", None);
    assert!(!plan.json()["repositories"].as_array().unwrap().is_empty(), "a plan with decisions was checked");
    c.call(Method::POST, "/api/v1/retention/runs", "/api/v1/retention/runs", None).expect(200);
    c.call(Method::POST, "/api/v1/gc/runs", "/api/v1/gc/runs?dry_run=true", None).expect(200);

    // Webhook deliveries and replay.
    let deliveries = "/api/v1/events/deliveries";
    let first = c.call(Method::GET, deliveries, "/api/v1/events/deliveries?endpoint=doc&n=1", None);
    first.expect(200);
    let first = first.json()["deliveries"][0]["audit_id"].as_i64().expect("a delivery of the pushes");
    c.call(Method::GET, deliveries, "/api/v1/events/deliveries?state=lost", None).expect(400);
    let replay = "/api/v1/events/replay";
    c.call(Method::POST, replay, replay, Some(json!({"endpoint": "doc", "from": first, "to": first}))).expect(200);
    c.call(Method::POST, replay, replay, Some(json!({"endpoint": "nobody", "from": 1, "to": 2}))).expect(400);

    // Accounts.
    let user = json!({"name": "ops", "password": "a-long-password-1"});
    c.call(Method::POST, "/api/v1/users", "/api/v1/users", Some(user.clone())).expect(201);
    c.call(Method::POST, "/api/v1/users", "/api/v1/users", Some(user)).expect(409);
    c.call(Method::POST, "/api/v1/users", "/api/v1/users", Some(json!({"name": "x y", "password": "a-long-password-1"}))).expect(400);
    c.call(Method::GET, "/api/v1/users", "/api/v1/users", None).expect(200);
    c.call(Method::POST, "/api/v1/robots", "/api/v1/robots", Some(json!({"name": "ci", "expires_in_days": 30}))).expect(201);
    c.call(Method::POST, "/api/v1/robots", "/api/v1/robots", Some(json!({"name": "ci"}))).expect(409);
    c.call(Method::POST, "/api/v1/robots", "/api/v1/robots", Some(json!({"name": "ci2", "expires_in_days": 0}))).expect(400);
    c.call(Method::GET, "/api/v1/robots", "/api/v1/robots", None).expect(200);
    let grant = c.call(
        Method::POST,
        "/api/v1/grants",
        "/api/v1/grants",
        Some(json!({"account": "ops", "repository": "team/**", "role": "releaser", "stages": ["prod"]})),
    );
    grant.expect(201);
    let id = grant.json()["id"].as_i64().unwrap();
    c.call(Method::POST, "/api/v1/grants", "/api/v1/grants", Some(json!({"account": "ops", "repository": "team/**", "role": "king"})))
        .expect(400);
    c.call(Method::POST, "/api/v1/grants", "/api/v1/grants", Some(json!({"account": "nobody", "repository": "**", "role": "reader"})))
        .expect(404);
    c.call(Method::GET, "/api/v1/grants", "/api/v1/grants", None).expect(200);

    // Account lifecycle.
    let password = "/api/v1/users/{name}/password";
    let ops = basic("ops", "a-long-password-1");
    c.call_as(Some(&ops), Method::PUT, password, "/api/v1/users/ops/password", Some(json!({"password": "a-long-password-2"}))).expect(204);
    let ops = basic("ops", "a-long-password-2");
    let r = c.call_as(Some(&ops), Method::PUT, password, "/api/v1/users/admin/password", Some(json!({"password": "a-long-password-3"})));
    r.expect(403);
    c.call(Method::PUT, password, "/api/v1/users/ops/password", Some(json!({"password": "short"}))).expect(400);
    c.call(Method::PUT, password, "/api/v1/users/nobody/password", Some(json!({"password": "a-long-password-3"}))).expect(404);
    c.call(Method::POST, "/api/v1/users/{name}/unlock", "/api/v1/users/ops/unlock", None).expect(204);
    c.call(Method::POST, "/api/v1/users/{name}/unlock", "/api/v1/users/nobody/unlock", None).expect(404);
    let rotated = c.call(Method::POST, "/api/v1/robots/{name}/token", "/api/v1/robots/ci/token", None);
    rotated.expect(200);
    let rotated = rotated.json();
    assert_eq!(rotated["username"], "ci");
    let token = rotated["token"].as_str().unwrap();
    assert_eq!(app.req_as(Some(&basic("ci", token)), Method::GET, "/v2/").send().status, 200, "the rotated token logs in");
    c.call(Method::POST, "/api/v1/robots/{name}/token", "/api/v1/robots/nobody/token", None).expect(404);
    for kind in ["users", "robots"] {
        let name = if kind == "users" { "ops" } else { "ci" };
        for verb in ["disable", "enable"] {
            let template = format!("/api/v1/{kind}/{{name}}/{verb}");
            c.call(Method::POST, &template, &format!("/api/v1/{kind}/{name}/{verb}"), None).expect(204);
            c.call(Method::POST, &template, &format!("/api/v1/{kind}/nobody/{verb}"), None).expect(404);
            if verb == "disable" {
                // The `disabled` field of the account lists shows it.
                let list = c.call(Method::GET, &format!("/api/v1/{kind}"), &format!("/api/v1/{kind}"), None).json();
                let account = list[kind].as_array().unwrap().iter().find(|a| a["name"] == name).cloned().unwrap();
                assert_eq!(account["disabled"], true, "{list}");
            }
        }
    }
    let list = c.call(Method::GET, "/api/v1/users", "/api/v1/users", None).json();
    assert!(list["users"].as_array().unwrap().iter().all(|a| a["disabled"] == false), "{list}");
    c.call(Method::DELETE, "/api/v1/grants/{id}", &format!("/api/v1/grants/{id}"), None).expect(204);
    c.call(Method::DELETE, "/api/v1/grants/{id}", &format!("/api/v1/grants/{id}"), None).expect(404);
    c.call(Method::DELETE, "/api/v1/robots/{name}", "/api/v1/robots/ci", None).expect(204);
    c.call(Method::DELETE, "/api/v1/robots/{name}", "/api/v1/robots/ci", None).expect(404);
    c.call(Method::DELETE, "/api/v1/users/{name}", "/api/v1/users/ops", None).expect(204);
    c.call(Method::DELETE, "/api/v1/users/{name}", "/api/v1/users/ops", None).expect(404);

    // Operations: the probes (without credentials) and the drain switch.
    app.set_default_auth(None);
    c.call(Method::GET, "/livez", "/livez", None).expect(200);
    c.call(Method::GET, "/readyz", "/readyz", None).expect(200);
    app.set_default_auth(Some(basic("admin", ADMIN_PASSWORD)));
    c.call(Method::GET, "/api/v1/admin/drain", "/api/v1/admin/drain", None).expect(200);
    c.call(Method::POST, "/api/v1/admin/drain", "/api/v1/admin/drain", None).expect(200);
    c.call(Method::DELETE, "/api/v1/admin/drain", "/api/v1/admin/drain", None).expect(200);

    let missed: Vec<_> = documented.difference(&c.called).collect();
    assert!(missed.is_empty(), "documented operations this test never called: {missed:?}");
}
