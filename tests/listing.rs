//! Tag listing and the repository catalog, with `n`/`last` pagination and
//! `Link: <...>; rel="next"` headers.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

backend_tests!(
    tags_list_sorted,
    tags_pagination_with_link,
    tags_last_without_n,
    tags_n_zero_is_empty,
    tags_bad_n_is_400,
    tags_huge_n_is_capped,
    catalog_sorted_and_paginated,
);

const TAGS: [&str; 7] = ["gamma", "alpha", "1.0", "beta", "v2.0", "v1.0", "zeta"];

fn sorted_tags() -> Vec<String> {
    let mut t: Vec<String> = TAGS.iter().map(|s| s.to_string()).collect();
    t.sort();
    t
}

/// One image, tagged with every name in TAGS.
fn tagged_repo(app: &TestApp, prefix: &str) -> String {
    let repo = repo(prefix);
    let img = push_image(app, &repo, Some(TAGS[0]), 1);
    for t in &TAGS[1..] {
        push_manifest(app, &repo, t, OCI_MANIFEST, &img.manifest);
    }
    repo
}

fn tags_of(r: &Resp) -> Vec<String> {
    let v = r.json();
    match &v["tags"] {
        Value::Null => Vec::new(),
        Value::Array(a) => a.iter().map(|t| t.as_str().expect("tag is a string").to_string()).collect(),
        other => panic!("tags is not an array: {other}\n{}", r.describe()),
    }
}

/// The path-and-query of a Link target, which may be relative or absolute.
fn link_path(link: &str) -> String {
    match link.strip_prefix("http://").or_else(|| link.strip_prefix("https://")) {
        Some(rest) => rest[rest.find('/').unwrap_or(rest.len())..].to_string(),
        None => link.to_string(),
    }
}

fn tags_list_sorted(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = tagged_repo(&app, "listing/sorted");
    let r = app.get(&format!("/v2/{repo}/tags/list"));
    r.expect(200);
    assert!(r.header("content-type").unwrap_or_default().starts_with("application/json"), "{}", r.describe());
    let v = r.json();
    assert_eq!(v["name"], json!(repo), "{}", r.describe());
    assert_eq!(tags_of(&r), sorted_tags(), "{}", r.describe());
    assert!(r.header("link").is_none(), "a complete list has no next page:\n{}", r.describe());
}

fn tags_pagination_with_link(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = tagged_repo(&app, "listing/paged");
    let all = sorted_tags();

    let r = app.get(&format!("/v2/{repo}/tags/list?n=2"));
    r.expect(200);
    assert_eq!(tags_of(&r), all[..2].to_vec(), "{}", r.describe());
    let link = next_link(&r).unwrap_or_else(|| panic!("first page of 7 tags with n=2 has no Link:\n{}", r.describe()));
    let path = link_path(&link);
    assert!(path.starts_with(&format!("/v2/{repo}/tags/list?")), "Link {link}");
    assert!(path.contains("n=2"), "Link {link} lost n=2");
    assert!(path.contains(&format!("last={}", all[1])), "Link {link} should continue after {}", all[1]);

    // Follow the links to the end.
    let mut got = tags_of(&r);
    let mut next = Some(link);
    let mut pages = 1;
    while let Some(l) = next {
        pages += 1;
        assert!(pages <= 5, "too many pages for 7 tags with n=2");
        let r = app.get(&l);
        r.expect(200);
        let page = tags_of(&r);
        assert!(page.len() <= 2, "page larger than n=2:\n{}", r.describe());
        next = next_link(&r);
        if page.len() < 2 {
            assert!(next.is_none(), "a short last page must not link onwards:\n{}", r.describe());
        }
        got.extend(page);
    }
    assert_eq!(got, all, "pages joined");

    // `last` in the middle.
    let r = app.get(&format!("/v2/{repo}/tags/list?n=3&last={}", all[2]));
    r.expect(200);
    assert_eq!(tags_of(&r), all[3..6].to_vec(), "{}", r.describe());
    // `last` past the end.
    let r = app.get(&format!("/v2/{repo}/tags/list?n=3&last=zzzz"));
    r.expect(200);
    assert!(tags_of(&r).is_empty(), "{}", r.describe());
    assert!(r.header("link").is_none(), "{}", r.describe());
    // `last` that is not itself a tag but sorts between tags.
    let r = app.get(&format!("/v2/{repo}/tags/list?n=10&last=b"));
    r.expect(200);
    let expect: Vec<String> = all.iter().filter(|t| t.as_str() > "b").cloned().collect();
    assert_eq!(tags_of(&r), expect, "{}", r.describe());
}

