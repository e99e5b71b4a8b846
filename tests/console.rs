//! The web console over HTTP: rendered HTML for each page and each
//! permission (what is shown, which buttons exist, what a forbidden action
//! answers), sessions (cookie flags, logout ends the session in the
//! database), CSRF and cross-site refusals.

mod common;
mod diff_support;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const PW: &str = "password-123";

fn start() -> TestApp {
    let app = TestApp::builder().with_auth().env("WHARF_AUTH__ANONYMOUS_PULL", "[\"public/**\"]").start();
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

/// A logged-in browser: its session cookie and the page's CSRF token.
struct Browser<'a> {
    app: &'a TestApp,
    cookie: String,
}

fn form(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish()
}

fn login<'a>(app: &'a TestApp, user: &str, password: &str) -> Browser<'a> {
    let r = post_form(app, None, "/ui/login", &[("user", user), ("password", password)]);
    r.expect(303);
    assert_eq!(r.header("location").as_deref(), Some("/ui/repositories"));
    let set = r.must_header("set-cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(set.contains(flag), "session cookie without {flag}: {set}");
    }
    // Served over plain HTTP here: Secure would make the browser drop it.
    assert!(!set.contains("Secure"), "Secure cookie over plain HTTP: {set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    Browser { app, cookie }
}

fn post_form(app: &TestApp, cookie: Option<&str>, path: &str, fields: &[(&str, &str)]) -> Resp {
    let mut r = app.req_as(None, Method::POST, path).header("Content-Type", "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        r = r.header("Cookie", c);
    }
    r.body(form(fields)).send()
}

impl Browser<'_> {
    fn get(&self, path: &str) -> Resp {
        self.app.req_as(None, Method::GET, path).header("Cookie", &self.cookie).send()
    }

    fn page(&self, path: &str) -> String {
        let r = self.get(path);
        r.expect(200);
        assert_eq!(r.header("content-type").as_deref(), Some("text/html; charset=utf-8"));
        r.text()
    }

    fn csrf(&self) -> String {
        csrf_in(&self.page("/ui/repositories"))
    }

    fn post(&self, path: &str, fields: &[(&str, &str)]) -> Resp {
        post_form(self.app, Some(&self.cookie), path, fields)
    }
}

fn csrf_in(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}

fn stage_digest(app: &TestApp, repo: &str, stage: &str) -> Option<String> {
    let r = app.head(&format!("/v2/{repo}/manifests/{stage}"));
    (r.status == 200).then(|| r.must_header("docker-content-digest"))
}

/// Every page answers HTML with the viewport meta, the versioned static
/// files, and times with their zone; the static files are cached long.
#[test]
fn pages_render_and_static_files_are_cached() {
    let app = start();
    let image = push_image(&app, "team/app", Some("v1"), 1);
    admin_post(&app, "/api/v1/repositories/team/app/promotions", json!({"reference": "v1", "stage": "test"})).expect(201);
    let admin = login(&app, "admin", ADMIN_PASSWORD);
    let list = admin.page("/ui/repositories");
    assert!(list.contains("<meta name=\"viewport\""), "{list}");
    assert!(list.contains("href=\"/ui/r/team/app\""), "{list}");
    assert!(list.contains("<strong id=\"whoami\">admin</strong>"));
    let repo = admin.page("/ui/r/team/app");
    assert!(repo.contains("id=\"stage-test\"") && repo.contains("id=\"stage-prod\""), "{repo}");
    let short = &image.digest[..19];
    assert!(repo.contains(short), "the test column shows the release digest:\n{repo}");
    assert!(repo.contains("Z</time>"), "times in RFC 3339 with their zone:\n{repo}");
    assert!(repo.contains("id=\"promote-preprod\""), "admin may promote what waits in test:\n{repo}");
    assert!(repo.contains("id=\"promote-tag-v1\""));
    let history = admin.page("/ui/r/team/app/stages/test");
    assert!(history.contains("(current)") && history.contains(short), "{history}");
    let audit = admin.page("/ui/audit?action=promotion");
    assert!(audit.contains("class=\"audit-row\"") && audit.contains("team/app"), "{audit}");
    let verified = admin.page("/ui/audit?verify=1");
    assert!(verified.contains("id=\"chain-status\" class=\"ok\""), "{verified}");
    admin.get("/ui/audit?since=yesterday").expect(400);
    admin.get("/ui/r/team/nothing").expect(404);
    admin.get("/ui/r/team/app/stages/nostage").expect(404);
    admin.get("/ui/nowhere").expect(404);

    let prefix = list.split("/ui/static/").nth(1).unwrap().split('/').next().unwrap().to_owned();
    for (file, kind) in [("htmx.min.js", "text/javascript"), ("console.css", "text/css"), ("htmx.LICENSE", "text/plain")] {
        let r = app.req_as(None, Method::GET, &format!("/ui/static/{prefix}/{file}")).send();
        r.expect(200);
        assert!(r.header("content-type").unwrap().starts_with(kind));
        assert!(r.header("cache-control").unwrap().contains("max-age=31536000"));
    }
    assert!(app.req_as(None, Method::GET, &format!("/ui/static/{prefix}/htmx.min.js")).send().text().contains("htmx"));
    app.req_as(None, Method::GET, "/ui/static/0.0.0-old/console.css").send().expect(404);
}

