//! Black-box test harness: starts the real `wharf` binary on a loopback port
//! with its own data directory and talks to it over HTTP.
//!
//! Every request made through [`Req::send`] asserts that the server did not
//! answer with a 5xx, so a server error anywhere in the suite fails the test
//! that caused it, with the request, the response and the server log shown.
#![allow(dead_code)]

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::blocking::Client;
use reqwest::Method;

mod backends;
mod content;
mod http;
pub mod pg;
mod scrape;

pub use backends::*;
#[allow(unused_imports)] // a test of several nodes pushes no content
pub use content::*;
pub use http::*;
#[allow(unused_imports)] // only the metrics tests scrape
pub use scrape::*;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

pub const MIB: usize = 1024 * 1024;

/// How long a server gets to answer `GET /v2/` after being spawned.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server gets to exit after SIGTERM before the harness gives up.
const STOP_TIMEOUT: Duration = Duration::from_secs(45);

// ---------------------------------------------------------------------------
// The server under test
// ---------------------------------------------------------------------------

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A process-wide unique token, for S3 prefixes and unique repository content.
pub fn unique_token() -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{}-{}-{}", std::process::id(), nanos, n)
}

fn test_name_slug() -> String {
    let name = std::thread::current().name().unwrap_or("test").to_string();
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
}

pub struct TestAppBuilder {
    backend: Backend,
    env: Vec<(String, String)>,
    /// Variables the harness would set that this server must not get.
    unset: Vec<String>,
    tls_ca: Option<Vec<u8>>,
    umask: Option<u32>,
}

impl TestAppBuilder {
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Leaves out a variable the harness sets (such as the S3 keys).
    pub fn without_env(mut self, k: impl Into<String>) -> Self {
        self.unset.push(k.into());
        self
    }

    pub fn backend(mut self, b: Backend) -> Self {
        self.backend = b;
        self
    }

    /// Talk HTTPS, trusting `ca_pem` (the server's TLS keys are set by env).
    pub fn https(mut self, ca_pem: Vec<u8>) -> Self {
        self.tls_ca = Some(ca_pem);
        self
    }

    /// Start the server (every time) under this umask instead of the test's own.
    pub fn umask(mut self, mask: u32) -> Self {
        self.umask = Some(mask);
        self
    }

    /// Auth on, with the `admin` account created from [`ADMIN_PASSWORD`].
    pub fn with_auth(self) -> Self {
        self.env("WHARF_AUTH__ENABLED", "true").env("WHARF_ADMIN_PASSWORD", ADMIN_PASSWORD)
    }

    pub fn start(self) -> TestApp {
        let mut app = self.build();
        app.spawn();
        app
    }

