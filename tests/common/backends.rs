//! The storage backends a black-box test runs on, and `backend_tests!`,
//! which makes one test per backend.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

// ---------------------------------------------------------------------------
// Backends and the both-backends macro
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Fs,
    S3,
}

const S3_VARS: [&str; 5] = [
    "WHARF_TEST_S3_ENDPOINT",
    "WHARF_TEST_S3_BUCKET",
    "WHARF_TEST_S3_ACCESS_KEY_ID",
    "WHARF_TEST_S3_SECRET_ACCESS_KEY",
    "WHARF_TEST_S3_REGION",
];

pub(crate) fn env_nonempty(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

/// True when a test S3 server is configured. In CI a missing S3 server is a
/// failure (the S3 half of the suite must never be skipped silently there);
/// locally the test prints a loud note and the caller returns.
pub fn s3_available() -> bool {
    let missing: Vec<&str> = S3_VARS.iter().copied().filter(|k| env_nonempty(k).is_none()).collect();
    if missing.is_empty() {
        return true;
    }
    let in_ci = env_nonempty("CI").is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("false"));
    if in_ci {
        panic!(
            "S3 backend tests need a test S3 server but {missing:?} are unset; \
             in CI these tests must not be skipped (run them through tests/run-all.sh)"
        );
    }
    // Written straight to the stderr handle, which the test harness does not
    // capture, so the note shows even for a "passing" test.
    static BANNER: AtomicBool = AtomicBool::new(false);
    let name = std::thread::current().name().unwrap_or("?").to_string();
    let msg = if BANNER.swap(true, Ordering::SeqCst) {
        format!("!!! SKIPPED S3 test {name} (no test S3 server)\n")
    } else {
        format!(
            "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
             !!! S3 backend tests are SKIPPED: {missing:?} unset.\n\
             !!! Start a test S3 server (bash tests/services/s3.sh start) and export\n\
             !!! its WHARF_TEST_S3_* lines. Under CI=true these tests FAIL instead.\n\
             !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
             !!! SKIPPED S3 test {name} (no test S3 server)\n"
        )
    };
    let _ = std::io::stderr().write_all(msg.as_bytes());
    false
}

/// Generates `fs::NAME` and `s3::NAME` tests for each `fn NAME(backend: Backend)`
/// in the calling test file.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        mod fs {
            $(
                #[test]
                fn $name() {
                    super::$name($crate::common::Backend::Fs)
                }
            )+
        }
        mod s3 {
            $(
                #[test]
                fn $name() {
                    if $crate::common::s3_available() {
                        super::$name($crate::common::Backend::S3)
                    }
                }
            )+
        }
    };
}
