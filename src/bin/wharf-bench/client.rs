//! The OCI distribution HTTP calls the scenarios make, and nothing else:
//! this tool knows a registry only by its base URL.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, LINK, LOCATION};
use reqwest::{Body, Client, Response, StatusCode};

pub type Res<T> = Result<T, String>;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// How a whole blob is pushed in one body.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Monolithic {
    /// `POST /blobs/uploads/?digest=` with the body: one request.
    SinglePost,
    /// `POST /blobs/uploads/` then `PUT <location>?digest=` with the body.
    PostPut,
}

impl Monolithic {
    pub fn describe(self) -> &'static str {
        match self {
            Self::SinglePost => "single POST ?digest=",
            Self::PostPut => "POST, then PUT ?digest= with the body",
        }
    }
}

#[derive(Clone)]
pub struct Registry {
    pub base: String,
    pub http: Client,
}

/// Fails with the status and the start of the body unless `status` is `want`.
async fn expect(resp: Response, want: StatusCode, what: &str) -> Res<Response> {
    if resp.status() == want {
        return Ok(resp);
    }
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    Err(format!("{what}: expected {want}, got {status}: {}", body.chars().take(300).collect::<String>()))
}

fn net(what: &str) -> impl Fn(reqwest::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

impl Registry {
    pub fn new(base: &str) -> Res<Self> {
        let http = Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(1024)
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        Ok(Self { base: base.trim_end_matches('/').to_owned(), http })
    }

    /// An absolute URL for a path or for a `Location`/`Link` the server sent.
    pub fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_owned()
        } else {
            format!("{}{}", self.base, path_or_url)
        }
    }

    fn location(resp: &Response, what: &str) -> Res<String> {
        resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned).ok_or_else(|| format!("{what}: no Location header"))
    }

    /// `<location>?digest=` or `<location>&digest=`.
    fn with_digest(&self, location: &str, digest: &str) -> String {
        let sep = if location.contains('?') { '&' } else { '?' };
        self.url(&format!("{location}{sep}digest={digest}"))
    }

    pub async fn check_base(&self) -> Res<()> {
        let resp = self.http.get(self.url("/v2/")).send().await.map_err(net("GET /v2/"))?;
        expect(resp, StatusCode::OK, "GET /v2/").await.map(drop)
    }

    /// `POST /v2/<repo>/blobs/uploads/` → the upload's `Location`.
    pub async fn start_upload(&self, repo: &str) -> Res<String> {
        let what = "POST blobs/uploads";
        let resp =
            self.http.post(self.url(&format!("/v2/{repo}/blobs/uploads/"))).header(CONTENT_LENGTH, 0).send().await.map_err(net(what))?;
        let resp = expect(resp, StatusCode::ACCEPTED, what).await?;
        Self::location(&resp, what)
    }

    /// Finds out whether the registry takes a blob in a single POST: sends a
    /// tiny blob that way; 201 means yes, 202 (an upload session) means no.
    pub async fn probe_single_post(&self, repo: &str) -> Res<Monolithic> {
        let data = Bytes::from_static(b"wharf-bench single POST probe");
        let digest = crate::gen::sha256_hex(&data);
        let resp = self
            .http
            .post(self.url(&format!("/v2/{repo}/blobs/uploads/?digest={digest}")))
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(data.clone())
            .send()
            .await
            .map_err(net("probe POST ?digest="))?;
        match resp.status() {
            StatusCode::CREATED => Ok(Monolithic::SinglePost),
            StatusCode::ACCEPTED => {
                let location = Self::location(&resp, "probe POST ?digest=")?;
                self.finish_with_body(&location, &digest, data.len() as u64, Body::from(data)).await?;
                Ok(Monolithic::PostPut)
            }
            other => Err(format!("probe POST ?digest=: unexpected {other}")),
        }
    }

    /// `PUT <location>?digest=` carrying the (rest of the) body.
    pub async fn finish_with_body(&self, location: &str, digest: &str, len: u64, body: Body) -> Res<()> {
        let what = "PUT upload ?digest=";
        let resp = self
            .http
            .put(self.with_digest(location, digest))
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, len)
            .body(body)
            .send()
            .await
            .map_err(net(what))?;
        expect(resp, StatusCode::CREATED, what).await.map(drop)
    }

    /// Pushes a whole blob in one body, the way `mode` says.
    pub async fn push_monolithic(&self, mode: Monolithic, repo: &str, digest: &str, len: u64, body: Body) -> Res<()> {
        match mode {
            Monolithic::SinglePost => {
                let what = "POST ?digest= (monolithic)";
                let resp = self
                    .http
                    .post(self.url(&format!("/v2/{repo}/blobs/uploads/?digest={digest}")))
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, len)
                    .body(body)
                    .send()
                    .await
                    .map_err(net(what))?;
                expect(resp, StatusCode::CREATED, what).await.map(drop)
            }
            Monolithic::PostPut => {
                let location = self.start_upload(repo).await?;
                self.finish_with_body(&location, digest, len, body).await
            }
        }
    }

    /// `PATCH <location>` with `Content-Range: start-end`; returns the next location.
    pub async fn patch(&self, location: &str, start: u64, len: u64, body: Body) -> Res<String> {
        let what = "PATCH upload";
        let resp = self
            .http
            .patch(self.url(location))
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, len)
            .header("Content-Range", format!("{}-{}", start, start + len - 1))
            .body(body)
            .send()
            .await
            .map_err(net(what))?;
        let resp = expect(resp, StatusCode::ACCEPTED, what).await?;
        Self::location(&resp, what)
    }

    /// A small blob the way docker pushes one: POST, then PUT with the body.
    pub async fn push_small(&self, repo: &str, data: Bytes) -> Res<String> {
        let digest = crate::gen::sha256_hex(&data);
        let location = self.start_upload(repo).await?;
        self.finish_with_body(&location, &digest, data.len() as u64, Body::from(data)).await?;
        Ok(digest)
    }

    /// `HEAD` a blob → its `Content-Length`, or None when it is unknown.
    pub async fn blob_size(&self, repo: &str, digest: &str) -> Res<Option<u64>> {
        let what = "HEAD blob";
        let resp = self.http.head(self.url(&format!("/v2/{repo}/blobs/{digest}"))).send().await.map_err(net(what))?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::OK => Ok(resp.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())),
            other => Err(format!("{what}: unexpected {other}")),
        }
    }

    /// `GET` a blob; hands every chunk to `sink`; returns the byte count.
    pub async fn pull_blob(&self, repo: &str, digest: &str, mut sink: impl FnMut(&[u8])) -> Res<u64> {
        let what = "GET blob";
        let resp = self.http.get(self.url(&format!("/v2/{repo}/blobs/{digest}"))).send().await.map_err(net(what))?;
        let mut resp = expect(resp, StatusCode::OK, what).await?;
        let mut n = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(net(what))? {
            n += chunk.len() as u64;
            sink(&chunk);
        }
        Ok(n)
    }

    /// `GET` a blob and drop its body inside the kernel (socket → pipe →
    /// /dev/null with splice), so the client costs next to nothing and the
    /// pull measures the registry rather than this tool's copying. Plain
    /// HTTP with a `Content-Length` only; returns the byte count.
    pub async fn pull_blob_discarding(&self, repo: &str, digest: &str) -> Res<u64> {
        let url = url::Url::parse(&self.url(&format!("/v2/{repo}/blobs/{digest}"))).map_err(|e| format!("blob URL: {e}"))?;
        if url.scheme() != "http" {
            return self.pull_blob(repo, digest, |_| {}).await;
        }
        let host = url.host_str().ok_or("blob URL has no host")?.to_owned();
        let port = url.port_or_known_default().unwrap_or(80);
        let target = url.path().to_owned();
        tokio::task::spawn_blocking(move || discarding_get(&host, port, &target).map_err(|e| format!("GET blob (discarding): {e}")))
            .await
            .map_err(|e| format!("pull task: {e}"))?
    }

    pub async fn put_manifest(&self, repo: &str, reference: &str, manifest: Bytes) -> Res<()> {
        let what = "PUT manifest";
        let resp = self
            .http
            .put(self.url(&format!("/v2/{repo}/manifests/{reference}")))
            .header(CONTENT_TYPE, OCI_MANIFEST)
            .body(manifest)
            .send()
            .await
            .map_err(net(what))?;
        expect(resp, StatusCode::CREATED, what).await.map(drop)
    }

    /// `GET` a manifest; returns its length.
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Res<usize> {
        let what = "GET manifest";
        let resp = self
            .http
            .get(self.url(&format!("/v2/{repo}/manifests/{reference}")))
            .header(ACCEPT, ACCEPT_MANIFESTS)
            .send()
            .await
            .map_err(net(what))?;
        let resp = expect(resp, StatusCode::OK, what).await?;
        Ok(resp.bytes().await.map_err(net(what))?.len())
    }

    /// One page of a tags list or catalog: the names under `key`, and the
    /// next page's URL from the `Link` header.
    pub async fn get_page(&self, url: &str, key: &str) -> Res<(usize, Option<String>)> {
        let what = "GET page";
        let resp = self.http.get(self.url(url)).send().await.map_err(net(what))?;
        let resp = expect(resp, StatusCode::OK, what).await?;
        let next = resp.headers().get(LINK).and_then(|v| v.to_str().ok()).and_then(parse_next_link);
        let body: serde_json::Value = resp.json().await.map_err(net(what))?;
        let count = body.get(key).and_then(|v| v.as_array()).map_or(0, Vec::len);
        Ok((count, next))
    }
}

