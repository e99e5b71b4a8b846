//! Digests, deterministic content, and blob and manifest helpers.

use std::fs::File;
use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256, Sha512};

use super::*;

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

/// Where the blob `digest` (`<algorithm>:<hex>`) lives in Wharf's store:
/// its key under the storage root or S3 prefix (`storage/layout.rs`).
pub fn blob_key(digest: &str) -> String {
    let (algorithm, hex) = digest.split_once(':').expect("a digest");
    format!("blobs/{algorithm}/{}/{hex}", &hex[..2])
}

pub fn sha512_digest(data: &[u8]) -> String {
    format!("sha512:{}", hex::encode(Sha512::digest(data)))
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Deterministic pseudo-random bytes: byte `i` of stream `seed` is a pure
/// function of `(seed, i)`, so any window can be regenerated.
pub fn fill_pattern(seed: u64, offset: u64, out: &mut [u8]) {
    let mut pos = offset;
    let mut i = 0;
    while i < out.len() {
        let word = splitmix64(seed.wrapping_mul(0x1000_0000_01B3) ^ (pos / 8)).to_le_bytes();
        let start = (pos % 8) as usize;
        let n = (8 - start).min(out.len() - i);
        out[i..i + n].copy_from_slice(&word[start..start + n]);
        i += n;
        pos += n as u64;
    }
}

pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    fill_pattern(seed, 0, &mut v);
    v
}

/// Bytes that are unique to this call (so tests never share content by chance).
pub fn unique_bytes(len: usize) -> Vec<u8> {
    let token = unique_token();
    let seed = token.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    pattern(seed, len)
}

/// A streaming generator of `pattern(seed, ..)` bytes in `[offset, offset+len)`,
/// feeding an optional shared hasher as it goes. Never holds more than one
/// read buffer.
pub struct PatternReader {
    seed: u64,
    pos: u64,
    end: u64,
    hasher: Option<Arc<Mutex<Sha256>>>,
}

impl PatternReader {
    pub fn new(seed: u64, offset: u64, len: u64, hasher: Option<Arc<Mutex<Sha256>>>) -> Self {
        PatternReader { seed, pos: offset, end: offset + len, hasher }
    }
}

