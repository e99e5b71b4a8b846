//! Durability and scale: uploads and content surviving restarts and
//! crashes, a 1 GiB blob in bounded server memory, and graceful shutdown
//! with a download in flight. (Concurrent clients: tests/concurrency.rs.)

#[macro_use]
mod common;

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use reqwest::blocking::Body;
use reqwest::Method;
use serde_json::json;
use sha2::{Digest as _, Sha256};

backend_tests!(upload_interrupted_by_sigkill_resumes, upload_finished_by_second_process, content_survives_crash_restart,);

fn upload_interrupted_by_sigkill_resumes(b: Backend) {
    let mut app = TestApp::start_backend(b);
    let repo = repo("durability/killed");
    let data = unique_bytes(13 * MIB + 4321);
    let digest = sha256_digest(&data);
    let first = 6 * MIB;

    let loc = start_upload(&app, &repo);
    let r = patch_chunk(&app, &loc, 0, data[..first].to_vec());
    r.expect(202).expect_header("range", &format!("0-{}", first - 1));
    let loc = r.must_header("location");

    // The 202 was a promise: SIGKILL gives the server no chance to flush.
    app.kill();
    app.start_again();

    let s = app.get(&loc);
    s.expect(204).expect_header("range", &format!("0-{}", first - 1));
    let loc = s.header("location").unwrap_or(loc);
    let second = 12 * MIB;
    let r = patch_chunk(&app, &loc, first as u64, data[first..second].to_vec());
    r.expect(202).expect_header("range", &format!("0-{}", second - 1));
    let loc = r.must_header("location");
    let r = app
        .req(Method::PUT, &with_query(&loc, &format!("digest={}", qenc(&digest))))
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", format!("{second}-{}", data.len() - 1))
        .body(data[second..].to_vec())
        .send();
    r.expect(201).expect_header("docker-content-digest", &digest);
    assert_blob(&app, &repo, &digest, &data);

    // And the finished blob survives another crash.
    app.kill();
    app.start_again();
    assert_blob(&app, &repo, &digest, &data);
}

fn upload_finished_by_second_process(b: Backend) {
    let mut app = TestApp::start_backend(b);
    let repo = repo("durability/handover");
    let data = unique_bytes(2 * MIB + 99);
    let digest = sha256_digest(&data);

    // Session A has a chunk; session B was opened but never written to.
    let a = start_upload(&app, &repo);
    let r = patch_chunk(&app, &a, 0, data[..MIB].to_vec());
    r.expect(202);
    let a = r.must_header("location");
    let other = unique_bytes(1000);
    let other_d = sha256_digest(&other);
    let bsess = start_upload(&app, &repo);

    app.restart();

    app.get(&a).expect(204).expect_header("range", &format!("0-{}", MIB - 1));
    app.get(&bsess).expect(204).expect_header("range", "0-0");
    // Session A completes with the rest of the data on the closing PUT.
    let r = app
        .req(Method::PUT, &with_query(&a, &format!("digest={}", qenc(&digest))))
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", format!("{MIB}-{}", data.len() - 1))
        .body(data[MIB..].to_vec())
        .send();
    r.expect(201).expect_header("docker-content-digest", &digest);
    // Session B completes monolithically.
    finish_upload(&app, &bsess, &other_d, other.clone()).expect(201);
    assert_blob(&app, &repo, &digest, &data);
    assert_blob(&app, &repo, &other_d, &other);
}

