//! Input validation at the edge: repository names, tags and digests, and the
//! error envelope on every kind of refusal. Names are sent over a raw socket
//! so that `..` and `//` reach the server unnormalised.

#[macro_use]
mod common;

use common::*;
use proptest::prelude::*;
use regex::Regex;
use reqwest::Method;
use serde_json::json;

backend_tests!(invalid_repository_names, invalid_tags, invalid_digests,);

/// A rejected name: 400 NAME_INVALID, or 404 (the route does not exist for it).
/// HEAD responses have no body, so only their status is checked.
#[track_caller]
fn assert_name_rejected(r: &RawResp, name: &str, head: bool) {
    if head {
        assert!(matches!(r.status, 400 | 404), "HEAD with name {name:?}:\n{}", r.desc);
        return;
    }
    match r.status {
        400 => {
            check_envelope(&r.body, &["NAME_INVALID"], &format!("name {name:?}:\n{}", r.desc));
        }
        404 => {
            check_envelope(&r.body, &[], &format!("name {name:?}:\n{}", r.desc));
        }
        s => panic!("name {name:?}: expected 400 NAME_INVALID or 404, got {s}:\n{}", r.desc),
    }
    let ct = r.headers.iter().find(|(k, _)| k == "content-type").map(|(_, v)| v.as_str()).unwrap_or("");
    assert!(ct.contains("json"), "error without a JSON Content-Type for {name:?}:\n{}", r.desc);
}

fn invalid_repository_names(b: Backend) {
    let app = TestApp::start_backend(b);
    let long = "a".repeat(256);
    let long_nested = format!("{}/{}", "b".repeat(128), "c".repeat(128));
    let names: Vec<&str> = vec![
        "Upper/case",
        "upperCase",
        "a/../b",
        "..",
        "a/..",
        "a/./b",
        "/leading",
        "trailing/",
        "double//slash",
        "foo..bar",
        "-leading-dash",
        "trailing-",
        "under___three",
        "sp ace",
        long.as_str(),
        long_nested.as_str(),
    ];
    let digest = sha256_digest(b"x");
    for name in &names {
        let enc = name.replace(' ', "%20");
        // Pull-side endpoints.
        assert_name_rejected(&app.raw("GET", &format!("/v2/{enc}/tags/list")), name, false);
        assert_name_rejected(&app.raw("GET", &format!("/v2/{enc}/manifests/latest")), name, false);
        assert_name_rejected(&app.raw("HEAD", &format!("/v2/{enc}/blobs/{digest}")), name, true);
        // Push-side: nothing may be created under an invalid name.
        let r = app.raw("POST", &format!("/v2/{enc}/blobs/uploads/"));
        assert_name_rejected(&r, name, false);
    }
    // Nothing got into the catalog.
    let r = app.get("/v2/_catalog");
    r.expect(200);
    let repos = r.json()["repositories"].clone();
    assert!(repos.is_null() || repos == json!([]), "invalid names reached the catalog: {repos}");

    // Sanity: long-but-valid names and the separators the grammar allows work.
    let ok_names =
        ["a".repeat(255), format!("{}/{}", "b".repeat(127), "c".repeat(127)), "a.b_c__d-e--f/g0/h1-2".to_string(), "x/y/z/w/v".to_string()];
    for n in &ok_names {
        let r = app.req(Method::POST, &format!("/v2/{n}/blobs/uploads/")).send();
        r.expect(202);
    }
}

fn invalid_tags(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("validation/tags");
    let img = push_image(&app, &repo, None, 1);
    let t129 = "t".repeat(129);
    for tag in ["-bad", ".bad", t129.as_str(), "bad%2Ftag", "bad+tag", "%C3%A9t%C3%A9"] {
        let r = put_manifest(&app, &repo, tag, OCI_MANIFEST, &img.manifest);
        r.expect_client_error(&["MANIFEST_INVALID", "TAG_INVALID", "NAME_INVALID"]);
        let g = app.get(&format!("/v2/{repo}/manifests/{tag}"));
        g.expect_client_error(&[]);
    }
    // Nothing was tagged.
    let r = app.get(&format!("/v2/{repo}/tags/list"));
    r.expect(200);
    let tags = r.json()["tags"].clone();
    assert!(tags.is_null() || tags == json!([]), "an invalid tag was stored: {tags}");
    // The longest valid tag, and the full tag alphabet, are accepted.
    let t128 = format!("_{}", "T".repeat(127));
    for tag in [t128.as_str(), "A.b-c_D9", "_x", "0"] {
        push_manifest(&app, &repo, tag, OCI_MANIFEST, &img.manifest);
        assert_manifest(&app, &repo, tag, OCI_MANIFEST, &img.manifest);
    }
}