    /// Runs `wharf serve` with this set-up where it is expected to fail to
    /// start: waits up to `timeout` for it to exit (killing it and panicking
    /// if it does not) and returns its exit status and output.
    pub fn run_to_exit(self, timeout: Duration) -> (ExitStatus, String) {
        let app = self.build();
        let log = OpenOptions::new().create(true).append(true).open(&app.log_path).expect("log file");
        let mut child = app.command(free_port()).stdout(log.try_clone().unwrap()).stderr(log).spawn().expect("spawning wharf");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return (status, app.log());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("wharf was expected to exit but still ran after {timeout:?}; log:\n{}", app.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn build(self) -> TestApp {
        let dir = tempfile::Builder::new().prefix("wharf-test-").tempdir().expect("tempdir");
        // Not created here: wharf creates its data directory, as on a fresh install.
        let data_dir = dir.path().join("data");
        let log_path = dir.path().join("server.log");
        let mut env = Vec::new();
        if self.backend == Backend::S3 {
            assert!(s3_available(), "S3 backend requested but no test S3 server is configured");
            let get = |k: &str| env_nonempty(k).unwrap();
            let prefix = format!("wharf-tests/{}-{}", test_name_slug(), unique_token());
            env.push(("WHARF_STORAGE__BACKEND".into(), "s3".into()));
            env.push(("WHARF_STORAGE__S3__ENDPOINT".into(), get("WHARF_TEST_S3_ENDPOINT")));
            env.push(("WHARF_STORAGE__S3__BUCKET".into(), get("WHARF_TEST_S3_BUCKET")));
            env.push(("WHARF_STORAGE__S3__REGION".into(), get("WHARF_TEST_S3_REGION")));
            env.push(("WHARF_STORAGE__S3__ACCESS_KEY_ID".into(), get("WHARF_TEST_S3_ACCESS_KEY_ID")));
            env.push(("WHARF_STORAGE__S3__SECRET_ACCESS_KEY".into(), get("WHARF_TEST_S3_SECRET_ACCESS_KEY")));
            env.push(("WHARF_STORAGE__S3__ALLOW_HTTP".into(), "true".into()));
            env.push(("WHARF_STORAGE__S3__PREFIX".into(), prefix));
        }
        // WHARF_TEST_DATABASE=postgres: every Wharf gets a fresh PostgreSQL database.
        let database = database_engine_is_postgres().then(|| pg::TestDatabase::create(&pg::required_postgres_url()));
        if let Some(d) = &database {
            env.push(("WHARF_DATABASE__URL".into(), d.url.clone()));
        }
        if let Some(level) = env_nonempty("WHARF_LOG__LEVEL") {
            env.push(("WHARF_LOG__LEVEL".into(), level));
        }
        env.extend(self.env);
        env.retain(|(k, _)| !self.unset.contains(k));
        TestApp {
            backend: self.backend,
            env,
            data_dir,
            log_path,
            port: 0,
            child: None,
            client: new_client(self.tls_ca.as_deref()),
            tls_ca: self.tls_ca,
            umask: self.umask,
            default_auth: std::sync::Mutex::new(None),
            _database: database,
            _dir: dir,
        }
    }
}

pub struct TestApp {
    pub backend: Backend,
    env: Vec<(String, String)>,
    data_dir: PathBuf,
    log_path: PathBuf,
    port: u16,
    child: Option<Child>,
    client: Client,
    tls_ca: Option<Vec<u8>>,
    umask: Option<u32>,
    /// `Authorization` sent by [`TestApp::req`] (and so by every helper).
    default_auth: std::sync::Mutex<Option<String>>,
    /// Dropped after the server is killed (see `Drop`).
    _database: Option<pg::TestDatabase>,
    _dir: tempfile::TempDir,
}

/// Which metadata engine the servers of this run use: `WHARF_TEST_DATABASE`
/// = `sqlite` (default) or `postgres` (tests/run-all.sh cargo-test-postgres).
pub fn database_engine_is_postgres() -> bool {
    match env_nonempty("WHARF_TEST_DATABASE").as_deref() {
        None | Some("sqlite") => false,
        Some("postgres") => true,
        Some(other) => panic!("WHARF_TEST_DATABASE={other}: expected sqlite or postgres"),
    }
}

/// `storage.filesystem.shared`, which the harness sets for filesystem
/// blobs under PostgreSQL (see [`TestApp::command`]).
pub const SHARED_FLAG: &str = "WHARF_STORAGE__FILESYSTEM__SHARED";

/// The admin password [`TestAppBuilder::with_auth`] bootstraps.
pub const ADMIN_PASSWORD: &str = "admin-secret-pw";

fn new_client(tls_ca: Option<&[u8]>) -> Client {
    let mut b = Client::builder();
    if let Some(pem) = tls_ca {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(pem).expect("CA certificate"));
    }
    b.redirect(reqwest::redirect::Policy::none()).timeout(Duration::from_secs(120)).pool_max_idle_per_host(4).build().expect("http client")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0").local_addr().unwrap().port()
}

impl TestApp {
    pub fn start() -> TestApp {
        Self::builder().start()
    }

    pub fn start_backend(b: Backend) -> TestApp {
        Self::builder().backend(b).start()
    }