/// Repositories page: paged, searched by prefix, filtered by pull grants.
#[test]
fn repositories_page_and_search_follow_grants() {
    let app = start();
    for repo in ["public/a", "public/b", "team/x", "teamz/y"] {
        push_image(&app, repo, Some("v1"), 1);
    }
    // Anonymous: only the anonymous-pull globs.
    let anon = app.req_as(None, Method::GET, "/ui/repositories").send();
    anon.expect(200);
    let body = anon.text();
    assert!(body.contains("/ui/r/public/a") && body.contains("/ui/r/public/b"), "{body}");
    assert!(!body.contains("team/x"), "anonymous sees a private repository:\n{body}");
    assert!(body.contains("id=\"login-link\""));
    app.req_as(None, Method::GET, "/ui/r/public/a").send().expect(200);
    app.req_as(None, Method::GET, "/ui/r/team/x").send().expect(401);

    add_user(&app, "dev", &[("team/**", "developer", &[])]);
    let dev = login(&app, "dev", PW);
    let list = dev.page("/ui/repositories?q=team");
    assert!(list.contains("/ui/r/team/x") && !list.contains("teamz/y") && !list.contains("public/a"), "{list}");
    let searched = dev.page("/ui/repositories?q=team/");
    assert!(searched.contains("/ui/r/team/x"), "{searched}");
    assert!(dev.page("/ui/repositories?q=zzz").contains("id=\"no-repositories\""));
    // A repository outside the grants is refused with 403, not shown.
    dev.get("/ui/r/teamz/y").expect(403);

    // Counts from the database: team/x now holds 3 manifests (one untagged)
    // and 3 tags (two on the same manifest); public/a still 1 and 1.
    let second = push_image(&app, "team/x", Some("v2"), 1);
    put_manifest(&app, "team/x", "latest", OCI_MANIFEST, &second.manifest).expect(201);
    push_image(&app, "team/x", None, 2);
    let admin = login(&app, "admin", ADMIN_PASSWORD);
    let list = admin.page("/ui/repositories");
    let row = |name: &str| -> String {
        let at = list.find(&format!("<tr id=\"repo-{name}\">")).unwrap_or_else(|| panic!("no row for {name}:\n{list}"));
        list[at..].split("</tr>").next().unwrap().to_owned()
    };
    let counted = |row: &str, class: &str| -> String {
        let at = row.find(&format!("class=\"num {class}\">")).unwrap_or_else(|| panic!("no {class} in {row}")) + class.len() + 13;
        row[at..].split('<').next().unwrap().to_owned()
    };
    let team = row("team/x");
    assert_eq!((counted(&team, "tag-count"), counted(&team, "manifest-count")), ("3".into(), "3".into()), "{team}");
    let public = row("public/a");
    assert_eq!((counted(&public, "tag-count"), counted(&public, "manifest-count")), ("1".into(), "1".into()), "{public}");
    assert!(list.contains("<th scope=\"col\" class=\"num\">Manifests</th>"), "{list}");
}

