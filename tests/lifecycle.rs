//! Graceful shutdown, black-box: SIGTERM closes the door to new connections,
//! lets requests in flight finish within `server.shutdown_timeout`, cuts off
//! those that outlast it, and leaves interrupted uploads resumable.
//! (An in-flight download or upload alone: tests/durability.rs.)

#[macro_use]
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::*;
use reqwest::blocking::Body;

backend_tests!(upload_interrupted_by_sigterm_resumes_after_restart);

/// Yields `data` with a pause before each 256 KiB: a slow client.
struct SlowReader {
    data: Arc<Vec<u8>>,
    pos: usize,
    pause: Duration,
}

const SLOW_STEP: usize = 256 * 1024;

impl Read for SlowReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.data.len() {
            return Ok(0);
        }
        if self.pos.is_multiple_of(SLOW_STEP) {
            std::thread::sleep(self.pause);
        }
        let step_end = (self.pos / SLOW_STEP + 1) * SLOW_STEP;
        let n = buf.len().min(step_end - self.pos).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Polls until a new TCP connection to the server is refused.
fn wait_until_refused(port: u16, within: Duration) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        match TcpStream::connect(("127.0.0.1", port)) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return true,
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    false
}

/// The path part of an upload location, absolute or not.
fn path_of(location: &str) -> String {
    match location.strip_prefix("http://") {
        Some(rest) => rest[rest.find('/').unwrap_or(rest.len())..].to_string(),
        None => location.to_string(),
    }
}

#[test]
fn sigterm_finishes_requests_in_flight_and_refuses_new_connections() {
    let mut app = TestApp::start();
    let repo = repo("lifecycle/drain");
    let down = unique_bytes(32 * MIB);
    let down_digest = push_blob(&app, &repo, &down);
    let up = Arc::new(unique_bytes(8 * MIB));
    let up_loc = start_upload(&app, &repo);

    // A slow download: announces itself after its first MiB, then reads
    // 256 KiB every 15 ms (about 2 s in all).
    let (started_tx, started_rx) = mpsc::channel();
    let url = app.url(&format!("/v2/{repo}/blobs/{down_digest}"));
    let downloader = std::thread::spawn(move || {
        let client = reqwest::blocking::Client::builder().timeout(None).build().unwrap();
        let mut resp = client.get(url).send().expect("GET blob");
        assert_eq!(resp.status().as_u16(), 200);
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while got.len() < MIB {
            let k = resp.read(&mut buf).expect("read");
            assert!(k > 0, "body ended early");
            got.extend_from_slice(&buf[..k]);
        }
        started_tx.send(()).unwrap();
        loop {
            let before = got.len();
            (&mut resp).take(SLOW_STEP as u64).read_to_end(&mut got).map_err(|e| format!("download broke at {} bytes: {e}", got.len()))?;
            if got.len() == before {
                return Ok::<_, String>(got);
            }
            std::thread::sleep(Duration::from_millis(15));
        }
    });
    // A slow upload: 8 MiB at 256 KiB per 40 ms (about 1.3 s).
    let url = app.url(&up_loc);
    let body = Body::sized(SlowReader { data: up.clone(), pos: 0, pause: Duration::from_millis(40) }, up.len() as u64);
    let uploader = std::thread::spawn(move || {
        let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        client
            .patch(url)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", format!("0-{}", 8 * MIB - 1))
            .body(body)
            .send()
    });
    started_rx.recv_timeout(Duration::from_secs(30)).expect("download started");
    std::thread::sleep(Duration::from_millis(200));

    app.signal_term();
    let signalled = Instant::now();
    assert!(wait_until_refused(app.port(), Duration::from_secs(5)), "new connections still accepted 5 s after SIGTERM");

    let got = downloader.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
    assert!(got == down, "download truncated or corrupted by shutdown ({} of {} bytes)", got.len(), down.len());
    let resp = uploader.join().unwrap().unwrap_or_else(|e| panic!("in-flight PATCH broke on SIGTERM: {e:?}"));
    assert_eq!(resp.status().as_u16(), 202, "in-flight PATCH after SIGTERM");
    assert_eq!(resp.headers().get("range").and_then(|v| v.to_str().ok()), Some(format!("0-{}", 8 * MIB - 1).as_str()));
    let up_loc = resp.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or(up_loc);

    let status = app.wait_exit(Duration::from_secs(30));
    let took = signalled.elapsed();
    assert!(status.success(), "wharf exited with {status} after SIGTERM; log:\n{}", app.log());
    assert!(took < Duration::from_secs(15), "exit took {took:?} after SIGTERM with a 30 s deadline and nothing left in flight");
    let log = app.log();
    assert!(log.contains("shutdown requested (SIGTERM), waiting up to 30s for 2 in-flight requests"), "{log}");
    assert!(log.contains("wharf stopped"), "{log}");
    assert!(!log.contains("cutting off"), "{log}");

    // The uploaded chunk was kept: the session finishes after a restart.
    app.start_again();
    app.get(&up_loc).expect(204).expect_header("range", &format!("0-{}", 8 * MIB - 1));
    let digest = sha256_digest(&up);
    finish_upload(&app, &up_loc, &digest, Vec::new()).expect(201);
    assert_blob(&app, &repo, &digest, &up);
}