fn tags_last_without_n(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = tagged_repo(&app, "listing/lastonly");
    let all = sorted_tags();
    let r = app.get(&format!("/v2/{repo}/tags/list?last={}", all[3]));
    r.expect(200);
    assert_eq!(tags_of(&r), all[4..].to_vec(), "{}", r.describe());
}

fn tags_n_zero_is_empty(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = tagged_repo(&app, "listing/nzero");
    let r = app.get(&format!("/v2/{repo}/tags/list?n=0"));
    r.expect(200);
    assert_eq!(r.json()["name"], json!(repo));
    assert!(tags_of(&r).is_empty(), "n=0 must give an empty list:\n{}", r.describe());
    assert!(r.header("link").is_none(), "n=0 MUST NOT have a Link header:\n{}", r.describe());
}

fn tags_bad_n_is_400(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = tagged_repo(&app, "listing/badn");
    for n in ["-1", "abc", "1.5", "", "0x10"] {
        let r = app.get(&format!("/v2/{repo}/tags/list?n={n}"));
        if n.is_empty() {
            // `n=` (empty) may be read as absent.
            assert!(r.status == 200 || r.status == 400, "n={n:?}:\n{}", r.describe());
            if r.status == 400 {
                check_envelope(&r.body, &[], &r.describe());
            }
            continue;
        }
        r.expect_error(400, &[]);
    }
    let r = app.get("/v2/_catalog?n=-1");
    r.expect_error(400, &[]);
    let r = app.get("/v2/_catalog?n=abc");
    r.expect_error(400, &[]);
}

fn tags_huge_n_is_capped(b: Backend) {
    // Default server: a huge n is just "everything" for a small repository.
    {
        let app = TestApp::start_backend(b);
        let repo = tagged_repo(&app, "listing/hugen");
        let t0 = Instant::now();
        let r = app.get(&format!("/v2/{repo}/tags/list?n=1000000000"));
        r.expect(200);
        assert!(t0.elapsed() < Duration::from_secs(3), "n=1e9 took {:?}", t0.elapsed());
        assert_eq!(tags_of(&r), sorted_tags());
        // Numbers beyond any integer type must not break the server.
        let r = app.get(&format!("/v2/{repo}/tags/list?n=99999999999999999999999999"));
        assert!(r.status == 200 || r.status == 400, "{}", r.describe());
        if r.status == 400 {
            check_envelope(&r.body, &[], &r.describe());
        }
    }
    // A server whose page cap is 3: never more than 3 entries, and a Link to the rest.
    let app = TestApp::builder().backend(b).env("WHARF_REGISTRY__MAX_PAGE_SIZE", "3").env("WHARF_REGISTRY__DEFAULT_PAGE_SIZE", "2").start();
    let repo = tagged_repo(&app, "listing/capped");
    let t0 = Instant::now();
    let r = app.get(&format!("/v2/{repo}/tags/list?n=1000000000"));
    r.expect(200);
    assert!(t0.elapsed() < Duration::from_secs(3), "n=1e9 took {:?}", t0.elapsed());
    let page = tags_of(&r);
    assert_eq!(page, sorted_tags()[..3].to_vec(), "cap of 3:\n{}", r.describe());
    let link = next_link(&r).unwrap_or_else(|| panic!("capped page without Link:\n{}", r.describe()));
    // Following the links yields everything.
    let mut got = page;
    let mut next = Some(link);
    while let Some(l) = next {
        let r = app.get(&l);
        r.expect(200);
        let page = tags_of(&r);
        assert!(page.len() <= 3, "{}", r.describe());
        got.extend(page);
        next = next_link(&r);
        assert!(got.len() <= TAGS.len(), "pagination repeats tags: {got:?}");
    }
    assert_eq!(got, sorted_tags());
    // Without n the default page size applies and a Link leads on.
    let r = app.get(&format!("/v2/{repo}/tags/list"));
    r.expect(200);
    assert!(tags_of(&r).len() <= 3, "{}", r.describe());
    if tags_of(&r).len() < TAGS.len() {
        assert!(next_link(&r).is_some(), "a partial default page needs a Link:\n{}", r.describe());
    }
    // The catalog is capped as well.
    for i in 0..4 {
        push_image(&app, &format!("capped/extra{i}"), Some("t"), 0);
    }
    let r = app.get("/v2/_catalog?n=1000000000");
    r.expect(200);
    let repos = r.json()["repositories"].as_array().cloned().unwrap_or_default();
    assert_eq!(repos.len(), 3, "catalog cap of 3:\n{}", r.describe());
    assert!(next_link(&r).is_some(), "capped catalog page without Link:\n{}", r.describe());
}