/// Paging: 50 per page with a next link that continues after the last name.
#[test]
fn repositories_page_in_fifties() {
    let app = start();
    for i in 0..55 {
        push_image(&app, &format!("p/r{i:02}"), Some("v1"), 1);
    }
    let admin = login(&app, "admin", ADMIN_PASSWORD);
    let first = admin.page("/ui/repositories?q=p/");
    assert_eq!(first.matches("href=\"/ui/r/p/").count(), 50, "{first}");
    assert!(first.contains("last=p/r49"), "{first}");
    let second = admin.page("/ui/repositories?q=p%2F&last=p%2Fr49");
    assert_eq!(second.matches("href=\"/ui/r/p/").count(), 5, "{second}");
    assert!(!second.contains("rel=\"next\""));
}

/// A releaser promotes through the stages and rolls back, by form posts
/// carrying the CSRF token; each changes what the registry serves.
#[test]
fn releaser_promotes_and_rolls_back_with_confirmation() {
    let app = start();
    // Real tar layers: the diff page reads their files.
    let tar_image = |tag: &str, content: &[u8]| {
        let layer = diff_support::gzip(&diff_support::tar_of(&[diff_support::file("srv/app.txt", content)]));
        let config = diff_support::config(&[], "1000", json!({}), &[], &[]);
        diff_support::push_image_with(&app, "team/app", tag, config, &[(OCI_LAYER, layer)])
    };
    let one = tar_image("v1", b"release one");
    let two = tar_image("v2", b"release two, longer");
    add_user(&app, "rel", &[("team/**", "releaser", &["test", "preprod", "prod"])]);
    let rel = login(&app, "rel", PW);
    let csrf = rel.csrf();
    for (digest, tag) in [(&one, "v1"), (&two, "v2")] {
        let repo = rel.page("/ui/r/team/app");
        assert!(repo.contains(&format!("id=\"promote-tag-{tag}\"")), "{repo}");
        let confirm = rel.page(&format!("/ui/r/team/app/confirm?action=promote&stage=test&reference={tag}"));
        assert!(confirm.contains("id=\"confirm\"") && confirm.contains(&csrf));
        rel.post("/ui/r/team/app/promote", &[("csrf", &csrf), ("stage", "test"), ("reference", tag)]).expect(303);
        assert_eq!(stage_digest(&app, "team/app", "test").as_ref(), Some(digest));
        for stage in ["preprod", "prod"] {
            let repo = rel.page("/ui/r/team/app");
            assert!(repo.contains(&format!("id=\"promote-{stage}\"")), "nothing waits for {stage}:\n{repo}");
            let r = rel.post("/ui/r/team/app/promote", &[("csrf", &csrf), ("stage", stage), ("reference", digest)]);
            r.expect(303);
            assert_eq!(r.header("location").as_deref(), Some("/ui/r/team/app"));
            assert_eq!(stage_digest(&app, "team/app", stage).as_ref(), Some(digest));
        }
    }
    // Nothing waits any more: no promote button on any stage column.
    assert!(!rel.page("/ui/r/team/app").contains("id=\"promote-prod\""));
    let history = rel.page("/ui/r/team/app/stages/prod");
    assert!(history.contains("id=\"rollback-1\""), "{history}");
    assert!(!history.contains("id=\"rollback-2\""), "no rollback to the current release:\n{history}");
    let confirm = rel.page("/ui/r/team/app/confirm?action=rollback&stage=prod&to_sequence=1");
    assert!(confirm.contains("Roll back prod"));
    let r = rel.post("/ui/r/team/app/rollback", &[("csrf", &csrf), ("stage", "prod"), ("to_sequence", "1")]);
    r.expect(303);
    assert_eq!(stage_digest(&app, "team/app", "prod"), Some(one.clone()));
    let history = rel.page("/ui/r/team/app/stages/prod");
    assert!(history.contains("rollback to #1"), "{history}");
    // The history links each release to its diff against the one before.
    let diff_link = format!("/ui/r/team/app/diff?from={}&amp;to={}", one.replace(':', "%3A"), two.replace(':', "%3A"));
    assert!(rel.page("/ui/r/team/app/stages/test").contains(&diff_link), "no diff link");
    let diff = rel.page(&format!("/ui/r/team/app/diff?from={one}&to=prod@2"));
    assert!(diff.contains("id=\"diff-summary\"") && diff.contains(&one) && diff.contains(&two), "{diff}");
    assert!(diff.contains("id=\"layers\"") && diff.contains("added") && diff.contains("removed"), "{diff}");
    rel.get("/ui/r/team/app/diff?from=&to=v2").expect(400);
    rel.get("/ui/r/team/app/diff?from=v1&to=nope").expect(404);
    // A promotion the registry refuses (unknown reference) changes nothing.
    rel.post("/ui/r/team/app/promote", &[("csrf", &csrf), ("stage", "test"), ("reference", "nope")]).expect(404);
    assert_eq!(stage_digest(&app, "team/app", "test"), Some(two));
}