/// A chunked upload cut by SIGTERM between PATCH and PUT goes on after the
/// restart from the status the server reports.
fn upload_interrupted_by_sigterm_resumes_after_restart(b: Backend) {
    let mut app = TestApp::start_backend(b);
    let repo = repo("lifecycle/resume");
    let data = unique_bytes(5 * MIB + 777);
    let digest = sha256_digest(&data);
    let first = 3 * MIB;
    let loc = start_upload(&app, &repo);
    let r = patch_chunk(&app, &loc, 0, data[..first].to_vec());
    r.expect(202).expect_header("range", &format!("0-{}", first - 1));
    let loc = r.must_header("location");

    let status = app.stop();
    assert!(status.success(), "wharf exited with {status} after SIGTERM; log:\n{}", app.log());
    let log = app.log();
    assert!(log.contains("shutdown requested (SIGTERM), waiting up to 30s for 0 in-flight requests"), "{log}");
    assert!(log.contains("wharf stopped"), "{log}");

    app.start_again();
    let s = app.get(&loc);
    s.expect(204).expect_header("range", &format!("0-{}", first - 1));
    let loc = s.header("location").unwrap_or(loc);
    let offset: u64 = s.must_header("range").rsplit('-').next().unwrap().parse::<u64>().unwrap() + 1;
    let r = patch_chunk(&app, &loc, offset, data[offset as usize..].to_vec());
    r.expect(202).expect_header("range", &format!("0-{}", data.len() - 1));
    finish_upload(&app, &r.must_header("location"), &digest, Vec::new()).expect(201).expect_header("docker-content-digest", &digest);
    assert_blob(&app, &repo, &digest, &data);
}

/// Requests that outlast the deadline are cut off: a download whose client
/// stopped reading (its sendfile thread waiting on a full socket) and an
/// upload whose client stopped sending. The process exits about the
/// deadline after SIGTERM, cleanly.
#[test]
fn stalled_requests_are_cut_off_at_the_deadline() {
    let mut app = TestApp::builder().env("WHARF_SERVER__SHUTDOWN_TIMEOUT", "2s").start();
    let repo = repo("lifecycle/stalled");
    let blob = unique_bytes(64 * MIB);
    let digest = push_blob(&app, &repo, &blob);
    let host = format!("127.0.0.1:{}", app.port());

    let mut download = TcpStream::connect(&host).unwrap();
    write!(download, "GET /v2/{repo}/blobs/{digest} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    let mut head = [0u8; 4096];
    let n = download.read(&mut head).unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head[..n]));

    let loc = path_of(&start_upload(&app, &repo));
    let mut upload = TcpStream::connect(&host).unwrap();
    write!(
        upload,
        "PATCH {loc} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nContent-Range: 0-{last}\r\n\r\n",
        len = MIB,
        last = MIB - 1
    )
    .unwrap();
    upload.write_all(&blob[..64 * 1024]).unwrap();
    // Let the server get both requests going, then neither side moves.
    std::thread::sleep(Duration::from_millis(500));

    app.signal_term();
    let signalled = Instant::now();
    let status = app.wait_exit(Duration::from_secs(20));
    let took = signalled.elapsed();
    assert!(status.success(), "wharf exited with {status}; log:\n{}", app.log());
    assert!(took >= Duration::from_millis(1900), "exited after {took:?}, before the 2 s deadline, with requests stalled");
    // actix checks its deadline once a second; the rest is slack for a loaded machine.
    assert!(took < Duration::from_secs(10), "exited {took:?} after SIGTERM with a 2 s deadline");
    let log = app.log();
    assert!(log.contains("waiting up to 2s for 2 in-flight requests"), "{log}");
    assert!(log.contains("cutting off 2 requests still in flight"), "{log}");
    assert!(log.contains("wharf stopped"), "{log}");

    // Both connections were closed under the clients.
    for (name, mut conn) in [("download", download), ("upload", upload)] {
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut sink = vec![0u8; 1 << 20];
        let closed = loop {
            match conn.read(&mut sink) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(e) => break !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
            }
        };
        assert!(closed, "{name} connection still open after the server exited");
    }
}

/// The HTTPS listener is bound the same way and stops the same way.
#[test]
fn https_server_stops_gracefully_on_sigterm() {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let mut app = TestApp::builder()
        .env("WHARF_SERVER__TLS__CERT_FILE", cert_path.to_str().unwrap())
        .env("WHARF_SERVER__TLS__KEY_FILE", key_path.to_str().unwrap())
        .https(cert.cert.pem().into_bytes())
        .start();
    let repo = repo("lifecycle/tls");
    let data = unique_bytes(100_000);
    let digest = push_blob(&app, &repo, &data);
    let status = app.stop();
    assert!(status.success(), "wharf exited with {status} after SIGTERM; log:\n{}", app.log());
    let log = app.log();
    assert!(log.contains("shutdown requested (SIGTERM)") && log.contains("wharf stopped"), "{log}");
    app.start_again();
    assert_blob(&app, &repo, &digest, &data);
}
