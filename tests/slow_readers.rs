//! Slow readers must not delay metadata writes (issue 12, item 5): while
//! many clients hold blob downloads open without reading, manifest pushes
//! still complete.
//!
//! What a stalled download holds on the server: on plain HTTP, up to
//! `server.max_transfers` of them hold a sendfile thread each (outside any
//! pool); past that cap, and on HTTPS or with `server.sendfile` off, a
//! download streams through actix and its file reader holds a thread of the
//! worker's blocking pool (`LocalFile::into_stream`) for as long as the
//! client does not read. Database calls run on that same pool today, so
//! with more stalled streams than blocking threads a push waits for a
//! reader that never comes. The test makes the pools small
//! (`server.blocking_threads`) and the sendfile cap small, so that 64
//! stalled downloads fill every sendfile slot and every blocking thread.
//!
//! No timing threshold: each push gets a generous deadlock guard only.

#[macro_use]
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::json;

const WORKERS: usize = 2;
/// Per worker; the minimum the configuration accepts is 4.
const BLOCKING_THREADS: usize = 8;
const MAX_TRANSFERS: usize = 8;
const READERS: usize = 64;
const PUSHES: usize = 8;
/// A push that takes this long is waiting on something that does not come.
const PUSH_GUARD: Duration = Duration::from_secs(60);
/// Bytes each reader takes before it stops reading.
const FIRST_READ: usize = 256 * 1024;

/// Threads of the server whose name starts with `prefix` (`comm` holds at
/// most 15 bytes of a thread's name).
fn threads_named(app: &TestApp, prefix: &str) -> usize {
    let tasks = std::fs::read_dir(format!("/proc/{}/task", app.pid())).expect("server tasks");
    tasks.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok()).filter(|comm| comm.trim().starts_with(prefix)).count()
}

/// Connects and asks for the blob; the answer is not read here.
fn request_blob(app: &TestApp, repo: &str, digest: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", app.port())).expect("connect");
    write!(s, "GET /v2/{repo}/blobs/{digest} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").expect("send request");
    s
}

/// Reads the first bytes of the answer on a thread of its own (a download
/// that waits for a server thread gets nothing yet), then stops reading;
/// the result goes to `done`. The caller keeps its own handle on the socket.
fn read_a_little(s: &TcpStream, index: usize, done: mpsc::Sender<(usize, std::io::Result<()>)>) {
    let mut s = s.try_clone().expect("clone socket");
    std::thread::spawn(move || {
        let mut some = vec![0; FIRST_READ];
        let _ = done.send((index, s.read_exact(&mut some)));
    });
}

/// Open: nothing to read yet, or bytes waiting; closed: end of stream or an
/// error such as a reset.
fn is_open(s: &TcpStream) -> bool {
    s.set_nonblocking(true).expect("non-blocking");
    let open = match s.peek(&mut [0; 1]) {
        Ok(n) => n > 0,
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
    };
    s.set_nonblocking(false).expect("blocking");
    open
}