/// A developer sees no prod button and a forged prod promotion is 403 (and
/// audited); an auditor sees the audit log but no action button at all.
#[test]
fn buttons_and_actions_follow_the_grants() {
    let app = start();
    let one = push_image(&app, "team/app", Some("v1"), 1).digest;
    for stage in ["test", "preprod"] {
        admin_post(&app, "/api/v1/repositories/team/app/promotions", json!({"reference": "v1", "stage": stage})).expect(201);
    }
    add_user(&app, "dev", &[("team/**", "developer", &[])]);
    add_user(&app, "aud", &[("**", "auditor", &[])]);
    let dev = login(&app, "dev", PW);
    let repo = dev.page("/ui/r/team/app");
    assert!(repo.contains("id=\"stage-prod\"") && repo.contains("Waiting"), "{repo}");
    assert!(!repo.contains("id=\"promote-prod\""), "a developer got a prod promote button:\n{repo}");
    assert!(repo.contains("id=\"promote-tag-v1\""), "developers promote into the first stage:\n{repo}");
    assert!(!repo.contains("href=\"/ui/audit\""), "a developer got the audit link");
    dev.get("/ui/audit").expect(403);
    dev.get("/ui/r/team/app/confirm?action=promote&stage=prod&reference=v1").expect(403);
    let csrf = dev.csrf();
    let r = dev.post("/ui/r/team/app/promote", &[("csrf", &csrf), ("stage", "prod"), ("reference", &one)]);
    r.expect(403);
    assert!(r.text().contains("dev may not promote into prod"), "{}", r.text());
    assert_eq!(stage_digest(&app, "team/app", "prod"), None);
    let history = dev.page("/ui/r/team/app/stages/preprod");
    assert!(!history.contains("class=\"button rollback\""));

    let aud = login(&app, "aud", PW);
    let repo = aud.page("/ui/r/team/app");
    assert!(!repo.contains("class=\"button"), "an auditor got an action button:\n{repo}");
    let log = aud.page("/ui/audit?actor=dev&action=access.denied");
    assert!(log.contains("class=\"audit-row\""), "the refused promotion is audited:\n{log}");
    let csrf = aud.csrf();
    aud.post("/ui/r/team/app/promote", &[("csrf", &csrf), ("stage", "prod"), ("reference", &one)]).expect(403);
    aud.post("/ui/r/team/app/rollback", &[("csrf", &csrf), ("stage", "preprod")]).expect(403);
    assert_eq!(stage_digest(&app, "team/app", "prod"), None);
}

/// CSRF: a post without the token, with another session's token, or marked
/// cross-site is refused and changes nothing; logout ends the session.
#[test]
fn csrf_cross_site_and_logout() {
    let app = start();
    push_image(&app, "team/app", Some("v1"), 1);
    let admin = login(&app, "admin", ADMIN_PASSWORD);
    let other = login(&app, "admin", ADMIN_PASSWORD);
    let (mine, theirs) = (admin.csrf(), other.csrf());
    assert_ne!(mine, theirs, "each session has its own token");
    admin.post("/ui/r/team/app/promote", &[("stage", "test"), ("reference", "v1")]).expect(403);
    admin.post("/ui/r/team/app/promote", &[("csrf", theirs.as_str()), ("stage", "test"), ("reference", "v1")]).expect(403);
    let cross = app
        .req_as(None, Method::POST, "/ui/r/team/app/promote")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Cookie", &admin.cookie)
        .header("Origin", "http://evil.example")
        .body(form(&[("csrf", &mine), ("stage", "test"), ("reference", "v1")]))
        .send();
    cross.expect(403);
    let fetch_site = app
        .req_as(None, Method::POST, "/ui/r/team/app/promote")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Cookie", &admin.cookie)
        .header("Sec-Fetch-Site", "cross-site")
        .body(form(&[("csrf", &mine), ("stage", "test"), ("reference", "v1")]))
        .send();
    fetch_site.expect(403);
    // Without a session at all: asked to log in.
    post_form(&app, None, "/ui/r/team/app/promote", &[("csrf", &mine), ("stage", "test"), ("reference", "v1")]).expect(401);
    assert_eq!(stage_digest(&app, "team/app", "test"), None, "a refused post changed the stage");

    // Logout needs the token too, then the cookie no longer logs in.
    admin.post("/ui/logout", &[("csrf", "wrong")]).expect(403);
    let r = admin.post("/ui/logout", &[("csrf", &mine)]);
    r.expect(303);
    assert!(r.must_header("set-cookie").contains("Max-Age=0"));
    let after = admin.page("/ui/repositories");
    assert!(after.contains("id=\"login-link\""), "still logged in after logout:\n{after}");
    admin.get("/ui/audit").expect(401);
    // The other session is untouched.
    assert!(other.page("/ui/audit").contains("Audit log"));
}

