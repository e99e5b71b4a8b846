//! Blob GETs on plain HTTP go out with sendfile, outside actix's write
//! buffer (src/api/sendfile.rs). These tests hold that path to what a client
//! relies on: responses whole and in order on a kept-alive or pipelined
//! connection, slow readers served to the end, and clients that leave
//! mid-blob costing the server nothing that lingers.

#[macro_use]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

/// Reads one response (head and a `Content-Length` body) from `reader`.
fn read_response(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut status_line = String::new();
    reader.read_line(&mut status_line).expect("status line");
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header line");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').expect("header");
        headers.push((k.trim().to_lowercase(), v.trim().to_owned()));
    }
    let length: usize = headers.iter().find(|(k, _)| k == "content-length").map(|(_, v)| v.parse().expect("length")).unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("body");
    (status, headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn connect(app: &TestApp) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", app.port())).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// Threads of the server named `wharf-sendfile` (one per running transfer).
fn transfer_threads(app: &TestApp) -> usize {
    let tasks = std::fs::read_dir(format!("/proc/{}/task", app.pid())).expect("server tasks");
    tasks.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok()).filter(|comm| comm.trim() == "wharf-sendfile").count()
}

#[test]
fn pipelined_requests_come_back_whole_and_in_order() {
    let app = TestApp::start();
    let repo = repo("zerocopy/pipeline");
    let a = unique_bytes(3 * 1024 * 1024 + 17);
    let b = unique_bytes(1024 * 1024);
    let (da, db) = (push_blob(&app, &repo, &a), push_blob(&app, &repo, &b));
    let host = format!("127.0.0.1:{}", app.port());
    let mut s = connect(&app);
    // Four requests in one write: the server must answer each in turn, and
    // no head may land inside the bytes of a file sent before it.
    let requests = format!(
        "GET /v2/{repo}/blobs/{da} HTTP/1.1\r\nHost: {host}\r\n\r\n\
         GET /v2/{repo}/blobs/{db} HTTP/1.1\r\nHost: {host}\r\nRange: bytes=1000-1999\r\n\r\n\
         GET /v2/ HTTP/1.1\r\nHost: {host}\r\n\r\n\
         GET /v2/{repo}/blobs/{db} HTTP/1.1\r\nHost: {host}\r\n\r\n"
    );
    s.write_all(requests.as_bytes()).unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let (status, headers, body) = read_response(&mut reader);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "docker-content-digest"), Some(da.as_str()));
    assert!(header(&headers, "transfer-encoding").is_none(), "{headers:?}");
    assert!(body == a, "first blob differs");
    let (status, headers, body) = read_response(&mut reader);
    assert_eq!(status, 206);
    assert_eq!(header(&headers, "content-range"), Some("bytes 1000-1999/1048576"));
    assert!(body == b[1000..2000], "range differs");
    let (status, _, body) = read_response(&mut reader);
    assert_eq!(status, 200);
    assert_eq!(body, b"{}");
    let (status, _, body) = read_response(&mut reader);
    assert_eq!(status, 200);
    assert!(body == b, "second blob differs");
    // The connection is still good for more.
    write!(s, "GET /v2/{repo}/blobs/{da} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    let (status, _, body) = read_response(&mut reader);
    assert_eq!(status, 200);
    assert!(body == a, "blob on the reused connection differs");
}

#[test]
fn a_slow_reader_gets_the_whole_blob() {
    let app = TestApp::start();
    let repo = repo("zerocopy/slow");
    let data = unique_bytes(24 * 1024 * 1024);
    let digest = push_blob(&app, &repo, &data);
    let mut s = connect(&app);
    write!(s, "GET /v2/{repo}/blobs/{digest} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    // Pausing keeps the socket full, so the server waits for room many times.
    let mut reader = BufReader::with_capacity(64 * 1024, SlowReader { inner: s, reads: 0 });
    let (status, _, body) = read_response(&mut reader);
    assert_eq!(status, 200);
    assert_eq!(sha256_digest(&body), digest);
}

struct SlowReader {
    inner: TcpStream,
    reads: usize,
}

impl Read for SlowReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reads += 1;
        if self.reads.is_multiple_of(64) {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.inner.read(buf)
    }
}

