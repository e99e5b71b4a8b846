//! A fresh PostgreSQL database per test, on the server named by
//! `WHARF_TEST_POSTGRES_URL` (`tests/services/postgres.sh start` prints it),
//! dropped again when the test ends. Shared by the black-box harness and the
//! database contract suite.
#![allow(dead_code)]

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

pub const POSTGRES_URL_VAR: &str = "WHARF_TEST_POSTGRES_URL";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// The test server's URL. Without one: a failure under CI=true (no test is
/// skipped in CI), locally a loud note and `None`, and the caller returns.
pub fn postgres_url() -> Option<String> {
    if let Some(url) = std::env::var(POSTGRES_URL_VAR).ok().filter(|v| !v.is_empty()) {
        return Some(url);
    }
    let how = "start one with: eval \"$(bash tests/services/postgres.sh start)\"";
    if in_ci() {
        panic!("PostgreSQL tests need a test server but {POSTGRES_URL_VAR} is unset; in CI they must not be skipped ({how})");
    }
    let name = std::thread::current().name().unwrap_or("?").to_string();
    // Straight to stderr, which the test harness does not capture.
    let _ = std::io::stderr().write_all(format!("!!! SKIPPED PostgreSQL test {name}: {POSTGRES_URL_VAR} unset; {how}\n").as_bytes());
    None
}

/// The server's URL where a test run asked for PostgreSQL explicitly
/// (WHARF_TEST_DATABASE=postgres): missing, it is a failure everywhere.
pub fn required_postgres_url() -> String {
    std::env::var(POSTGRES_URL_VAR).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!("WHARF_TEST_DATABASE=postgres but {POSTGRES_URL_VAR} is unset; start a server with: eval \"$(bash tests/services/postgres.sh start)\"")
    })
}

/// Runs `sql` on the server's maintenance database. On a thread of its own:
/// the synchronous client may not run inside a test's tokio runtime.
fn admin(server: &str, sql: String) {
    let server = server.to_owned();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&server, postgres::NoTls).expect("connect to the test PostgreSQL server");
        client.batch_execute(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    })
    .join()
    .expect("PostgreSQL admin thread");
}

/// A database of its own for one test; dropped (with any connection still
/// open to it) when this value is.
pub struct TestDatabase {
    server: String,
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub fn create(server: &str) -> TestDatabase {
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!("wharf_test_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        admin(server, format!("CREATE DATABASE {name}"));
        let mut url = url::Url::parse(server).expect("WHARF_TEST_POSTGRES_URL is a URL");
        url.set_path(&format!("/{name}"));
        TestDatabase { server: server.to_owned(), name, url: url.to_string() }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let server = self.server.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Never a second panic while a failing test unwinds.
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(&server, postgres::NoTls) {
                let _ = c.batch_execute(&sql);
            }
        })
        .join();
    }
}
