//! `/livez`, `/readyz` and the drain switch, against a real object store
//! (a moto S3 server this test starts and stops itself; never the shared
//! one) and a real database file locked from outside.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::Value;

/// `GET /readyz` without credentials: (status, body). Read directly, since
/// a 503 is this probe's answer, not a server fault.
fn readyz(app: &TestApp) -> (u16, Value) {
    let r = app.client().get(app.url("/readyz")).send().expect("GET /readyz");
    let status = r.status().as_u16();
    assert_eq!(r.headers().get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    (status, r.json().expect("readyz body is JSON"))
}

/// Polls `/readyz` until it answers `status`; returns its body.
#[track_caller]
fn wait_readyz(app: &TestApp, status: u16, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let (got, body) = readyz(app);
        if got == status {
            return body;
        }
        assert!(Instant::now() < deadline, "/readyz still answers {got} {body} after {timeout:?}, expected {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn quick_probes(b: TestAppBuilder) -> TestAppBuilder {
    b.env("WHARF_HEALTH__TIMEOUT", "1s").env("WHARF_HEALTH__CACHE", "0s")
}

#[test]
fn probes_need_no_credentials_and_the_drain_switch_takes_the_node_out() {
    let app = TestApp::builder().with_auth().start();
    let live = app.client().get(app.url("/livez")).send().unwrap();
    assert_eq!(live.status().as_u16(), 200);
    assert_eq!(live.json::<Value>().unwrap(), serde_json::json!({"status": "live"}));
    let (status, body) = readyz(&app);
    assert_eq!(status, 200, "{body}");
    // Only which part answered, nothing about the data.
    assert_eq!(body, serde_json::json!({"status": "ready", "checks": {"database": "ok", "storage": "ok"}, "draining": false}));

    // Draining is for admins only.
    app.req_as(None, Method::POST, "/api/v1/admin/drain").send().expect(401);
    app.req_as(None, Method::GET, "/api/v1/admin/drain").send().expect(401);
    let admin = basic("admin", ADMIN_PASSWORD);
    let r = app.req_as(Some(&admin), Method::POST, "/api/v1/admin/drain").send();
    r.expect(200);
    assert_eq!(r.json(), serde_json::json!({"draining": true}));
    let (status, body) = readyz(&app);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "draining");
    // Drained is not dead: the process is live and still serves requests.
    assert_eq!(app.client().get(app.url("/livez")).send().unwrap().status().as_u16(), 200);
    app.req_as(Some(&admin), Method::GET, "/v2/").send().expect(200);
    assert_eq!(app.req_as(Some(&admin), Method::GET, "/api/v1/admin/drain").send().json(), serde_json::json!({"draining": true}));

    let r = app.req_as(Some(&admin), Method::DELETE, "/api/v1/admin/drain").send();
    r.expect(200);
    assert_eq!(r.json(), serde_json::json!({"draining": false}));
    assert_eq!(readyz(&app).0, 200);
}

#[test]
fn a_node_configured_drained_starts_unready() {
    let app = TestApp::builder().env("WHARF_HEALTH__DRAINED", "true").start();
    let (status, body) = readyz(&app);
    assert_eq!((status, body["status"].as_str()), (503, Some("draining")), "{body}");
    app.req(Method::DELETE, "/api/v1/admin/drain").send().expect(200);
    assert_eq!(readyz(&app).0, 200);
}

/// A moto S3 server of this test's own on a fixed loopback port.
struct Moto {
    port: u16,
    child: Option<Child>,
    log: PathBuf,
}

const BUCKET: &str = "wharf-health";

impl Moto {
    fn start(port: u16, log: PathBuf) -> Moto {
        let venv = std::env::var("WHARF_TEST_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-test"));
        let bin = venv.join("bin/moto_server");
        assert!(bin.exists(), "{} is missing: run tests/env/install.sh s3", bin.display());
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start moto_server");
        let mut moto = Moto { port, child: Some(child), log };
        moto.wait_up();
        moto
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits for moto to answer, then creates the bucket (moto keeps
    /// nothing across a restart).
    fn wait_up(&mut self) {
        let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while client.get(self.endpoint()).send().is_err() {
            assert!(Instant::now() < deadline, "moto did not start: {}", std::fs::read_to_string(&self.log).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(200));
        }
        let r = client.put(format!("{}/{BUCKET}", self.endpoint())).send().expect("create bucket");
        assert!(r.status().is_success(), "creating the bucket: {}", r.status());
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("moto running").id();
        let ok = Command::new("kill").args([signal, &pid.to_string()]).status().unwrap().success();
        assert!(ok, "kill {signal} {pid}");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A frozen server cannot die of SIGKILL until it is continued.
            let _ = Command::new("kill").args(["-CONT", &child.id().to_string()]).status();
        }
        self.stop();
    }
}

#[test]
fn readyz_follows_the_object_store() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let logs = tempfile::tempdir().unwrap();
    let mut moto = Moto::start(port, logs.path().join("moto.log"));
    let app = quick_probes(TestApp::builder())
        .env("WHARF_STORAGE__BACKEND", "s3")
        .env("WHARF_STORAGE__S3__ENDPOINT", moto.endpoint())
        .env("WHARF_STORAGE__S3__BUCKET", BUCKET)
        .env("WHARF_STORAGE__S3__REGION", "us-east-1")
        .env("WHARF_STORAGE__S3__ACCESS_KEY_ID", "test")
        .env("WHARF_STORAGE__S3__SECRET_ACCESS_KEY", "test")
        .env("WHARF_STORAGE__S3__ALLOW_HTTP", "true")
        .start();
    let repo = repo("health");
    push_blob(&app, &repo, &unique_bytes(1000));
    wait_readyz(&app, 200, Duration::from_secs(10));

    // Frozen: connections open but nothing answers; the probe times out.
    moto.signal("-STOP");
    let body = wait_readyz(&app, 503, Duration::from_secs(10));
    assert_eq!(body["status"], "unready");
    assert_eq!(body["checks"], serde_json::json!({"database": "ok", "storage": "timeout"}));
    moto.signal("-CONT");
    wait_readyz(&app, 200, Duration::from_secs(15));

    // Gone: connections refused.
    moto.stop();
    let body = wait_readyz(&app, 503, Duration::from_secs(10));
    assert_eq!(body["checks"]["database"], "ok");
    assert_ne!(body["checks"]["storage"], "ok");
    // Back (same address, the bucket made again).
    let _back = Moto::start(port, logs.path().join("moto.log"));
    wait_readyz(&app, 200, Duration::from_secs(20));
    push_blob(&app, &repo, &unique_bytes(1000));
}