    pub fn builder() -> TestAppBuilder {
        TestAppBuilder { backend: Backend::Fs, env: Vec::new(), unset: Vec::new(), tls_ca: None, umask: None }
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let bin = env!("CARGO_BIN_EXE_wharf");
        let mut last_failure = String::new();
        for attempt in 0..6 {
            // Reuse the previous port on a restart (upload locations may be
            // absolute URLs); fall back to a fresh one if it is taken.
            let port = if attempt == 0 && self.port != 0 { self.port } else { free_port() };
            let mut log = OpenOptions::new().create(true).append(true).open(&self.log_path).expect("log file");
            writeln!(log, "\n===== harness: starting wharf on 127.0.0.1:{port} (attempt {attempt}) =====").unwrap();
            let log_len_before = fs::metadata(&self.log_path).map(|m| m.len()).unwrap_or(0);
            let mut cmd = self.command(port);
            cmd.stdout(log.try_clone().unwrap()).stderr(log);
            let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {bin}: {e}"));
            self.port = port;
            let deadline = Instant::now() + START_TIMEOUT;
            let probe = new_client(self.tls_ca.as_deref());
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    let log = fs::read_to_string(&self.log_path).unwrap_or_default();
                    let tail = &log[(log_len_before as usize).min(log.len())..];
                    let lower = tail.to_lowercase();
                    last_failure = format!("wharf exited early with {status}:\n{tail}");
                    if lower.contains("address already in use") || lower.contains("addrinuse") || lower.contains("os error 98") {
                        break; // lost a port race: try another port
                    }
                    panic!("{last_failure}");
                }
                if let Ok(r) = probe.get(format!("{}://127.0.0.1:{port}/v2/", self.scheme())).timeout(Duration::from_secs(2)).send() {
                    // 401: up, with auth on.
                    if matches!(r.status().as_u16(), 200 | 401) {
                        self.child = Some(child);
                        self.client = new_client(self.tls_ca.as_deref());
                        return;
                    }
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "wharf did not answer 200 or 401 on GET /v2/ within {START_TIMEOUT:?}; log:\n{}",
                        fs::read_to_string(&self.log_path).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("could not start wharf after several ports: {last_failure}");
    }

    /// `wharf serve` on `port` with this server's data dir and environment.
    fn command(&self, port: u16) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
        cmd.arg("serve").arg("--listen").arg(format!("127.0.0.1:{port}")).arg("--data-dir").arg(&self.data_dir).stdin(Stdio::null());
        // Never let the developer's or CI's own WHARF_* settings leak in, nor
        // AWS_* ones (keys, endpoints, profiles): Wharf reads AWS_ACCESS_KEY_ID
        // and AWS_SECRET_ACCESS_KEY, so only a test may set them.
        for (k, _) in std::env::vars() {
            if k.starts_with("WHARF_") || k.starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        // Filesystem blobs with PostgreSQL metadata: Wharf refuses to start
        // unless the directory is declared shared. The harness's servers on
        // one database are each tested on their own (a test of several nodes
        // reads blobs only where they were written), so it declares it for
        // them, unless the test sets the flag itself (tests/nodes.rs checks
        // the refusal).
        let has = |k: &str| self.env.iter().any(|(key, _)| key == k);
        if self.backend == Backend::Fs && has("WHARF_DATABASE__URL") && !has(SHARED_FLAG) {
            cmd.env(SHARED_FLAG, "true");
        }
        if let Some(mask) = self.umask {
            use std::os::unix::process::CommandExt;
            // SAFETY: umask(2) is async-signal-safe and touches no memory.
            unsafe {
                cmd.pre_exec(move || {
                    libc::umask(mask as libc::mode_t);
                    Ok(())
                });
            }
        }
        cmd
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn scheme(&self) -> &'static str {
        if self.tls_ca.is_some() {
            "https"
        } else {
            "http"
        }
    }

    pub fn base(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme(), self.port)
    }

    /// Full URL for a path (`/v2/...`) or for a `Location` value, which may be
    /// absolute (then it is re-based on the current server, whose port can
    /// differ after a restart) or relative.
    pub fn url(&self, path_or_location: &str) -> String {
        let p = path_or_location;
        if let Some(rest) = p.strip_prefix("http://").or_else(|| p.strip_prefix("https://")) {
            let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("/");
            return format!("{}{}", self.base(), path);
        }
        if p.starts_with('/') {
            format!("{}{}", self.base(), p)
        } else {
            format!("{}/{}", self.base(), p)
        }
    }

    /// Where object `key` of this server lives on the test S3 server: the
    /// bucket's URL (path style) and the full object key, for tests that
    /// reach past Wharf into the store (the test server takes unsigned
    /// PUTs and listings). `None` on the filesystem backend.
    pub fn s3_location(&self, key: &str) -> Option<(String, String)> {
        let value = |k: &str| self.env.iter().find(|(name, _)| name == k).map(|(_, v)| v.clone());
        let (endpoint, bucket, prefix) =
            (value("WHARF_STORAGE__S3__ENDPOINT")?, value("WHARF_STORAGE__S3__BUCKET")?, value("WHARF_STORAGE__S3__PREFIX")?);
        Some((format!("{}/{bucket}", endpoint.trim_end_matches('/')), format!("{prefix}/{key}")))
    }

    /// Whether the test S3 server holds any object whose key starts with
    /// `key` (one of this server's keys). `None` on the filesystem backend.
    pub fn s3_holds(&self, key: &str) -> Option<bool> {
        let (bucket_url, object) = self.s3_location(key)?;
        let listing = Client::new()
            .get(&bucket_url)
            .query(&[("list-type", "2"), ("prefix", object.as_str())])
            .send()
            .and_then(|r| r.text())
            .expect("listing on the test S3 server");
        Some(!listing.contains("<KeyCount>0</KeyCount>"))
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The PostgreSQL URL this server's metadata lives at, if any
    /// (WHARF_TEST_DATABASE=postgres, or a test's own setting).
    pub fn database_url(&self) -> Option<&str> {
        self.env.iter().find(|(k, _)| k == "WHARF_DATABASE__URL").map(|(_, v)| v.as_str())
    }

    /// The environment a `wharf` run outside the harness (a CLI command, a
    /// hand-started server) needs to reach this server's metadata: the
    /// database URL on PostgreSQL, nothing on SQLite (the data dir says it).
    /// For a process started by hand on this server's database and data
    /// dir: with PostgreSQL, the filesystem backend needs the shared flag,
    /// as the harness's own servers have it.
    pub fn database_env(&self) -> Vec<(&'static str, String)> {
        self.database_url().map(|u| vec![("WHARF_DATABASE__URL", u.to_owned()), (SHARED_FLAG, "true".to_owned())]).unwrap_or_default()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server not running").id()
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    fn proc_status_kib(&self, key: &str) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("read /proc/<pid>/status");
        let line = status.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("{key} missing from /proc/<pid>/status"));
        line[key.len()..].trim().trim_end_matches("kB").trim().parse().expect("kB value")
    }