fn invalid_digests(b: Backend) {
    let app = TestApp::start_backend(b);
    let repo = repo("validation/digests");
    let img = push_image(&app, &repo, Some("v1"), 1);
    let hex64 = sha256_hex(b"x");
    let bad: Vec<String> = vec![
        "sha256:xyz".into(),
        format!("md5:{}", "d41d8cd98f00b204e9800998ecf8427e"),
        format!("sha256:{}", &hex64[..63]),
        format!("sha256:{hex64}0"),
        format!("sha256:{}", hex64.to_uppercase()),
        "sha256:".into(),
        format!("sha512:{hex64}"),
        format!("SHA256:{hex64}"),
        format!("sha256:{}g", &hex64[..63]),
    ];
    for d in &bad {
        app.get(&format!("/v2/{repo}/blobs/{d}")).expect_error(400, &["DIGEST_INVALID"]);
        app.head(&format!("/v2/{repo}/blobs/{d}")).expect(400);
        app.get(&format!("/v2/{repo}/manifests/{d}")).expect_error(400, &["DIGEST_INVALID"]);
        app.delete(&format!("/v2/{repo}/blobs/{d}")).expect_error(400, &["DIGEST_INVALID"]);
        // On upload: single POST and closing PUT.
        let r = app
            .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/?digest={}", qenc(d)))
            .header("Content-Type", "application/octet-stream")
            .body(b"x".to_vec())
            .send();
        r.expect_error(400, &["DIGEST_INVALID"]);
        let loc = start_upload(&app, &repo);
        finish_upload(&app, &loc, d, b"x".to_vec()).expect_error(400, &["DIGEST_INVALID"]);
        // Manifest PUT by an invalid digest.
        let r = put_manifest(&app, &repo, d, OCI_MANIFEST, &img.manifest);
        r.expect_error(400, &["DIGEST_INVALID", "MANIFEST_INVALID", "TAG_INVALID"]);
    }
    // The registry is unharmed.
    assert_manifest(&app, &repo, "v1", OCI_MANIFEST, &img.manifest);
}

#[test]
fn fs_unmatched_routes_have_error_envelope() {
    let app = TestApp::start();
    push_image(&app, "validation/routes", Some("v1"), 0);
    let mut failures = Vec::new();
    for (m, path) in [
        (Method::GET, "/v2/validation/routes/nonsense"),
        (Method::GET, "/v2/validation/routes/blobs/"),
        (Method::GET, "/nothing-here"),
        (Method::PATCH, "/v2/validation/routes/manifests/v1"),
        (Method::POST, "/v2/validation/routes/manifests/v1"),
        (Method::PUT, "/v2/validation/routes/tags/list"),
        (Method::DELETE, "/v2/validation/routes/tags/list"),
        (Method::PUT, "/v2/_catalog"),
        (Method::POST, "/v2/validation/routes/referrers/sha256:0000000000000000000000000000000000000000000000000000000000000000"),
    ] {
        let r = app.req(m, path).send();
        let ok = matches!(r.status, 400 | 404 | 405) && envelope_problem(&r.body, &[]).is_ok();
        if !ok {
            failures.push(r.describe());
        }
    }
    assert!(failures.is_empty(), "error responses without an OCI error envelope:\n\n{}", failures.join("\n\n"));
}