#[test]
fn readyz_follows_the_database() {
    let app = quick_probes(TestApp::builder()).start();
    wait_readyz(&app, 200, Duration::from_secs(10));
    // Another process holds the write lock (a stuck migration, a backup tool
    // gone wrong): writes cannot happen, so the node is not ready.
    let conn = rusqlite::Connection::open(app.data_dir().join("wharf.db")).unwrap();
    conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let body = wait_readyz(&app, 503, Duration::from_secs(10));
    assert_eq!(body["status"], "unready");
    assert_eq!(body["checks"], serde_json::json!({"database": "timeout", "storage": "ok"}));
    // While unready the probes do not queue more work behind the lock.
    for _ in 0..5 {
        assert_eq!(readyz(&app).0, 503);
    }
    conn.execute_batch("ROLLBACK").unwrap();
    drop(conn);
    wait_readyz(&app, 200, Duration::from_secs(20));
    push_blob(&app, &repo("health-db"), &unique_bytes(100));
}

/// Needs the test PostgreSQL server: named `postgres::...`, so the
/// cargo-test step skips it and the cargo-test-postgres step runs it.
mod postgres {
    use super::*;
    use common::pg::TestDatabase;

    /// The writer lock every node's write transactions take (src/db/postgres/engine.rs).
    const WRITER_LOCK: i64 = 0x7768_6172_6657;

    #[test]
    fn readyz_ignores_other_nodes_writes_and_follows_the_server() {
        let Some(server) = pg::postgres_url() else { return };
        let database = TestDatabase::create(&server);
        let app = quick_probes(TestApp::builder()).env("WHARF_DATABASE__URL", database.url.as_str()).start();
        wait_readyz(&app, 200, Duration::from_secs(10));

        // Another node's long write holds the cluster-wide writer lock: a
        // node that can read and reach a writable server stays ready, or one
        // slow write would take every node out of the load balancer at once.
        let mut other = ::postgres::Client::connect(&server, ::postgres::NoTls).expect("connect");
        let mut holder = ::postgres::Client::connect(&database.url, ::postgres::NoTls).expect("connect");
        holder.execute("SELECT pg_advisory_lock($1)", &[&WRITER_LOCK]).unwrap();
        for _ in 0..4 {
            let (status, body) = readyz(&app);
            assert_eq!(status, 200, "{body}");
            std::thread::sleep(Duration::from_millis(300));
        }
        holder.execute("SELECT pg_advisory_unlock($1)", &[&WRITER_LOCK]).unwrap();
        drop(holder);

        // The server turns this node's connections away: unready until it takes them again.
        other.batch_execute(&format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", database.name)).unwrap();
        other.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", &[&database.name]).unwrap();
        // The engine checks a connection idle over 250 ms before using it;
        // one ended sooner after its last use fails its next job once.
        std::thread::sleep(Duration::from_millis(300));
        let body = wait_readyz(&app, 503, Duration::from_secs(10));
        assert_eq!(body["checks"]["database"], "error", "{body}");
        assert_eq!(body["checks"]["storage"], "ok", "{body}");
        other.batch_execute(&format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", database.name)).unwrap();
        wait_readyz(&app, 200, Duration::from_secs(20));
        push_blob(&app, &repo("health-pg"), &unique_bytes(100));
    }
}