    /// The server's peak resident set size (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.proc_status_kib("VmHWM:")
    }

    /// The server's current resident set size (VmRSS) in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.proc_status_kib("VmRSS:")
    }

    /// Resets VmHWM to the current RSS (Linux `clear_refs` value 5).
    /// Returns false when the kernel refuses.
    pub fn reset_peak_rss(&self) -> bool {
        fs::write(format!("/proc/{}/clear_refs", self.pid()), "5").is_ok()
    }

    /// Sends SIGTERM without waiting.
    pub fn signal_term(&self) {
        let st = Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status().expect("run kill");
        assert!(st.success(), "kill -TERM failed");
    }

    /// Waits for the running server to exit (after a signal), returning its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut().expect("server not running");
            if let Some(st) = child.try_wait().unwrap() {
                self.child = None;
                return st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                panic!("wharf did not exit within {timeout:?}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Graceful stop: SIGTERM, then wait for the process to exit.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal_term();
        self.wait_exit(STOP_TIMEOUT)
    }

    /// Hard stop: SIGKILL, then reap.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("server not running");
        child.kill().expect("SIGKILL");
        let _ = child.wait();
    }

    /// Starts the server again on the same data dir and with the same env.
    pub fn start_again(&mut self) {
        self.spawn();
    }

    /// SIGTERM, wait, start again.
    /// Sets (or replaces) a server environment variable for the next (re)start.
    pub fn set_env(&mut self, k: &str, v: &str) {
        self.env.retain(|(key, _)| key != k);
        self.env.push((k.to_owned(), v.to_owned()));
    }

    pub fn restart(&mut self) {
        let st = self.stop();
        assert!(st.success(), "wharf exited with {st} after SIGTERM; log:\n{}", self.log());
        self.spawn();
    }

    /// SIGKILL, start again.
    pub fn crash_restart(&mut self) {
        self.kill();
        self.spawn();
    }

    // -- requests ----------------------------------------------------------

    pub fn req(&self, method: Method, path_or_location: &str) -> Req<'_> {
        let auth = self.default_auth.lock().unwrap().clone();
        self.req_as(auth.as_deref(), method, path_or_location)
    }

    /// A request with exactly this `Authorization` value (or none).
    pub fn req_as(&self, authorization: Option<&str>, method: Method, path_or_location: &str) -> Req<'_> {
        let url = self.url(path_or_location);
        let mut rb = self.client.request(method.clone(), &url);
        if let Some(a) = authorization {
            rb = rb.header("Authorization", a);
        }
        Req { app: self, rb, method, url }
    }

    /// Makes every later [`TestApp::req`] (and helper) send this `Authorization`.
    pub fn set_default_auth(&self, authorization: Option<String>) {
        *self.default_auth.lock().unwrap() = authorization;
    }

    pub fn get(&self, path: &str) -> Resp {
        self.req(Method::GET, path).send()
    }

    pub fn head(&self, path: &str) -> Resp {
        self.req(Method::HEAD, path).send()
    }

    pub fn delete(&self, path: &str) -> Resp {
        self.req(Method::DELETE, path).send()
    }

    pub fn post(&self, path: &str) -> Resp {
        self.req(Method::POST, path).send()
    }

    /// Sends a request written by hand over a raw socket (for paths that an
    /// URL library would normalise, such as `..` segments). `Host` and
    /// `Connection: close` are added. Asserts no 5xx.
    pub fn raw(&self, method: &str, target: &str) -> RawResp {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(s, "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", self.port).unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).expect("read raw response");
        let r = RawResp::parse(&buf, method, target);
        assert!(r.status < 500, "server error on raw {method} {target}: {}\n{}", r.status, String::from_utf8_lossy(&r.body));
        r
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let start = lines.len().saturating_sub(150);
            eprintln!(
                "----- wharf server log ({}, last {} lines) -----\n{}\n----- end of server log -----",
                self.log_path.display(),
                lines.len() - start,
                lines[start..].join("\n")
            );
        }
    }
}

/// An `Authorization: Basic` value.
pub fn basic(user: &str, secret: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}")))
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}
