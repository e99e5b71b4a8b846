//! Blob pull and delete endpoints.

use actix_web::body::SizedStream;
use actix_web::http::header::{self, HeaderName};
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use futures::{StreamExt, TryStreamExt};

use super::access::require;
use super::request::{digest_param, header, repo};
use super::ApiError;
use crate::auth::Action;
use crate::registry::blobs::ByteRange;
use crate::registry::BlobBody;
use crate::registry::Registry;
use crate::server::sendfile;

const CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");

/// Parses a single `Range: bytes=a-b | a- | -n`; anything else is ignored
/// (served whole), as RFC 9110 allows.
fn parse_range(value: &str) -> Option<ByteRange> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return b.parse().ok().map(ByteRange::Suffix);
    }
    let start = a.parse().ok()?;
    let end = if b.is_empty() { None } else { Some(b.parse().ok()?) };
    // A last-pos below the first-pos makes the range syntactically invalid
    // (RFC 9110 §14.1.1), so the header is ignored, not answered with 416.
    if end.is_some_and(|e| e < start) {
        return None;
    }
    Some(ByteRange::From { start, end })
}

/// `GET|HEAD /v2/<name>/blobs/<digest>` — streams the blob; honours `Range`
/// with 206 (416 when unsatisfiable).
pub async fn get(req: HttpRequest, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    let repo = repo(&req)?;
    require(&req, Action::Pull, Some(&repo)).await?;
    let digest = digest_param(&req, "digest")?;
    if req.method() == Method::HEAD {
        let size = registry.stat_blob(&repo, &digest).await?;
        return Ok(HttpResponse::Ok()
            .insert_header((CONTENT_DIGEST, digest.to_string()))
            .insert_header((header::ACCEPT_RANGES, "bytes"))
            .content_type("application/octet-stream")
            .body(SizedStream::new(size, futures::stream::empty::<Result<bytes::Bytes, std::io::Error>>())));
    }
    let range = header(&req, header::RANGE).and_then(parse_range);
    let blob = registry.read_blob(&repo, &digest, range).await?;
    let mut response = match &blob.range {
        Some(r) => {
            let mut b = HttpResponse::PartialContent();
            b.insert_header((header::CONTENT_RANGE, format!("bytes {}-{}/{}", r.start, r.end - 1, blob.size)));
            b
        }
        None => HttpResponse::Ok(),
    };
    let length = blob.range.as_ref().map_or(blob.size, |r| r.end - r.start);
    response
        .insert_header((CONTENT_DIGEST, digest.to_string()))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::ETAG, format!("\"{digest}\"")))
        .content_type("application/octet-stream");
    let stream = match blob.body {
        BlobBody::File(file) => match sendfile::body(&req, file) {
            Ok(body) => return Ok(response.no_chunking(length).body(body)),
            Err(file) => file.into_stream().map_err(std::io::Error::other).boxed(),
        },
        // Written by the connection from the store's buffers when it can.
        BlobBody::Stream(stream) => match sendfile::stream_body(&req, stream.map_err(std::io::Error::other).boxed(), length) {
            Ok(body) => return Ok(response.no_chunking(length).body(body)),
            Err(stream) => stream,
        },
    };
    Ok(response.body(SizedStream::new(length, stream)))
}

/// `DELETE /v2/<name>/blobs/<digest>` — 202.
pub async fn delete(req: HttpRequest, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    let repo = repo(&req)?;
    let actor = require(&req, Action::Delete, Some(&repo)).await?;
    let digest = digest_param(&req, "digest")?;
    registry.delete_blob(&actor, &repo, &digest).await?;
    Ok(HttpResponse::Accepted().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_range_forms() {
        assert_eq!(parse_range("bytes=0-9"), Some(ByteRange::From { start: 0, end: Some(9) }));
        assert_eq!(parse_range("bytes=5-"), Some(ByteRange::From { start: 5, end: None }));
        assert_eq!(parse_range("bytes=-5"), Some(ByteRange::Suffix(5)));
        assert_eq!(parse_range("bytes=0-1,4-5"), None);
        assert_eq!(parse_range("items=0-1"), None);
        assert_eq!(parse_range("bytes=x-1"), None);
        assert_eq!(parse_range("bytes=5-1"), None);
        assert_eq!(parse_range("bytes=5-5"), Some(ByteRange::From { start: 5, end: Some(5) }));
    }
}