fn content_survives_crash_restart(b: Backend) {
    let mut app = TestApp::start_backend(b);
    let repo = repo("durability/content");
    let img = push_image(&app, &repo, Some("v1"), 2);
    push_manifest(&app, &repo, "v2", OCI_MANIFEST, &img.manifest);
    // A referrer to the image.
    push_blob(&app, &repo, b"{}");
    let art = to_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom.v1",
        "config": descriptor(OCI_EMPTY, b"{}"),
        "layers": [],
        "subject": img.descriptor(),
    }));
    let art_d = push_manifest(&app, &repo, &sha256_digest(&art), OCI_MANIFEST, &art);

    for round in 0..2 {
        if round == 0 {
            app.crash_restart();
        } else {
            app.restart();
        }
        assert_manifest(&app, &repo, "v1", OCI_MANIFEST, &img.manifest);
        assert_manifest(&app, &repo, "v2", OCI_MANIFEST, &img.manifest);
        assert_manifest(&app, &repo, &img.digest, OCI_MANIFEST, &img.manifest);
        assert_blob(&app, &repo, &img.config_digest, &img.config);
        for (d, l) in img.layer_digests.iter().zip(&img.layers) {
            assert_blob(&app, &repo, d, l);
        }
        let t = app.get(&format!("/v2/{repo}/tags/list"));
        t.expect(200);
        assert_eq!(t.json()["tags"], json!(["v1", "v2"]), "{}", t.describe());
        let c = app.get("/v2/_catalog");
        c.expect(200);
        assert_eq!(c.json()["repositories"], json!([repo.clone()]), "{}", c.describe());
        let r = app.get(&format!("/v2/{repo}/referrers/{}", img.digest));
        r.expect(200);
        let list = r.json()["manifests"].clone();
        assert_eq!(list.as_array().map(|a| a.len()), Some(1), "{}", r.describe());
        assert_eq!(list[0]["digest"], json!(art_d));
    }
}

const GIB: u64 = 1024 * 1024 * 1024;
const RSS_BUDGET_KIB: u64 = 64 * 1024;

/// A 1 GiB blob pushed in 16 MiB PATCHes from a generator and pulled back
/// streaming; the server's peak RSS must grow by less than 64 MiB for each.
#[test]
fn fs_one_gib_blob_in_bounded_memory() {
    let app = TestApp::start();
    let repo = repo("durability/huge");
    // Warm up the code paths (allocator arenas, DB connections, lazy statics).
    let warm = unique_bytes(3 * MIB);
    let wd = push_blob_chunked(&app, &repo, &warm, MIB);
    assert_blob(&app, &repo, &wd, &warm);

    let chunk = 16 * MIB as u64;
    let seed = 0x5eed_0001_0000_0bad_u64;
    let hasher = Arc::new(Mutex::new(Sha256::new()));

    let resettable = app.reset_peak_rss();
    if !resettable {
        eprintln!("note: /proc/<pid>/clear_refs refused; measuring against the peak since start");
    }
    let base = app.peak_rss_kib();
    let t0 = Instant::now();
    let mut loc = start_upload(&app, &repo);
    let mut off = 0u64;
    while off < GIB {
        let body = Body::sized(PatternReader::new(seed, off, chunk, Some(hasher.clone())), chunk);
        let r = app
            .req(Method::PATCH, &loc)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", format!("{off}-{}", off + chunk - 1))
            .body(body)
            .timeout(Duration::from_secs(300))
            .send();
        r.expect(202).expect_header("range", &format!("0-{}", off + chunk - 1));
        loc = r.must_header("location");
        off += chunk;
    }
    let digest = format!("sha256:{}", hex::encode(hasher.lock().unwrap().clone().finalize()));
    let r = app
        .req(Method::PUT, &with_query(&loc, &format!("digest={}", qenc(&digest))))
        .header("Content-Type", "application/octet-stream")
        .timeout(Duration::from_secs(600))
        .send();
    r.expect(201).expect_header("docker-content-digest", &digest);
    let push_peak = app.peak_rss_kib();
    let push_growth = push_peak.saturating_sub(base);
    eprintln!("1 GiB push: {:?}, server peak RSS {push_peak} KiB (+{push_growth} KiB over {base} KiB)", t0.elapsed());

    let h = app.head(&format!("/v2/{repo}/blobs/{digest}"));
    h.expect(200);
    assert_eq!(h.content_length(), GIB);

    let base2 = if resettable {
        assert!(app.reset_peak_rss());
        app.peak_rss_kib()
    } else {
        base
    };
    let t1 = Instant::now();
    let resp = app.req(Method::GET, &format!("/v2/{repo}/blobs/{digest}")).timeout(Duration::from_secs(600)).send_streaming();
    assert_eq!(resp.status().as_u16(), 200);
    let (n, got) = drain_hash(resp);
    let pull_peak = app.peak_rss_kib();
    let pull_growth = pull_peak.saturating_sub(base2);
    eprintln!("1 GiB pull: {:?}, server peak RSS {pull_peak} KiB (+{pull_growth} KiB over {base2} KiB)", t1.elapsed());
    assert_eq!(n, GIB, "pulled length");
    assert_eq!(got, digest, "pulled content differs");

    assert!(push_growth < RSS_BUDGET_KIB, "server peak RSS grew by {push_growth} KiB during a 1 GiB push (budget {RSS_BUDGET_KIB} KiB)");
    assert!(pull_growth < RSS_BUDGET_KIB, "server peak RSS grew by {pull_growth} KiB during a 1 GiB pull (budget {RSS_BUDGET_KIB} KiB)");
}

