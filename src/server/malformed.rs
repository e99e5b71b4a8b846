//! An OCI error body for requests too malformed to reach the app.
//!
//! When actix-http cannot parse a request (raw non-ASCII bytes in the
//! request line, a header that is not HTTP, a TLS hello on the plain port)
//! its dispatcher answers `400 Bad Request` with an empty body and closes
//! the connection; there is no hook to shape that answer. The plain-HTTP
//! connection wrapper ([`super::sendfile::SendfileConn`]) therefore
//! recognises that exact response as it is written and sends this module's
//! JSON error in its place, so every refusal carries the OCI error envelope.

/// The dispatcher's bare 400: this status line, then exactly these headers
/// (any order, any case), then the end of the write.
const STATUS_LINE: &[u8] = b"HTTP/1.1 400 Bad Request\r\n";
/// Longer than the dispatcher's bare response ever is.
const MAX_HEAD: usize = 512;

/// The JSON error body. `api::oci_error` renders it (the one place that
/// spells OCI codes) and `lib.rs` hands it over before serving, since the
/// transport never names `api`; until then a bare 400 is left as it is.
static BODY: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Sets the body sent in place of the dispatcher's bare 400 (the first call wins).
pub fn set_body(body: String) {
    let _ = BODY.set(body);
}

/// If `buf` ends with the dispatcher's bare 400 response, returns `buf`
/// with that response replaced by one carrying the JSON error body.
pub fn rewrite_bare_400(buf: &[u8]) -> Option<Vec<u8>> {
    let body = BODY.get()?;
    if !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    // The response is short: look only at the end of a large write.
    let tail = buf.len().saturating_sub(MAX_HEAD);
    let start = tail + buf[tail..].windows(STATUS_LINE.len()).rposition(|w| w == STATUS_LINE)?;
    let head = buf[start + STATUS_LINE.len()..].strip_suffix(b"\r\n\r\n")?;
    let head = std::str::from_utf8(head).ok()?;
    let mut saw_length = false;
    let mut kept: Vec<&str> = Vec::new();
    for line in head.split("\r\n") {
        let (name, value) = line.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" if value.trim() == "0" => saw_length = true,
            "date" | "connection" => kept.push(line),
            // Anything else means this is not the dispatcher's answer.
            _ => return None,
        }
    }
    if !saw_length {
        return None;
    }
    let mut out = Vec::with_capacity(start + 256 + body.len());
    out.extend_from_slice(&buf[..start]);
    out.extend_from_slice(STATUS_LINE);
    out.extend_from_slice(format!("content-type: application/json\r\ncontent-length: {}\r\n", body.len()).as_bytes());
    if !kept.iter().any(|l| l.to_ascii_lowercase().starts_with("connection:")) {
        out.extend_from_slice(b"connection: close\r\n");
    }
    for line in kept {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARE: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Mon, 30 Nov 2026 10:00:00 GMT\r\n\r\n";

    /// What `lib.rs` sets; the real envelope is checked black-box over HTTP.
    fn with_body() {
        set_body(r#"{"errors":[{"code":"TEST","message":"malformed","detail":null}]}"#.to_owned());
    }

    #[test]
    fn replaces_the_bare_400_after_earlier_responses() {
        with_body();
        let earlier = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        let out = rewrite_bare_400(&[&earlier[..], BARE].concat()).expect("rewritten");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}HTTP/1.1 400 Bad Request\r\n"));
        let (head, body) = text[earlier.len()..].split_once("\r\n\r\n").expect("head and body");
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        assert!(head.contains("content-type: application/json") && head.contains("date: Mon"), "{head}");
        let json: serde_json::Value = serde_json::from_str(body).expect("JSON body");
        assert_eq!(json["errors"][0]["code"], "TEST");
    }

    #[test]
    fn leaves_everything_else_alone() {
        with_body();
        // The app's own 400s have bodies and more headers.
        let app_400 = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\ncontent-type: application/json\r\n\r\n";
        assert!(rewrite_bare_400(app_400).is_none());
        // A bare 400 followed by anything is not the end of the write.
        assert!(rewrite_bare_400(&[BARE, b"x"].concat()).is_none());
        // Other headers mean another response.
        assert!(rewrite_bare_400(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nx-other: 1\r\n\r\n").is_none());
        assert!(rewrite_bare_400(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(rewrite_bare_400(b"").is_none());
    }
}