fn catalog_repos(r: &Resp) -> Vec<String> {
    match &r.json()["repositories"] {
        Value::Null => Vec::new(),
        Value::Array(a) => a.iter().map(|t| t.as_str().expect("repository is a string").to_string()).collect(),
        other => panic!("repositories is not an array: {other}\n{}", r.describe()),
    }
}

fn catalog_sorted_and_paginated(b: Backend) {
    let app = TestApp::start_backend(b);
    // Names whose order is the same under plain and per-component sorting.
    let names = ["b/one", "a/two", "c", "a/one", "z9", "c0/deep/er"];
    for n in names {
        push_image(&app, n, Some("latest"), 1);
    }
    let mut all: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    all.sort();

    let r = app.get("/v2/_catalog");
    r.expect(200);
    assert_eq!(catalog_repos(&r), all, "{}", r.describe());

    let r = app.get("/v2/_catalog?n=2");
    r.expect(200);
    assert_eq!(catalog_repos(&r), all[..2].to_vec(), "{}", r.describe());
    let link = next_link(&r).unwrap_or_else(|| panic!("catalog page 1 without Link:\n{}", r.describe()));
    let path = link_path(&link);
    assert!(path.starts_with("/v2/_catalog?"), "Link {link}");
    assert!(path.contains("n=2"), "Link {link}");
    assert!(path.contains(&format!("last={}", qenc(&all[1]))) || path.contains(&format!("last={}", all[1])), "Link {link}");

    let mut got = catalog_repos(&r);
    let mut next = Some(link);
    let mut pages = 1;
    while let Some(l) = next {
        pages += 1;
        assert!(pages <= 5, "too many catalog pages");
        let r = app.get(&l);
        r.expect(200);
        let page = catalog_repos(&r);
        assert!(page.len() <= 2, "{}", r.describe());
        next = next_link(&r);
        got.extend(page);
    }
    assert_eq!(got, all);

    let r = app.get(&format!("/v2/_catalog?n=10&last={}", qenc("a/two")));
    r.expect(200);
    let expect: Vec<String> = all.iter().filter(|n| n.as_str() > "a/two").cloned().collect();
    assert_eq!(catalog_repos(&r), expect, "{}", r.describe());

    let r = app.get("/v2/_catalog?n=0");
    r.expect(200);
    assert!(catalog_repos(&r).is_empty(), "{}", r.describe());
    assert!(r.header("link").is_none(), "{}", r.describe());
}