/// The target of `<...>; rel="next"` in a `Link` header.
pub fn parse_next_link(header: &str) -> Option<String> {
    header.split(',').find(|part| part.contains("rel=\"next\"") || part.contains("rel=next")).and_then(|part| {
        let start = part.find('<')? + 1;
        let end = part[start..].find('>')? + start;
        Some(part[start..end].to_owned())
    })
}

/// The blocking body of [`Registry::pull_blob_discarding`].
fn discarding_get(host: &str, port: u16, target: &str) -> Result<u64, String> {
    use rustix::pipe::{splice, SpliceFlags};
    use std::io::{Read, Write};
    const HEAD_LIMIT: usize = 64 * 1024;
    const SPLICE_BYTES: u64 = 1 << 20;
    let io = |e: std::io::Error| e.to_string();
    let mut sock = std::net::TcpStream::connect((host, port)).map_err(io)?;
    write!(sock, "GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n").map_err(io)?;
    let mut head = Vec::with_capacity(4096);
    let mut buf = [0u8; 4096];
    let (length, body_start) = loop {
        let n = sock.read(&mut buf).map_err(io)?;
        if n == 0 || head.len() + n > HEAD_LIMIT {
            return Err("no complete response head".into());
        }
        head.extend_from_slice(&buf[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(end) = response.parse(&head).map_err(|e| e.to_string())? {
            if response.code != Some(200) {
                return Err(format!("status {:?}", response.code));
            }
            let length = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<u64>().ok())
                .ok_or("no Content-Length")?;
            break (length, end);
        }
    };
    let mut received = (head.len() - body_start) as u64;
    let (pipe_out, pipe_in) = rustix::pipe::pipe().map_err(|e| e.to_string())?;
    let _ = rustix::pipe::fcntl_setpipe_size(&pipe_in, SPLICE_BYTES as usize);
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null").map_err(io)?;
    while received < length {
        let want = (length - received).min(SPLICE_BYTES) as usize;
        let n = splice(&sock, None, &pipe_in, None, want, SpliceFlags::MOVE).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("connection closed after {received} of {length} body bytes"));
        }
        let mut left = n;
        while left > 0 {
            left -= splice(&pipe_out, None, &null, None, left, SpliceFlags::MOVE).map_err(|e| e.to_string())?;
        }
        received += n as u64;
    }
    Ok(received)
}

#[cfg(test)]
mod tests {
    use super::parse_next_link;

    #[test]
    fn link_header() {
        assert_eq!(parse_next_link("</v2/_catalog?n=100&last=b>; rel=\"next\"").as_deref(), Some("/v2/_catalog?n=100&last=b"));
        assert_eq!(
            parse_next_link("<http://h/v2/x/tags/list?last=t&n=100>; rel=\"next\"").as_deref(),
            Some("http://h/v2/x/tags/list?last=t&n=100")
        );
        assert_eq!(parse_next_link("</x>; rel=\"prev\""), None);
    }
}