/// SIGTERM while a client slowly downloads a large blob: the download
/// completes intact, and then the server exits cleanly.
#[test]
fn fs_graceful_shutdown_finishes_inflight_download() {
    let mut app = TestApp::start();
    let repo = repo("durability/shutdown");
    let data = unique_bytes(48 * MIB);
    let digest = push_blob_chunked(&app, &repo, &data, 8 * MIB);

    let client = reqwest::blocking::Client::builder().timeout(None).build().unwrap();
    let mut resp = client.get(app.url(&format!("/v2/{repo}/blobs/{digest}"))).send().expect("GET blob");
    assert_eq!(resp.status().as_u16(), 200);
    let mut got = Vec::with_capacity(data.len());
    let mut buf = vec![0u8; 256 * 1024];
    // Read the first MiB, then ask the server to stop.
    while got.len() < MIB {
        let k = resp.read(&mut buf).expect("read");
        assert!(k > 0, "body ended early");
        got.extend_from_slice(&buf[..k]);
    }
    app.signal_term();
    let t0 = Instant::now();
    // Keep reading slowly: 256 KiB, then a pause; ~190 pauses, a few seconds in all.
    loop {
        let before = got.len();
        if let Err(e) = (&mut resp).take(256 * 1024).read_to_end(&mut got) {
            panic!("download broke after SIGTERM at {} of {} bytes: {e}", got.len(), data.len());
        }
        if got.len() == before {
            break;
        }
        std::thread::sleep(Duration::from_millis(15));
    }
    eprintln!("download finished {:?} after SIGTERM", t0.elapsed());
    assert_eq!(got.len(), data.len(), "download truncated by shutdown");
    assert!(got == data, "download corrupted by shutdown");
    let status = app.wait_exit(Duration::from_secs(45));
    assert!(status.success(), "wharf exited with {status} after SIGTERM; log:\n{}", app.log());
}

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

/// SIGTERM while a client slowly uploads a chunk: the PATCH still completes
/// (202 with the full range), the server exits cleanly, and after a restart
/// the session continues from there.
#[test]
fn fs_graceful_shutdown_finishes_inflight_upload() {
    let mut app = TestApp::start();
    let repo = repo("durability/shutdown-upload");
    let data = Arc::new(unique_bytes(16 * MIB));
    let digest = sha256_digest(&data);
    let loc = start_upload(&app, &repo);
    let half = 8 * MIB;
    let url = app.url(&loc);
    let body = Body::sized(SlowReader { data: Arc::new(data[..half].to_vec()), pos: 0, pause: Duration::from_millis(40) }, half as u64);
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let req =
        client.patch(url).header("Content-Type", "application/octet-stream").header("Content-Range", format!("0-{}", half - 1)).body(body);
    let uploader = std::thread::spawn(move || req.send());
    // About 32 pieces at 40 ms each: signal while the body is still arriving.
    std::thread::sleep(Duration::from_millis(400));
    app.signal_term();
    let resp = uploader.join().unwrap().unwrap_or_else(|e| panic!("in-flight PATCH broke on SIGTERM: {e:?}"));
    let status = resp.status().as_u16();
    let range = resp.headers().get("range").map(|v| v.to_str().unwrap().to_string());
    let loc = resp.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or(loc);
    assert_eq!(status, 202, "in-flight PATCH after SIGTERM: {status} {:?}", resp.text());
    assert_eq!(range.as_deref(), Some(format!("0-{}", half - 1).as_str()));
    let st = app.wait_exit(Duration::from_secs(45));
    assert!(st.success(), "wharf exited with {st} after SIGTERM; log:\n{}", app.log());

    app.start_again();
    app.get(&loc).expect(204).expect_header("range", &format!("0-{}", half - 1));
    let r = patch_chunk(&app, &loc, half as u64, data[half..].to_vec());
    r.expect(202);
    finish_upload(&app, &r.must_header("location"), &digest, Vec::new()).expect(201);
    assert_blob(&app, &repo, &digest, &data);
}
