//! Start-up on the S3 backend: where credentials come from, and a store
//! that cannot be used failing start-up with a clear message instead of a
//! 500 on every push. Every address here is loopback; the tests without an
//! S3 server need none and run everywhere.

mod common;

use std::io::ErrorKind;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::*;

/// The S3 settings of a server whose endpoint is `endpoint`, with no keys.
fn s3_without_keys(endpoint: &str) -> TestAppBuilder {
    TestApp::builder()
        .env("WHARF_STORAGE__BACKEND", "s3")
        .env("WHARF_STORAGE__S3__ENDPOINT", endpoint)
        .env("WHARF_STORAGE__S3__BUCKET", "wharf-startup-test")
        .env("WHARF_STORAGE__S3__ALLOW_HTTP", "true")
}

/// With no keys in the config or the environment, and instance metadata not
/// allowed, start-up fails naming the settings to use, before any request:
/// not even the configured endpoint (a listener of this test) is contacted.
#[test]
fn missing_credentials_fail_start_up_before_any_request() {
    let endpoint = TcpListener::bind("127.0.0.1:0").unwrap();
    endpoint.set_nonblocking(true).unwrap();
    let url = format!("http://{}", endpoint.local_addr().unwrap());
    let started = Instant::now();
    let (status, log) = s3_without_keys(&url).run_to_exit(Duration::from_secs(20));
    assert!(!status.success(), "wharf started without S3 credentials; log:\n{log}");
    for needle in ["no S3 credentials", "storage.s3.access_key_id", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "use_instance_metadata"] {
        assert!(log.contains(needle), "the start-up error does not mention {needle}; log:\n{log}");
    }
    // object_store's instance-metadata provider retries for many seconds
    // before giving up; failing at once means it was never asked.
    assert!(started.elapsed() < Duration::from_secs(10), "start-up took {:?}", started.elapsed());
    match endpoint.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("wharf contacted the S3 endpoint although it had no credentials: {other:?}"),
    }
}

/// Half a key pair in the environment is refused with the missing half named.
#[test]
fn half_a_key_pair_in_the_environment_fails_start_up() {
    let (status, log) = s3_without_keys("http://127.0.0.1:9").env("AWS_ACCESS_KEY_ID", "only-the-id").run_to_exit(Duration::from_secs(20));
    assert!(!status.success(), "wharf started with half a key pair; log:\n{log}");
    assert!(log.contains("AWS_ACCESS_KEY_ID is set in the environment but AWS_SECRET_ACCESS_KEY is not"), "log:\n{log}");
}

/// An endpoint nothing listens on fails start-up, naming the endpoint and
/// the bucket, within the check's bounds.
#[test]
fn unreachable_endpoint_fails_start_up() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let (status, log) =
        s3_without_keys(&url).env("AWS_ACCESS_KEY_ID", "test").env("AWS_SECRET_ACCESS_KEY", "test").run_to_exit(Duration::from_secs(60));
    assert!(!status.success(), "wharf started on a closed endpoint; log:\n{log}");
    let expected = format!("storage check: cannot use S3 bucket \"wharf-startup-test\" at {url}");
    assert!(log.contains(&expected), "the start-up error does not say {expected:?}; log:\n{log}");
    assert!(log.contains("Connection refused"), "the start-up error does not give the cause; log:\n{log}");
    assert!(started.elapsed() < Duration::from_secs(40), "start-up took {:?}", started.elapsed());
}

/// Against the test S3 server (`s3::` like the rest of the S3 half).
mod s3 {
    use super::*;

    fn server_var(k: &str) -> String {
        std::env::var(k).unwrap_or_else(|_| panic!("{k} is unset"))
    }

    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (the convention every S3
    /// tool follows) are used when the config names no keys.
    #[test]
    fn credentials_from_the_aws_environment() {
        if !s3_available() {
            return;
        }
        let app = TestApp::builder()
            .backend(Backend::S3)
            .without_env("WHARF_STORAGE__S3__ACCESS_KEY_ID")
            .without_env("WHARF_STORAGE__S3__SECRET_ACCESS_KEY")
            .env("AWS_ACCESS_KEY_ID", server_var("WHARF_TEST_S3_ACCESS_KEY_ID"))
            .env("AWS_SECRET_ACCESS_KEY", server_var("WHARF_TEST_S3_SECRET_ACCESS_KEY"))
            .start();
        let image = push_image(&app, "envkeys/app", Some("v1"), 2);
        assert_manifest(&app, "envkeys/app", "v1", OCI_MANIFEST, &image.manifest);
        for (digest, data) in image.layer_digests.iter().zip(&image.layers) {
            assert_blob(&app, "envkeys/app", digest, data);
        }
    }

    /// A bucket that does not exist fails start-up with that said.
    #[test]
    fn missing_bucket_fails_start_up() {
        if !s3_available() {
            return;
        }
        let bucket = format!("wharf-missing-{}", unique_token());
        let (status, log) =
            TestApp::builder().backend(Backend::S3).env("WHARF_STORAGE__S3__BUCKET", bucket.as_str()).run_to_exit(Duration::from_secs(60));
        assert!(!status.success(), "wharf started on a missing bucket; log:\n{log}");
        let expected = format!("storage check: cannot use S3 bucket {bucket:?} at {}", server_var("WHARF_TEST_S3_ENDPOINT"));
        assert!(log.contains(&expected), "the start-up error does not say {expected:?}; log:\n{log}");
        // The server's own S3 error code, passed on.
        assert!(log.contains("NoSuchBucket"), "the start-up error does not give the cause; log:\n{log}");
    }
}
