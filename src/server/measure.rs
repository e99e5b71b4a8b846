//! The HTTP series: requests, latency, bytes in and out, each labelled by
//! the route's pattern (`/v2/{name:.+}/blobs/{digest}`), never the raw path,
//! so label values stay a fixed set. Bytes are counted as they pass: a
//! request body as the handler reads it, a response body as actix takes
//! each chunk, and a zero-copy blob as the kernel sends it
//! ([`super::sendfile`]), after this middleware has long returned.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{Payload, ServiceRequest};
use actix_web::http::{Method, StatusCode};
use actix_web::HttpMessage;
use bytes::Bytes;
use futures::TryStreamExt;
use metrics::Counter;

/// The label of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// The route pattern the request matches, or [`UNMATCHED`].
pub fn route(req: &ServiceRequest) -> String {
    req.match_pattern().unwrap_or_else(|| UNMATCHED.to_owned())
}

/// The standard methods by name; anything else (a client may send any
/// token) as `other`.
pub fn method(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

pub fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Counts the request body's bytes as the handler reads them.
pub fn count_request_body(req: &mut ServiceRequest, route: &str) {
    let payload = req.take_payload();
    if matches!(payload, Payload::None) {
        return;
    }
    let bytes = metrics::counter!("wharf_http_request_bytes_total", "route" => route.to_owned());
    let counted = payload.inspect_ok(move |chunk| bytes.increment(chunk.len() as u64));
    req.set_payload(Payload::Stream { payload: Box::pin(counted) });
}

/// The response body bytes counter of a route and transfer kind.
pub fn response_bytes(route: &str, transfer: &'static str) -> Counter {
    metrics::counter!("wharf_http_response_bytes_total", "route" => route.to_owned(), "transfer" => transfer)
}

/// A response body that counts the bytes actix takes from it.
pub struct Counted<B> {
    body: B,
    bytes: Counter,
}

impl<B> Counted<B> {
    pub fn new(body: B, bytes: Counter) -> Self {
        Self { body, bytes }
    }
}

impl<B: MessageBody + Unpin> MessageBody for Counted<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        let next = Pin::new(&mut this.body).poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &next {
            this.bytes.increment(chunk.len() as u64);
        }
        next
    }

    fn try_into_bytes(self) -> Result<Bytes, Self> {
        let Self { body, bytes } = self;
        match body.try_into_bytes() {
            Ok(chunk) => {
                bytes.increment(chunk.len() as u64);
                Ok(chunk)
            }
            Err(body) => Err(Self { body, bytes }),
        }
    }
}

/// `metrics.repository_labels`: the names that have a label of their own.
struct RepositoryLabels {
    cap: usize,
    seen: Mutex<HashSet<String>>,
}

static REPOSITORY_LABELS: OnceLock<RepositoryLabels> = OnceLock::new();

/// Turns on per-repository request counts for the first `cap` names seen
/// (once per process; `serve` calls it when the configuration asks).
pub fn label_repositories(cap: usize) {
    let _ = REPOSITORY_LABELS.set(RepositoryLabels { cap, seen: Mutex::new(HashSet::new()) });
}

/// Counts a registry request against its repository, if labels are on.
pub fn count_repository(name: &str) {
    let Some(labels) = REPOSITORY_LABELS.get() else { return };
    let label = {
        let mut seen = labels.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains(name) {
            name.to_owned()
        } else if seen.len() < labels.cap {
            seen.insert(name.to_owned());
            name.to_owned()
        } else {
            "other".to_owned()
        }
    };
    metrics::counter!("wharf_http_repository_requests_total", "repository" => label).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_a_fixed_set() {
        assert_eq!(method(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert_eq!(method(&Method::PATCH), "PATCH");
        assert_eq!(status_class(StatusCode::NOT_FOUND), "4xx");
        assert_eq!(status_class(StatusCode::from_u16(599).unwrap()), "5xx");
    }
}