fn spec_name_re() -> Regex {
    Regex::new(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$").unwrap()
}

/// Property: a name is accepted for push exactly when it matches the spec
/// grammar (and is at most 255 characters); everything else is refused
/// cleanly, never with a 5xx.
#[test]
fn fs_name_grammar_property() {
    let app = TestApp::start();
    let re = spec_name_re();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 200,
        max_shrink_iters: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = prop_oneof![
        "[a-z0-9]{1,6}((\\.|_|__|-{1,3})[a-z0-9]{1,6}){0,2}(/[a-z0-9]{1,6}((\\.|_|-)[a-z0-9]{1,6}){0,1}){0,3}",
        "[a-zA-Z0-9._/-]{1,24}",
    ];
    runner
        .run(&strategy, |name| {
            let r = app.raw("POST", &format!("/v2/{name}/blobs/uploads/"));
            let valid = name.len() <= 255 && re.is_match(&name);
            if valid {
                prop_assert_eq!(r.status, 202, "valid name {:?} refused:\n{}", name, r.desc);
            } else {
                prop_assert!(r.status == 400 || r.status == 404, "invalid name {:?} answered {}:\n{}", name, r.status, r.desc);
                let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
                prop_assert!(v["errors"].is_array(), "no envelope for {:?}:\n{}", name, r.desc);
            }
            Ok(())
        })
        .unwrap();
}

/// Property: tags are accepted exactly when they match the spec grammar.
#[test]
fn fs_tag_grammar_property() {
    let app = TestApp::start();
    let repo = "validation/tagprop";
    let img = push_image(&app, repo, Some("base"), 0);
    let re = Regex::new(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 120,
        max_shrink_iters: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = prop_oneof!["[a-zA-Z0-9_][a-zA-Z0-9._-]{0,130}", "[a-zA-Z0-9._-]{1,8}", "[.-][a-z]{0,4}"];
    runner
        .run(&strategy, |tag| {
            let r = put_manifest(&app, repo, &tag, OCI_MANIFEST, &img.manifest);
            if re.is_match(&tag) {
                prop_assert_eq!(r.status, 201, "valid tag {:?} refused:\n{}", tag, r.describe());
            } else {
                prop_assert!((400..500).contains(&r.status), "invalid tag {:?}:\n{}", tag, r.describe());
                prop_assert!(!r.error_codes().is_empty(), "no envelope for tag {:?}:\n{}", tag, r.describe());
            }
            Ok(())
        })
        .unwrap();
}

/// Property: digests are accepted (then unknown, 404) exactly when they are
/// well-formed sha256/sha512 digests; anything else is 400 DIGEST_INVALID.
#[test]
fn fs_digest_grammar_property() {
    let app = TestApp::start();
    let repo = "validation/digestprop";
    push_blob(&app, repo, b"present");
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 150,
        max_shrink_iters: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy =
        prop_oneof!["sha256:[0-9a-f]{64}", "sha512:[0-9a-f]{128}", "sha(256|512):[0-9a-fA-F]{60,130}", "[a-z0-9]{1,8}:[a-zA-Z0-9]{0,70}",];
    let ok = Regex::new(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$").unwrap();
    runner
        .run(&strategy, |d| {
            let r = app.get(&format!("/v2/{repo}/blobs/{d}"));
            if ok.is_match(&d) {
                prop_assert_eq!(r.status, 404, "{}", r.describe());
                prop_assert_eq!(r.error_codes(), vec!["BLOB_UNKNOWN".to_string()], "{}", r.describe());
            } else {
                prop_assert_eq!(r.status, 400, "{}", r.describe());
                prop_assert_eq!(r.error_codes(), vec!["DIGEST_INVALID".to_string()], "{}", r.describe());
            }
            Ok(())
        })
        .unwrap();
}

/// Sends `bytes` as they are on one connection and reads until it closes.
fn send_raw_bytes(app: &TestApp, bytes: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", app.port())).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).expect("timeout");
    s.write_all(bytes).expect("send");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read until the server closes");
    buf
}

/// Requests too malformed for the HTTP parser (raw non-ASCII bytes in the
/// request line, a TLS hello on the plain port) get a 400 with the OCI
/// error envelope like every other refusal, and the server stays up.
#[test]
fn fs_unparseable_requests_get_an_oci_error_body() {
    let app = TestApp::start();
    for target in ["/v2/caf\u{e9}/tags/list", "/v2/\u{1f600}/manifests/latest", "/v2/a/blobs/sha256:\u{ff}"] {
        let r = app.raw("GET", target);
        assert_eq!(r.status, 400, "{}", r.desc);
        r.expect_client_error(&["UNSUPPORTED"]);
        assert!(r.headers.iter().any(|(k, v)| k == "content-type" && v == "application/json"), "{}", r.desc);
    }
    // What docker sends first when it tries TLS on a plain-HTTP port.
    let hello = [0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, b'\r', b'\n', b'\r', b'\n'];
    let reply = send_raw_bytes(&app, &hello);
    assert!(reply.starts_with(b"HTTP/1.1 400 Bad Request\r\n"), "{}", String::from_utf8_lossy(&reply));
    let body = &reply[reply.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4..];
    check_envelope(body, &["UNSUPPORTED"], "TLS hello");
    // A good request before a malformed one on the same connection is
    // answered whole, then the malformed one gets the envelope.
    let host = format!("127.0.0.1:{}", app.port());
    let pipelined = [
        format!("GET /v2/ HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes(),
        format!("GET /v2/\u{e9}/tags/list HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes(),
    ]
    .concat();
    let reply = String::from_utf8(send_raw_bytes(&app, &pipelined)).expect("utf-8 replies");
    let second = reply.find("HTTP/1.1 400").expect("a 400 for the second request");
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n") && reply[..second].ends_with("{}"), "{reply}");
    assert!(reply[second..].contains("\"UNSUPPORTED\""), "{reply}");
    app.get("/v2/").expect(200);
}
