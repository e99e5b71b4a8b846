//! Requests and responses: every request asserts the server answered
//! without a 5xx; error responses are checked for the OCI error envelope.

use reqwest::blocking::{Body, RequestBuilder, Response};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

use super::TestApp;

pub struct Req<'a> {
    pub(super) app: &'a TestApp,
    pub(super) rb: RequestBuilder,
    pub(super) method: Method,
    pub(super) url: String,
}

impl<'a> Req<'a> {
    pub fn header(mut self, k: &str, v: impl AsRef<str>) -> Self {
        self.rb = self.rb.header(k, v.as_ref());
        self
    }

    pub fn body(mut self, b: impl Into<Body>) -> Self {
        self.rb = self.rb.body(b);
        self
    }

    pub fn timeout(mut self, t: Duration) -> Self {
        self.rb = self.rb.timeout(t);
        self
    }

    /// Sends the request and returns the response unread (for streaming).
    /// Asserts no 5xx.
    pub fn send_streaming(self) -> Response {
        let desc = format!("{} {}", self.method, self.url);
        let r = self.rb.send().unwrap_or_else(|e| panic!("{desc}: transport error: {e:?}"));
        if r.status().as_u16() >= 500 {
            let status = r.status();
            let body = r.text().unwrap_or_default();
            panic!("{desc} -> server error {status}: {body}");
        }
        r
    }

    /// Sends the request and reads the whole body. Asserts no 5xx.
    pub fn send(self) -> Resp {
        let method = self.method.to_string();
        let url = self.url.clone();
        let _ = self.app;
        let r = self.rb.send().unwrap_or_else(|e| panic!("{method} {url}: transport error: {e:?}"));
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().unwrap_or_else(|e| panic!("{method} {url}: reading body: {e:?}")).to_vec();
        let resp = Resp { status, headers, body, method, url };
        assert!(resp.status < 500, "server error (5xx is never acceptable):\n{}", resp.describe());
        resp
    }
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub method: String,
    pub url: String,
}

impl Resp {
    pub fn describe(&self) -> String {
        let mut body = String::from_utf8_lossy(&self.body).into_owned();
        if body.len() > 2000 {
            body.truncate(2000);
            body.push('…');
        }
        let mut hs: Vec<String> = self.headers.iter().map(|(k, v)| format!("  {k}: {}", v.to_str().unwrap_or("<binary>"))).collect();
        hs.sort();
        format!("{} {} -> {}\n{}\nbody: {}", self.method, self.url, self.status, hs.join("\n"), body)
    }

    /// The header's value (all values joined by ", " when repeated).
    pub fn header(&self, name: &str) -> Option<String> {
        let vals: Vec<&str> = self.headers.get_all(name).iter().map(|v| v.to_str().expect("ascii header")).collect();
        if vals.is_empty() {
            None
        } else {
            Some(vals.join(", "))
        }
    }

    pub fn must_header(&self, name: &str) -> String {
        self.header(name).unwrap_or_else(|| panic!("missing header {name}:\n{}", self.describe()))
    }

    /// `Content-Length` as sent by the server (also meaningful on HEAD).
    pub fn content_length(&self) -> u64 {
        self.must_header("content-length").parse().expect("numeric Content-Length")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}):\n{}", self.describe()))
    }

    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "unexpected status:\n{}", self.describe());
        self
    }

    #[track_caller]
    pub fn expect_header(&self, name: &str, value: &str) -> &Self {
        assert_eq!(self.header(name).as_deref(), Some(value), "header {name}:\n{}", self.describe());
        self
    }

    /// Asserts the status and an OCI error envelope whose first error has one
    /// of `codes` (any code when `codes` is empty). HEAD responses have no
    /// body, so only the status is checked for them.
    #[track_caller]
    pub fn expect_error(&self, status: u16, codes: &[&str]) -> &Self {
        self.expect(status);
        if self.method == "HEAD" {
            return self;
        }
        check_envelope(&self.body, codes, &self.describe());
        self
    }

    /// Asserts any 4xx status with an OCI error envelope whose code is one of `codes`.
    #[track_caller]
    pub fn expect_client_error(&self, codes: &[&str]) -> &Self {
        assert!((400..500).contains(&self.status), "expected a 4xx:\n{}", self.describe());
        check_envelope(&self.body, codes, &self.describe());
        self
    }

    /// The error codes in the envelope (empty when there is no envelope).
    pub fn error_codes(&self) -> Vec<String> {
        serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|v| v.get("errors").and_then(|e| e.as_array()).cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e.get("code").and_then(|c| c.as_str()).map(str::to_owned))
            .collect()
    }
}

#[track_caller]
pub fn check_envelope(body: &[u8], codes: &[&str], ctx: &str) {
    if let Err(problem) = envelope_problem(body, codes) {
        panic!("{problem}:\n{ctx}");
    }
}

/// Checks an OCI error envelope `{"errors":[{"code":..,"message":..},..]}`
/// whose first code is one of `codes` (any when empty); says what is wrong.
pub fn envelope_problem(body: &[u8], codes: &[&str]) -> Result<(), String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("error response has no JSON envelope ({e})"))?;
    let errors = v.get("errors").and_then(|e| e.as_array()).ok_or_else(|| "error body lacks an \"errors\" array".to_string())?;
    if errors.is_empty() {
        return Err("\"errors\" array is empty".into());
    }
    for e in errors {
        let code = e.get("code").and_then(|c| c.as_str()).ok_or_else(|| "error without a string code".to_string())?;
        if code.is_empty() || !code.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            return Err(format!("error code {code:?} is not UPPER_SNAKE"));
        }
        if e.get("message").is_some_and(|m| !m.is_string()) {
            return Err("error message is not a string".into());
        }
    }
    let first = errors[0]["code"].as_str().unwrap_or_default();
    if !codes.is_empty() && !codes.contains(&first) {
        return Err(format!("error code {first:?}, expected one of {codes:?}"));
    }
    Ok(())
}

/// A response read from a raw socket.
#[derive(Debug, Clone)]
pub struct RawResp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub desc: String,
}

impl RawResp {
    pub(super) fn parse(buf: &[u8], method: &str, target: &str) -> RawResp {
        let split = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("no end of headers in raw response");
        let head = String::from_utf8_lossy(&buf[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status: u16 = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
        let headers: Vec<(String, String)> =
            lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))).collect();
        let mut body = buf[split + 4..].to_vec();
        if headers.iter().any(|(k, v)| k == "transfer-encoding" && v.to_lowercase().contains("chunked")) {
            body = dechunk(&body);
        }
        let desc = format!("{method} {target} -> {status}\n{head}\nbody: {}", String::from_utf8_lossy(&body));
        RawResp { status, headers, body, desc }
    }

    #[track_caller]
    pub fn expect_client_error(&self, codes: &[&str]) -> &Self {
        assert!((400..500).contains(&self.status), "expected a 4xx:\n{}", self.desc);
        check_envelope(&self.body, codes, &self.desc);
        self
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else { return out };
        let size_str = String::from_utf8_lossy(&b[..eol]);
        let size = usize::from_str_radix(size_str.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        b = &b[eol + 2..];
        if size == 0 || b.len() < size {
            return out;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[(size + 2).min(b.len())..];
    }
}
