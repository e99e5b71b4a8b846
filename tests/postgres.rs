//! Wharf on PostgreSQL, beyond what every black-box test checks under
//! WHARF_TEST_DATABASE=postgres: a wrong or unreachable `database.url` stops
//! start-up with a clear message, several nodes starting together on one
//! fresh database apply each migration once, and what one node writes the
//! other serves.

mod common;

use std::time::Duration;

use common::pg::{postgres_url, TestDatabase};
use common::*;

#[test]
fn an_unreachable_database_stops_start_up_naming_it() {
    // Port 9 (discard) on loopback: nothing listens there.
    let (status, log) =
        TestApp::builder().env("WHARF_DATABASE__URL", "postgres://wharf:hunter2@127.0.0.1:9/registry").run_to_exit(Duration::from_secs(40));
    assert!(!status.success(), "{log}");
    assert!(log.contains("cannot connect to the PostgreSQL database at 127.0.0.1:9/registry"), "{log}");
    assert!(!log.contains("hunter2"), "the password must not be logged:\n{log}");
}

#[test]
fn a_url_that_is_not_postgres_is_refused_before_anything_starts() {
    let (status, log) = TestApp::builder().env("WHARF_DATABASE__URL", "mysql://u:pw@127.0.0.1/db").run_to_exit(Duration::from_secs(20));
    assert!(!status.success(), "{log}");
    assert!(log.contains("database.url must start with postgres://"), "{log}");
}

/// Needs the test PostgreSQL server: named `postgres::...`, so the
/// cargo-test step skips it and the cargo-test-postgres step runs it.
mod postgres {
    use super::*;

    #[test]
    fn nodes_starting_together_share_one_database() {
        let Some(server) = postgres_url() else { return };
        let database = TestDatabase::create(&server);
        // Three nodes on one fresh database at once: the migrations run under an
        // advisory lock, so each is applied once and every node starts.
        let nodes: Vec<TestApp> = std::thread::scope(|s| {
            let handles: Vec<_> =
                (0..3).map(|_| s.spawn(|| TestApp::builder().env("WHARF_DATABASE__URL", database.url.as_str()).start())).collect();
            handles.into_iter().map(|h| h.join().expect("node started")).collect()
        });
        // A blob pushed through one node is known to the next (its manifest PUT
        // checks the shared metadata), and every node serves the manifest. (The
        // bytes are on the first node's filesystem: no blob GET here.)
        push_blob(&nodes[0], "shared/app", b"{}");
        let digest = push_manifest(&nodes[1], "shared/app", "v1", OCI_MANIFEST, &image_manifest(b"{}", &[], serde_json::json!({})));
        for node in &nodes {
            let r = node.get("/v2/shared/app/manifests/v1");
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(r.header("docker-content-digest").as_deref(), Some(digest.as_str()));
            assert_eq!(node.get("/v2/_catalog").json()["repositories"], serde_json::json!(["shared/app"]));
        }
    }
}