impl Read for PatternReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = ((self.end - self.pos) as usize).min(buf.len());
        fill_pattern(self.seed, self.pos, &mut buf[..n]);
        if let Some(h) = &self.hasher {
            h.lock().unwrap().update(&buf[..n]);
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// A repository name unique to this test run, under `prefix`.
pub fn repo(prefix: &str) -> String {
    format!("{prefix}/r{}", COUNTER.fetch_add(1, Ordering::SeqCst))
}

/// Appends a query parameter to a URL or `Location` that may already have a query.
pub fn with_query(location: &str, q: &str) -> String {
    if location.contains('?') {
        format!("{location}&{q}")
    } else {
        format!("{location}?{q}")
    }
}

/// Percent-encodes a query value (enough for digests, media types, tags).
pub fn qenc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Blob helpers
// ---------------------------------------------------------------------------

/// `POST /v2/<repo>/blobs/uploads/` (empty body): asserts 202 and returns the Location.
pub fn start_upload(app: &TestApp, repo: &str) -> String {
    let r = app.req(Method::POST, &format!("/v2/{repo}/blobs/uploads/")).header("Content-Length", "0").send();
    r.expect(202);
    r.must_header("location")
}

/// PATCH one chunk at `start`; returns the raw response (status not checked).
pub fn patch_chunk(app: &TestApp, location: &str, start: u64, chunk: Vec<u8>) -> Resp {
    let end = start + chunk.len() as u64 - 1;
    app.req(Method::PATCH, location)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", format!("{start}-{end}"))
        .body(chunk)
        .send()
}

/// Closes an upload session with `PUT <location>?digest=` and an optional final chunk.
pub fn finish_upload(app: &TestApp, location: &str, digest: &str, last_chunk: Vec<u8>) -> Resp {
    let url = with_query(location, &format!("digest={}", qenc(digest)));
    let mut r = app.req(Method::PUT, &url).header("Content-Type", "application/octet-stream");
    r = r.body(last_chunk);
    r.send()
}

/// Pushes a blob with POST then PUT (the upload flow every registry must
/// support). Asserts 202 then 201 and the returned digest; returns the digest.
pub fn push_blob(app: &TestApp, repo: &str, data: &[u8]) -> String {
    let digest = sha256_digest(data);
    let loc = start_upload(app, repo);
    let r = finish_upload(app, &loc, &digest, data.to_vec());
    r.expect(201);
    assert_eq!(r.header("docker-content-digest").as_deref(), Some(digest.as_str()), "{}", r.describe());
    assert!(r.header("location").is_some(), "201 without Location:\n{}", r.describe());
    digest
}

/// Pushes a blob in chunks of `chunk` bytes with PATCH, closing with an
/// empty PUT. Asserts every step; returns the sha256 digest.
pub fn push_blob_chunked(app: &TestApp, repo: &str, data: &[u8], chunk: usize) -> String {
    let digest = sha256_digest(data);
    let mut loc = start_upload(app, repo);
    let mut off = 0usize;
    while off < data.len() {
        let end = (off + chunk).min(data.len());
        let r = patch_chunk(app, &loc, off as u64, data[off..end].to_vec());
        r.expect(202).expect_header("range", &format!("0-{}", end - 1));
        loc = r.must_header("location");
        off = end;
    }
    let r = finish_upload(app, &loc, &digest, Vec::new());
    r.expect(201).expect_header("docker-content-digest", &digest);
    digest
}

/// GETs a blob and asserts it is exactly `data`.
#[track_caller]
pub fn assert_blob(app: &TestApp, repo: &str, digest: &str, data: &[u8]) {
    let r = app.get(&format!("/v2/{repo}/blobs/{digest}"));
    r.expect(200).expect_header("docker-content-digest", digest);
    assert_eq!(r.content_length(), data.len() as u64, "{}", r.describe());
    assert!(r.body == data, "blob {digest} in {repo}: body differs from what was pushed ({} bytes vs {})", r.body.len(), data.len());
}

/// Asserts a blob answers 404 on HEAD and 404 BLOB_UNKNOWN on GET.
#[track_caller]
pub fn assert_no_blob(app: &TestApp, repo: &str, digest: &str) {
    app.head(&format!("/v2/{repo}/blobs/{digest}")).expect(404);
    app.get(&format!("/v2/{repo}/blobs/{digest}")).expect_error(404, &["BLOB_UNKNOWN"]);
}

// ---------------------------------------------------------------------------
// Manifest helpers
// ---------------------------------------------------------------------------

pub fn descriptor(media_type: &str, data: &[u8]) -> Value {
    json!({ "mediaType": media_type, "digest": sha256_digest(data), "size": data.len() })
}

/// `PUT /v2/<repo>/manifests/<reference>` with the given Content-Type; status unchecked.
pub fn put_manifest(app: &TestApp, repo: &str, reference: &str, media_type: &str, body: &[u8]) -> Resp {
    app.req(Method::PUT, &format!("/v2/{repo}/manifests/{reference}")).header("Content-Type", media_type).body(body.to_vec()).send()
}

/// Puts a manifest and asserts 201 with Location and the right
/// Docker-Content-Digest; returns its digest.
#[track_caller]
pub fn push_manifest(app: &TestApp, repo: &str, reference: &str, media_type: &str, body: &[u8]) -> String {
    let digest = sha256_digest(body);
    let r = put_manifest(app, repo, reference, media_type, body);
    r.expect(201).expect_header("docker-content-digest", &digest);
    assert!(r.header("location").is_some(), "201 without Location:\n{}", r.describe());
    digest
}

pub fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap()
}

#[derive(Debug, Clone)]
pub struct Image {
    pub repo: String,
    pub manifest: Vec<u8>,
    pub digest: String,
    pub config: Vec<u8>,
    pub config_digest: String,
    pub layers: Vec<Vec<u8>>,
    pub layer_digests: Vec<String>,
}