/// Wrong passwords show the form again (401) and count against the same
/// limits as the registry's logins.
#[test]
fn failed_logins_are_limited_like_the_registry() {
    let app = TestApp::builder().with_auth().env("WHARF_AUTH__MAX_FAILED_LOGINS", "3").start();
    let r = post_form(&app, None, "/ui/login", &[("user", "admin"), ("password", "wrong")]);
    r.expect(401);
    assert!(r.text().contains("invalid username or password") && r.text().contains("value=\"admin\""));
    assert!(r.header("set-cookie").is_none());
    for _ in 0..4 {
        let r = post_form(&app, None, "/ui/login", &[("user", "admin"), ("password", "wrong")]);
        if r.status == 429 {
            assert!(r.header("retry-after").is_some());
            // The registry refuses the same account now, even with the right password.
            app.req_as(Some(&basic("admin", ADMIN_PASSWORD)), Method::GET, "/v2/").send().expect(429);
            return;
        }
        r.expect(401);
    }
    panic!("five failed console logins were never limited");
}

/// A manifest page shows an image's configuration, layers with their
/// history, referrers, what retention decides and this host's pull command;
/// an index shows its platforms. The admin page is for admins only.
#[test]
fn manifest_and_admin_pages() {
    let app =
        TestApp::builder().with_auth().env("WHARF_RETENTION__POLICIES", r#"[{name="one", repositories="team/**", keep_last=1}]"#).start();
    app.set_default_auth(Some(basic("admin", ADMIN_PASSWORD)));
    add_user(&app, "dev", &[("team/**", "developer", &[])]);
    let repo = "team/app";
    let old = push_image(&app, repo, Some("old"), 1);
    let config = to_bytes(&json!({
        "architecture": "arm64", "os": "linux",
        "config": {"Env": ["MODE=prod"], "User": "1000:1000", "Entrypoint": ["/bin/app"], "ExposedPorts": {"8080/tcp": {}},
                   "Labels": {"org.opencontainers.image.source": "https://example.org/app"}},
        "history": [{"created_by": "COPY app /bin/app"}, {"created_by": "ENV MODE=prod", "empty_layer": true}, {"created_by": "RUN make"}],
        "rootfs": {"type": "layers", "diff_ids": []},
    }));
    let layers = [unique_bytes(1200), unique_bytes(3400)];
    push_blob(&app, repo, &config);
    for l in &layers {
        push_blob(&app, repo, l);
    }
    let manifest = image_manifest(&config, &layers, json!({}));
    let digest = push_manifest(&app, repo, "v2", OCI_MANIFEST, &manifest);
    push_blob(&app, repo, b"{}");
    let sig = to_bytes(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.signature",
        "config": {"mediaType": OCI_EMPTY, "digest": sha256_digest(b"{}"), "size": 2},
        "layers": [], "subject": descriptor(OCI_MANIFEST, &manifest),
    }));
    let sig_digest = push_manifest(&app, repo, &sha256_digest(&sig), OCI_MANIFEST, &sig);

    let admin = login(&app, "admin", ADMIN_PASSWORD);
    let page = admin.page(&format!("/ui/r/{repo}/manifests/v2"));
    let host = app.base().split_once("://").unwrap().1.trim_end_matches('/').to_owned();
    assert!(page.contains(&format!("value=\"docker pull {host}/{repo}:v2\"")), "pull command for this host:\n{page}");
    for shown in [
        "<code>MODE=prod</code>",
        "<code>1000:1000</code>",
        "<code>/bin/app</code>",
        "<code>8080/tcp</code>",
        "https://example.org/app",
        "linux/arm64",
    ] {
        assert!(page.contains(shown), "{shown} not on the page:\n{page}");
    }
    // The history entry without a layer is skipped: each layer gets its own line.
    let layer_rows: Vec<&str> = page.split("<tr><td><code title=\"sha256:").skip(1).collect();
    assert_eq!(layer_rows.len(), 2, "{page}");
    assert!(layer_rows[0].contains("COPY app /bin/app") && layer_rows[1].contains("RUN make"), "{page}");
    assert!(page.contains("2 layers, 4600 bytes"), "{page}");
    assert!(page.contains(&sig_digest) && page.contains("application/vnd.example.signature"), "referrers:\n{page}");
    assert!(page.contains("id=\"retention\">kept: "), "{page}");
    let by_digest = admin.page(&format!("/ui/r/{repo}/manifests/{digest}"));
    assert!(by_digest.contains(&format!("value=\"docker pull {host}/{repo}@{digest}\"")), "{by_digest}");
    let old_page = admin.page(&format!("/ui/r/{repo}/manifests/old"));
    assert!(old_page.contains("id=\"retention\">deleted: "), "keep_last=1 deletes the older image:\n{old_page}");
    admin.get(&format!("/ui/r/{repo}/manifests/nope")).expect(404);
    admin.get(&format!("/ui/r/{repo}/manifests/sha256:{}", "0".repeat(64))).expect(404);

    // The repository page: every manifest's verdict, tags linked, pull commands for this host.
    let repo_page = admin.page(&format!("/ui/r/{repo}"));
    assert!(repo_page.contains("id=\"verdicts\""), "{repo_page}");
    assert!(repo_page.contains(&format!("href=\"/ui/r/{repo}/manifests/{}\"", old.digest)), "{repo_page}");
    assert!(repo_page.contains("deleted: ") && repo_page.contains("kept: "), "{repo_page}");
    assert!(repo_page.contains(&format!("docker pull {host}/{repo}:old")) && !repo_page.contains("HOST/"), "{repo_page}");

    // Admin: health, and dry runs that delete nothing.
    let health = admin.page("/ui/admin");
    assert!(health.contains("id=\"readiness\">ready<") && health.contains("id=\"admin-link\""), "{health}");
    let plan = admin.page("/ui/admin?retention=1");
    assert!(plan.contains("id=\"retention-summary\">1 manifests and 1 tags would be deleted"), "{plan}");
    assert!(plan.contains("tag old"), "{plan}");
    let gc = admin.page("/ui/admin?gc=1");
    assert!(gc.contains("id=\"gc-summary\">"), "{gc}");
    app.get(&format!("/v2/{repo}/manifests/old")).expect(200);

    // An index lists its platforms.
    let child = push_image(&app, repo, None, 1);
    let index = to_bytes(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": child.digest, "size": child.manifest.len(), "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}}]}));
    push_manifest(&app, repo, "multi", OCI_INDEX, &index);
    let index_page = admin.page(&format!("/ui/r/{repo}/manifests/multi"));
    assert!(
        index_page.contains("id=\"platforms\"") && index_page.contains("linux/arm/v7") && index_page.contains(&child.digest),
        "{index_page}"
    );

    // A developer sees manifests but no admin page; a visitor is asked to log in.
    let dev = login(&app, "dev", PW);
    assert!(dev.page(&format!("/ui/r/{repo}/manifests/v2")).contains("MODE=prod"));
    assert!(!dev.page("/ui/repositories").contains("admin-link"));
    dev.get("/ui/admin").expect(403);
    app.req_as(None, Method::GET, "/ui/admin").send().expect(401);
    app.req_as(None, Method::GET, &format!("/ui/r/{repo}/manifests/v2")).send().expect(401);
    // The registry's own address leads a browser to the console.
    let root = app.req_as(None, Method::GET, "/").send();
    root.expect(303);
    assert_eq!(root.header("location").as_deref(), Some("/ui/repositories"));
}