#[test]
fn manifest_pushes_complete_while_many_downloads_are_stalled() {
    let app = TestApp::builder()
        .env("WHARF_SERVER__WORKERS", WORKERS.to_string())
        .env("WHARF_SERVER__BLOCKING_THREADS", BLOCKING_THREADS.to_string())
        .env("WHARF_SERVER__MAX_TRANSFERS", MAX_TRANSFERS.to_string())
        // A stalled sendfile transfer must outlive the pushes' guard.
        .env("WHARF_SERVER__SEND_TIMEOUT", "1h")
        .start();
    let repo = repo("slow/readers");
    // Far larger than the socket buffers and the reader's read-ahead: a
    // client that stops reading leaves its server thread waiting for room.
    let big = unique_bytes(64 * 1024 * 1024);
    let big_digest = push_blob(&app, &repo, &big);
    // The pushes below reference blobs that are already in place: a push is
    // then one metadata write.
    let image = push_image(&app, &repo, Some("base"), 1);

    let (done, finished) = mpsc::channel();
    let mut readers = Vec::with_capacity(READERS);
    // The sendfile slots first, one at a time (the cap counts transfers
    // that have started), then every other download at once.
    for i in 0..MAX_TRANSFERS {
        readers.push(request_blob(&app, &repo, &big_digest));
        read_a_little(&readers[i], i, done.clone());
        let (index, read) = finished.recv_timeout(PUSH_GUARD).expect("a download within the sendfile cap got no bytes");
        read.unwrap_or_else(|e| panic!("download {index}: {e}"));
    }
    assert_eq!(threads_named(&app, "wharf-sendfile"), MAX_TRANSFERS, "the first downloads did not go out through sendfile");
    for i in MAX_TRANSFERS..READERS {
        readers.push(request_blob(&app, &repo, &big_digest));
        read_a_little(&readers[i], i, done.clone());
    }
    // Streamed downloads get bytes until every worker's blocking threads
    // hold one; the others wait for a thread.
    let streamed = WORKERS * BLOCKING_THREADS;
    for _ in 0..streamed {
        let (index, read) = finished.recv_timeout(PUSH_GUARD).expect("streamed downloads got no bytes");
        read.unwrap_or_else(|e| panic!("download {index}: {e}"));
    }
    assert_eq!(threads_named(&app, "wharf-sendfile"), MAX_TRANSFERS, "the sendfile cap was not kept");
    let blocking = threads_named(&app, "tokio-");
    assert!(blocking >= streamed, "only {blocking} blocking threads for {streamed} stalled streams");

    // Every push must complete while all of those downloads are stalled.
    for i in 0..PUSHES {
        let manifest = image_manifest(&image.config, &image.layers, json!({"annotations": {"push": i.to_string()}}));
        let digest = sha256_digest(&manifest);
        let url = app.url(&format!("/v2/{repo}/manifests/build-{i}"));
        let client = app.client().clone();
        let (sent, answer) = mpsc::channel();
        std::thread::spawn(move || {
            let r = client.put(url).header("Content-Type", OCI_MANIFEST).body(manifest).timeout(PUSH_GUARD * 2).send();
            let _ = sent.send(r.map(|r| (r.status().as_u16(), r.headers().get("docker-content-digest").cloned())));
        });
        let (status, pushed) = answer
            .recv_timeout(PUSH_GUARD)
            .unwrap_or_else(|_| {
                panic!(
                    "push {i} did not complete within {PUSH_GUARD:?} while {READERS} downloads were stalled: \
                     the metadata write waits behind file streams"
                )
            })
            .unwrap_or_else(|e| panic!("push {i}: {e}"));
        assert_eq!(status, 201, "push {i}");
        assert_eq!(pushed.as_ref().and_then(|v| v.to_str().ok()), Some(digest.as_str()), "push {i}: Docker-Content-Digest");
    }

    // The downloads were still there all along: every socket is open, and
    // the server still holds every sendfile transfer.
    let closed: Vec<usize> = readers.iter().enumerate().filter(|(_, s)| !is_open(s)).map(|(i, _)| i).collect();
    assert!(closed.is_empty(), "downloads closed during the pushes: {closed:?}");
    assert_eq!(threads_named(&app, "wharf-sendfile"), MAX_TRANSFERS, "sendfile transfers ended during the pushes");

    // Once the readers leave, everything pushed reads back. (Shut down, not
    // only dropped: a reader thread still waiting holds a handle too.)
    for s in readers {
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
    for i in 0..PUSHES {
        let r = app.req(Method::GET, &format!("/v2/{repo}/manifests/build-{i}")).header("Accept", OCI_MANIFEST).timeout(PUSH_GUARD).send();
        r.expect(200);
    }
    let tags = app.get(&format!("/v2/{repo}/tags/list")).json();
    let listed = tags["tags"].as_array().map_or(0, Vec::len);
    assert_eq!(listed, PUSHES + 1, "tags: {tags}");
}

#[test]
fn a_blocking_pool_too_small_to_work_is_refused_at_start() {
    for bad in ["1", "3"] {
        let (status, log) = TestApp::builder().env("WHARF_SERVER__BLOCKING_THREADS", bad).run_to_exit(Duration::from_secs(30));
        assert!(!status.success(), "started with server.blocking_threads = {bad}");
        assert!(log.contains("server.blocking_threads"), "the error does not name the setting:\n{log}");
    }
}
