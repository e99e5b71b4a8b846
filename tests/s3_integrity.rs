//! Bytes on their way to S3: whichever `storage.s3.integrity` is set, the
//! S3 server refuses a request body that changed between Wharf and itself,
//! the push fails, and nothing is stored. A relay between Wharf and the
//! test S3 server changes a byte of the blob's bytes in transit (as a
//! faulty NIC, proxy or memory might), then stops, and the same push works.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::*;
use reqwest::Method;

/// What the relay looks for in a request body: test blobs are this, repeated.
const MARKER: &[u8] = b"wharf-integrity-";

/// A TCP relay to the S3 server that, while `tamper` is set (not at first),
/// flips a bit of the first `MARKER` in every read on the way to the server.
struct TamperingRelay {
    addr: SocketAddr,
    tamper: Arc<AtomicBool>,
    tampered: Arc<AtomicU64>,
}

impl TamperingRelay {
    fn start(upstream: SocketAddr) -> TamperingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let addr = listener.local_addr().unwrap();
        let tamper = Arc::new(AtomicBool::new(false));
        let tampered = Arc::new(AtomicU64::new(0));
        let (on, count) = (tamper.clone(), tampered.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(upstream) else { continue };
                let (Ok(mut server_out), Ok(mut client_in)) = (server.try_clone(), client.try_clone()) else { continue };
                let (mut server_in, mut client_out) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server_in, &mut client_out);
                    let _ = client_out.shutdown(Shutdown::Write);
                });
                let (on, count) = (on.clone(), count.clone());
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match client_in.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if on.load(Ordering::SeqCst) {
                            if let Some(at) = buf[..n].windows(MARKER.len()).position(|w| w == MARKER) {
                                buf[at] ^= 0x20;
                                count.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        if server_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = server_out.shutdown(Shutdown::Write);
                });
            }
        });
        TamperingRelay { addr, tamper, tampered }
    }
}

fn marked_blob(len: usize, seed: &str) -> Vec<u8> {
    // A unique head so no two runs share a digest; the rest is the marker.
    let mut data = format!("{seed}\n").into_bytes();
    while data.len() < len {
        data.extend_from_slice(MARKER);
    }
    data.truncate(len);
    data
}

/// Whether the test S3 server holds anything at `digest`'s content address.
fn at_address(app: &TestApp, digest: &str) -> bool {
    app.s3_holds(&blob_key(digest)).expect("an S3 server")
}

/// Pushes whole blobs (one S3 PUT; a multipart upload) and a chunked one
/// (part objects, then their join) through a relay that changes their
/// bytes: every push fails with a 500 and leaves nothing, then succeeds
/// unchanged once the relay stops.
fn changed_bytes_are_refused(integrity: Option<&str>) {
    if !s3_available() {
        return;
    }
    assert_eq!(
        std::env::var("WHARF_TEST_S3_SERVER").as_deref(),
        Ok("versitygw"),
        "this test needs an S3 server that verifies request bodies: versitygw (tests/services/versitygw.sh)"
    );
    let upstream: SocketAddr = std::env::var("WHARF_TEST_S3_ENDPOINT")
        .unwrap()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("the test S3 server's endpoint is http://<ip>:<port>");
    let relay = TamperingRelay::start(upstream);
    let relay_url = format!("http://{}", relay.addr);
    let mut builder = TestApp::builder().backend(Backend::S3).env("WHARF_STORAGE__S3__ENDPOINT", relay_url.as_str());
    if let Some(mode) = integrity {
        builder = builder.env("WHARF_STORAGE__S3__INTEGRITY", mode);
    }
    let app = builder.start();
    let repo = repo("integrity/app");
    let token = unique_token();
    let blobs = [(marked_blob(5000, &token), None), (marked_blob(20 * MIB, &token), None), (marked_blob(3 * MIB, &token), Some(MIB + 7))];

    relay.tamper.store(true, Ordering::SeqCst);
    for (data, chunk) in &blobs {
        let digest = sha256_digest(data);
        let before = relay.tampered.load(Ordering::SeqCst);
        let status = match chunk {
            None => {
                let url = app.url(&format!("/v2/{repo}/blobs/uploads/?digest={}", qenc(&digest)));
                app.client().post(url).body(data.clone()).send().expect("the push").status().as_u16()
            }
            Some(chunk) => {
                // The first PATCH already carries changed bytes.
                let loc = start_upload(&app, &repo);
                let url = app.url(&loc);
                let end = (*chunk).min(data.len());
                app.client()
                    .patch(url)
                    .header("Content-Type", "application/octet-stream")
                    .header("Content-Range", format!("0-{}", end - 1))
                    .body(data[..end].to_vec())
                    .send()
                    .expect("the PATCH")
                    .status()
                    .as_u16()
            }
        };
        assert!(relay.tampered.load(Ordering::SeqCst) > before, "the relay changed no byte of the {}-byte blob", data.len());
        assert_eq!(status, 500, "a {}-byte blob whose bytes changed on the way to S3 was accepted; log:\n{}", data.len(), app.log());
        assert_no_blob(&app, &repo, &digest);
        assert!(!at_address(&app, &digest), "changed bytes of {digest} reached its address");
    }
    let refusals = app.log();
    assert!(refusals.contains("400") || refusals.contains("403"), "the S3 server's refusal (400 or 403) is not in the log:\n{refusals}");

    relay.tamper.store(false, Ordering::SeqCst);
    for (data, chunk) in &blobs {
        let digest = match chunk {
            None => {
                let digest = sha256_digest(data);
                app.req(Method::POST, &format!("/v2/{repo}/blobs/uploads/?digest={}", qenc(&digest))).body(data.clone()).send().expect(201);
                digest
            }
            Some(chunk) => push_blob_chunked(&app, &repo, data, *chunk),
        };
        assert_blob(&app, &repo, &digest, data);
        assert!(at_address(&app, &digest), "{digest} is not at its content address");
    }
}

/// Only an S3 server that checks what it receives can show this. versitygw
/// does (step cargo-test-versitygw runs every `s3::` test against it);
/// moto, a mock, checks neither signatures nor checksums, so step
/// cargo-test, on moto, leaves this module out.
mod verifying_s3 {
    /// The default: a CRC64-NVME checksum with each body, the request
    /// signed without it.
    #[test]
    fn a_body_changed_on_the_way_is_refused_under_its_checksum() {
        super::changed_bytes_are_refused(None);
    }

    /// `integrity = "signed"`: the body's SHA-256 in the signature.
    #[test]
    fn a_body_changed_on_the_way_is_refused_under_a_signed_payload() {
        super::changed_bytes_are_refused(Some("signed"));
    }
}