impl Image {
    pub fn descriptor(&self) -> Value {
        descriptor(OCI_MANIFEST, &self.manifest)
    }
}

/// Builds (without pushing) an OCI image manifest over a config and layers.
pub fn image_manifest(config: &[u8], layers: &[Vec<u8>], extra: Value) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": layers.iter().map(|l| descriptor(OCI_LAYER, l)).collect::<Vec<_>>(),
    });
    if let (Some(m), Some(extra)) = (m.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            m.insert(k.clone(), v.clone());
        }
    }
    to_bytes(&m)
}

/// Pushes a config blob, `n_layers` layer blobs and an OCI image manifest
/// under `reference` (a tag or the manifest's digest when None).
pub fn push_image(app: &TestApp, repo: &str, reference: Option<&str>, n_layers: usize) -> Image {
    let config = to_bytes(&json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": { "type": "layers", "diff_ids": [] },
        "wharf-test": unique_token(),
    }));
    let layers: Vec<Vec<u8>> = (0..n_layers).map(|i| unique_bytes(1000 + 517 * i)).collect();
    let config_digest = push_blob(app, repo, &config);
    let layer_digests: Vec<String> = layers.iter().map(|l| push_blob(app, repo, l)).collect();
    let manifest = image_manifest(&config, &layers, json!({}));
    let digest = sha256_digest(&manifest);
    let reference = reference.map(str::to_owned).unwrap_or_else(|| digest.clone());
    push_manifest(app, repo, &reference, OCI_MANIFEST, &manifest);
    Image { repo: repo.to_owned(), manifest, digest, config, config_digest, layers, layer_digests }
}

/// Asserts GET and HEAD of a manifest return exactly `body` with the given type.
#[track_caller]
pub fn assert_manifest(app: &TestApp, repo: &str, reference: &str, media_type: &str, body: &[u8]) {
    let digest = sha256_digest(body);
    let path = format!("/v2/{repo}/manifests/{reference}");
    let accept = format!("{OCI_MANIFEST}, {OCI_INDEX}, {DOCKER_MANIFEST}, {DOCKER_LIST}");
    let g = app.req(Method::GET, &path).header("Accept", &accept).send();
    g.expect(200).expect_header("docker-content-digest", &digest);
    assert_eq!(g.header("content-type").as_deref(), Some(media_type), "{}", g.describe());
    assert_eq!(g.content_length(), body.len() as u64, "{}", g.describe());
    assert!(g.body == body, "manifest bytes differ from what was pushed:\n{}", g.describe());
    let h = app.req(Method::HEAD, &path).header("Accept", &accept).send();
    h.expect(200).expect_header("docker-content-digest", &digest);
    assert_eq!(h.header("content-type").as_deref(), Some(media_type), "{}", h.describe());
    assert_eq!(h.content_length(), body.len() as u64, "{}", h.describe());
    assert!(h.body.is_empty(), "HEAD returned a body");
}

/// Reads a whole streaming response, hashing it; returns (bytes, sha256 digest).
pub fn drain_hash(mut r: impl Read) -> (u64, String) {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; MIB];
    let mut n = 0u64;
    loop {
        let k = r.read(&mut buf).expect("reading response body");
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    (n, format!("sha256:{}", hex::encode(h.finalize())))
}

/// Parses a `Link: <url>; rel="next"` header into its URL.
pub fn next_link(r: &Resp) -> Option<String> {
    let link = r.header("link")?;
    let (url, params) = link.split_once(';').unwrap_or_else(|| panic!("malformed Link {link:?}"));
    let url = url.trim();
    assert!(url.starts_with('<') && url.ends_with('>'), "Link target not in <>: {link:?}");
    assert!(params.replace(' ', "").contains("rel=\"next\""), "Link without rel=\"next\": {link:?}");
    Some(url[1..url.len() - 1].to_string())
}

/// Writes a file next to the server log (handy for post-mortems).
pub fn write_artifact(app: &TestApp, name: &str, data: &[u8]) {
    let p = app.log_path().with_file_name(name);
    File::create(p).and_then(|mut f| f.write_all(data)).ok();
}