#[test]
fn clients_leaving_mid_blob_end_their_transfers() {
    let mut app = TestApp::start();
    let repo = repo("zerocopy/leave");
    let data = unique_bytes(64 * 1024 * 1024);
    let digest = push_blob(&app, &repo, &data);
    for round in 0..16 {
        let mut s = connect(&app);
        write!(s, "GET /v2/{repo}/blobs/{digest} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut some = vec![0; 256 * 1024];
        s.read_exact(&mut some).unwrap();
        if round == 0 {
            // The blob is far larger than the socket buffers: its transfer
            // thread is still there, waiting for this client.
            assert_eq!(transfer_threads(&app), 1, "the blob did not go out through a sendfile transfer");
        }
        drop(s);
    }
    // Every transfer notices its client is gone and ends its thread.
    let deadline = Instant::now() + Duration::from_secs(10);
    while transfer_threads(&app) > 0 {
        assert!(Instant::now() < deadline, "{} transfer threads still running", transfer_threads(&app));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(app.is_running(), "server exited");
    assert_blob(&app, &repo, &digest, &data);
}

/// Starts a 64 MiB blob download on a raw socket and reads its first 256 KiB.
fn start_download(app: &TestApp, repo: &str, digest: &str) -> TcpStream {
    let mut s = connect(app);
    write!(s, "GET /v2/{repo}/blobs/{digest} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut some = vec![0; 256 * 1024];
    s.read_exact(&mut some).unwrap();
    s
}

#[test]
fn with_sendfile_off_blobs_stream_through_actix() {
    let app = TestApp::builder().env("WHARF_SERVER__SENDFILE", "false").start();
    let repo = repo("zerocopy/off");
    let data = unique_bytes(64 * 1024 * 1024);
    let digest = push_blob(&app, &repo, &data);
    let s = start_download(&app, &repo, &digest);
    assert_eq!(transfer_threads(&app), 0, "a sendfile transfer runs although server.sendfile is off");
    drop(s);
    assert_blob(&app, &repo, &digest, &data);
}

#[test]
fn a_client_that_stops_reading_is_cut_off() {
    let mut app = TestApp::builder().env("WHARF_SERVER__SEND_TIMEOUT", "1s").start();
    let repo = repo("zerocopy/stalled");
    let data = unique_bytes(64 * 1024 * 1024);
    let digest = push_blob(&app, &repo, &data);
    let mut s = start_download(&app, &repo, &digest);
    assert_eq!(transfer_threads(&app), 1, "the blob did not go out through a sendfile transfer");
    // The client holds the connection open but reads nothing more.
    let deadline = Instant::now() + Duration::from_secs(15);
    while transfer_threads(&app) > 0 {
        assert!(Instant::now() < deadline, "the stalled transfer was not cut off");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The connection is closed after what the buffers held: the body is short.
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.len() + 256 * 1024 < data.len(), "a cut-off transfer still delivered the whole blob");
    assert!(app.is_running(), "server exited");
    assert_blob(&app, &repo, &digest, &data);
}

#[test]
fn past_the_sendfile_cap_downloads_stream_through_actix() {
    const CAP: usize = 2;
    let app = TestApp::builder().env("WHARF_SERVER__MAX_TRANSFERS", CAP.to_string()).env("WHARF_SERVER__SEND_TIMEOUT", "1h").start();
    let repo = repo("zerocopy/cap");
    let data = unique_bytes(64 * 1024 * 1024);
    let digest = push_blob(&app, &repo, &data);
    // Stalled clients fill every slot (one at a time: the cap counts
    // transfers that have started).
    let stalled: Vec<TcpStream> = (1..=CAP)
        .map(|n| {
            let s = start_download(&app, &repo, &digest);
            assert_eq!(transfer_threads(&app), n, "download {n} did not go out through sendfile");
            s
        })
        .collect();
    // One more download is served whole, and not by a sendfile thread.
    let mut s = connect(&app);
    write!(s, "GET /v2/{repo}/blobs/{digest} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut reader = BufReader::new(s);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).expect("status line");
    assert!(status_line.starts_with("HTTP/1.1 200 "), "{status_line:?}");
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header line");
        if line.trim_end().is_empty() {
            break;
        }
    }
    let mut body = vec![0; data.len()];
    let (first, rest) = body.split_at_mut(256 * 1024);
    reader.read_exact(first).expect("first bytes");
    assert_eq!(transfer_threads(&app), CAP, "a transfer started past server.max_transfers");
    reader.read_exact(rest).expect("rest of the blob");
    assert!(body == data, "the streamed blob differs");
    drop(reader);
    assert_eq!(transfer_threads(&app), CAP, "the stalled transfers ended");
    // Once the stalled clients leave, sendfile serves again.
    drop(stalled);
    let deadline = Instant::now() + Duration::from_secs(10);
    while transfer_threads(&app) > 0 {
        assert!(Instant::now() < deadline, "{} transfer threads still running", transfer_threads(&app));
        std::thread::sleep(Duration::from_millis(50));
    }
    let _s = start_download(&app, &repo, &digest);
    assert_eq!(transfer_threads(&app), 1, "sendfile did not serve again below the cap");
}

#[test]
fn a_sendfile_cap_of_zero_is_refused_at_start() {
    let (status, log) = TestApp::builder().env("WHARF_SERVER__MAX_TRANSFERS", "0").run_to_exit(Duration::from_secs(30));
    assert!(!status.success(), "started with server.max_transfers = 0");
    assert!(log.contains("server.max_transfers"), "the error does not name the setting:\n{log}");
}
