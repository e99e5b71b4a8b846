//! Load on the S3 backend, as a registry in use sees it: a 256 MiB blob
//! pushed and pulled, then 200 small images pushed 8 at a time. No request
//! may answer 5xx (the harness asserts that on every request) and every
//! image must pull back whole. On versitygw this found a 409 Conflict on
//! upload-part writes racing the removal of emptied directories. Then
//! pulls whose sizes and ranges sit on and across the part boundaries of
//! the multipart uploads Wharf writes a blob with, pulled through the path
//! where the connection writes the store's buffers itself.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use reqwest::blocking::Body;
use reqwest::Method;

use common::*;

const BIG: u64 = 256 * MIB as u64;
const IMAGES: usize = 200;
const PUSHERS: usize = 8;
/// The part size of Wharf's multipart uploads to S3 (`S3_PART_SIZE` in
/// src/storage/s3.rs); the sizes and ranges below sit on and across its
/// boundaries.
const PART: usize = 8 * MIB;

/// `s3::` like the rest of the S3 half of the suite.
mod s3 {
    use super::*;

    #[test]
    fn big_pull_then_small_images_pushed_concurrently() {
        if !s3_available() {
            return;
        }
        let app = TestApp::start_backend(Backend::S3);

        // The big blob, streamed from a generator both ways.
        let seed = 0x05ee_db16;
        let (_, digest) = drain_hash(PatternReader::new(seed, 0, BIG, None));
        let location = start_upload(&app, "load/big");
        let url = with_query(&location, &format!("digest={}", qenc(&digest)));
        app.req(Method::PUT, &url)
            .header("Content-Type", "application/octet-stream")
            .body(Body::sized(PatternReader::new(seed, 0, BIG, None), BIG))
            .timeout(Duration::from_secs(600))
            .send()
            .expect(201);
        let pulled = app.req(Method::GET, &format!("/v2/load/big/blobs/{digest}")).timeout(Duration::from_secs(600)).send_streaming();
        assert_eq!(drain_hash(pulled), (BIG, digest.clone()), "the big blob pulled back different");

        // 200 small images, 8 pushers at a time, each into its own repository
        // and some sharing one, as a CI fleet does.
        let next = AtomicUsize::new(0);
        let pushed: Mutex<Vec<(String, String, Image)>> = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..PUSHERS {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= IMAGES {
                        break;
                    }
                    let repo = format!("load/app-{}", i % 25);
                    let tag = format!("build-{i}");
                    let image = push_image(&app, &repo, Some(&tag), 2);
                    pushed.lock().unwrap().push((repo, tag, image));
                });
            }
        });
        let pushed = pushed.into_inner().unwrap();
        assert_eq!(pushed.len(), IMAGES);
        for (repo, tag, image) in &pushed {
            assert_manifest(&app, repo, tag, OCI_MANIFEST, &image.manifest);
            assert_blob(&app, repo, &image.config_digest, &image.config);
            for (d, data) in image.layer_digests.iter().zip(&image.layers) {
                assert_blob(&app, repo, d, data);
            }
        }
        let log = app.log();
        let conflicts = log.matches("answered 409 Conflict").count();
        eprintln!("s3_load: {IMAGES} images pushed; writes retried after a 409: {conflicts}");
    }

    #[test]
    fn pulls_and_ranges_across_part_boundaries_come_back_exact() {
        if !s3_available() {
            return;
        }
        let app = TestApp::start_backend(Backend::S3);
        let repo = "load/chunks";
        const C: usize = PART;

        // Whole pulls: several parts and a tail, exactly one part, one part
        // and a byte.
        let big = pattern(0x0c4a_0001, 5 * C + 12_345);
        for data in [&big, &pattern(0x0c4a_0002, C), &pattern(0x0c4a_0003, C + 1)] {
            let digest = push_blob(&app, repo, data);
            let pulled = app.req(Method::GET, &format!("/v2/{repo}/blobs/{digest}")).timeout(Duration::from_secs(300)).send_streaming();
            assert_eq!(drain_hash(pulled), (data.len() as u64, digest.clone()), "a {}-byte blob pulled back different", data.len());
        }

        // Ranges of the big blob: inside one part, across one boundary,
        // ending or starting exactly on one, across several, to the end.
        let digest = sha256_digest(&big);
        let path = format!("/v2/{repo}/blobs/{digest}");
        let last = big.len() - 1;
        let ranges = [
            (0, 0),
            (5, C - 1),
            (C - 1, C - 1),
            (C - 1, C),
            (C, C),
            (C - 10, C + 10),
            (C, 2 * C - 1),
            (2 * C - 1, 4 * C),
            (1, 3 * C + 7),
            (4 * C + 5, last),
            (5 * C, last),
            (0, last),
        ];
        for (a, b) in ranges {
            let r = app.req(Method::GET, &path).header("Range", format!("bytes={a}-{b}")).timeout(Duration::from_secs(300)).send();
            r.expect(206).expect_header("content-range", &format!("bytes {a}-{b}/{}", big.len()));
            assert!(r.body == big[a..=b], "bytes={a}-{b}: {} bytes back, not the blob's", r.body.len());
        }
        // Open-ended and suffix forms across boundaries.
        let r = app.req(Method::GET, &path).header("Range", format!("bytes={}-", 3 * C - 3)).timeout(Duration::from_secs(300)).send();
        r.expect(206);
        assert!(r.body == big[3 * C - 3..], "open-ended range differs");
        let n = 2 * C + 17;
        let r = app.req(Method::GET, &path).header("Range", format!("bytes=-{n}")).timeout(Duration::from_secs(300)).send();
        r.expect(206).expect_header("content-range", &format!("bytes {}-{last}/{}", big.len() - n, big.len()));
        assert!(r.body == big[big.len() - n..], "suffix range differs");
    }
}
