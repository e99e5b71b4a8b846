//! Request helpers shared by the handlers: path parameters into domain types,
//! bodies into streams, pagination parameters.

use actix_web::{web, HttpRequest};
use bytes::BytesMut;
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;

use super::{ApiError, OciCode};
use crate::config::RegistryConfig;
use crate::domain::{Digest, RepoName};
use crate::registry::BodyStream;
use crate::registry::RegistryError;

pub fn repo(req: &HttpRequest) -> Result<RepoName, ApiError> {
    Ok(RepoName::parse(req.match_info().get("name").unwrap_or_default())?)
}

pub fn digest_param(req: &HttpRequest, key: &str) -> Result<Digest, ApiError> {
    Ok(Digest::parse(req.match_info().get(key).unwrap_or_default())?)
}

pub fn header(req: &HttpRequest, name: actix_web::http::header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The request body as a stream the storage layer can consume.
pub fn body_stream(payload: web::Payload) -> BodyStream {
    payload.map_err(|e| std::io::Error::other(e.to_string())).boxed_local()
}

/// Reads a whole body of at most `limit` bytes (manifests only).
pub async fn read_limited(req: &HttpRequest, mut payload: web::Payload, limit: usize) -> Result<bytes::Bytes, ApiError> {
    let too_large = || ApiError::from(RegistryError::TooLarge { what: "manifest", limit: limit as u64 });
    let declared = header(req, actix_web::http::header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(4096).min(limit as u64) as usize);
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::from(RegistryError::Body(e.to_string())))?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// `?n=&last=` as sent by the client.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    n: Option<String>,
    last: Option<String>,
}

impl PageQuery {
    /// The page size, capped by the server's limit; a negative or non-numeric
    /// `n` is refused.
    pub fn size(&self, config: &RegistryConfig) -> Result<u32, ApiError> {
        match &self.n {
            None => Ok(config.default_page_size),
            Some(n) => {
                let n: i64 =
                    n.parse().map_err(|_| ApiError::bad_request(OciCode::Unsupported, format!("n must be a number, got {n:?}")))?;
                if n < 0 {
                    return Err(ApiError::bad_request(OciCode::Unsupported, "n must not be negative"));
                }
                Ok(n.min(config.max_page_size as i64) as u32)
            }
        }
    }

    pub fn last(&self) -> Option<String> {
        self.last.clone().filter(|l| !l.is_empty())
    }
}

/// The `Link` header for the next page, as the distribution spec shapes it.
pub fn next_link(path: &str, n: u32, last: &str) -> String {
    let last: String = url::form_urlencoded::byte_serialize(last.as_bytes()).collect();
    format!("<{path}?n={n}&last={last}>; rel=\"next\"")
}
