//! The HTTP series: requests, latency, bytes in and out, each labelled by
//! the route's pattern (`/v2/{name:.+}/blobs/{digest}`), never the raw path,
//! so label values stay a fixed set. Bytes are counted as they pass: a
//! request body as the handler reads it, a response body as actix takes
//! each chunk, and a zero-copy blob as the kernel sends it
//! ([`super::sendfile`]), after this middleware has long returned.

use std::cell::{OnceCell, RefCell};
use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{Payload, ServiceRequest};
use actix_web::http::{Method, StatusCode};
use actix_web::HttpMessage;
use bytes::Bytes;
use futures::TryStreamExt;
use metrics::{Counter, Histogram};

/// The label of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// The method labels; anything else (a client may send any token) is `other`.
const METHODS: [&str; 8] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"];
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// Routes whose handles a worker keeps; the routes are a fixed set far
/// below this, so it only guards against a bug making labels unbounded.
const MAX_CACHED_ROUTES: usize = 256;

fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::PATCH => 4,
        Method::DELETE => 5,
        Method::OPTIONS => 6,
        _ => 7,
    }
}

fn status_index(status: StatusCode) -> usize {
    match status.as_u16() {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

/// The HTTP series of one route, as handles. Looking a series up in the
/// registry hashes its labels and takes a lock on every request; a worker
/// makes each handle once, on first use (so unused method/status pairs
/// never appear), and keeps it.
pub struct RouteSeries {
    route: String,
    requests: [OnceCell<Counter>; METHODS.len() * STATUS_CLASSES.len()],
    durations: [OnceCell<Histogram>; METHODS.len()],
    request_bytes: OnceCell<Counter>,
    stream_bytes: OnceCell<Counter>,
    sendfile_bytes: OnceCell<Counter>,
}

thread_local! {
    static ROUTES: RefCell<HashMap<String, Rc<RouteSeries>>> = RefCell::new(HashMap::new());
}

impl RouteSeries {
    /// This worker's handles for `route` (a matched pattern; `None` for a
    /// request that matched none).
    pub fn of(route: Option<String>) -> Rc<RouteSeries> {
        let route = route.unwrap_or_else(|| UNMATCHED.to_owned());
        ROUTES.with(|routes| {
            if let Some(series) = routes.borrow().get(&route) {
                return series.clone();
            }
            let series = Rc::new(RouteSeries {
                route: route.clone(),
                requests: std::array::from_fn(|_| OnceCell::new()),
                durations: std::array::from_fn(|_| OnceCell::new()),
                request_bytes: OnceCell::new(),
                stream_bytes: OnceCell::new(),
                sendfile_bytes: OnceCell::new(),
            });
            let mut routes = routes.borrow_mut();
            if routes.len() < MAX_CACHED_ROUTES {
                routes.insert(route, series.clone());
            }
            series
        })
    }

    /// Counts one answered request and its duration.
    pub fn answered(&self, method: &Method, status: StatusCode, elapsed: Duration) {
        let (m, s) = (method_index(method), status_index(status));
        self.requests[m * STATUS_CLASSES.len() + s]
            .get_or_init(|| {
                metrics::counter!("wharf_http_requests_total", "route" => self.route.clone(), "method" => METHODS[m], "status" => STATUS_CLASSES[s])
            })
            .increment(1);
        self.durations[m]
            .get_or_init(
                || metrics::histogram!("wharf_http_request_duration_seconds", "route" => self.route.clone(), "method" => METHODS[m]),
            )
            .record(elapsed.as_secs_f64());
    }

    /// The response body bytes counter of this route, for a streamed body
    /// or one the kernel sends from a file.
    pub fn response_bytes(&self, transfer: Transfer) -> Counter {
        let (cell, label) = match transfer {
            Transfer::Stream => (&self.stream_bytes, "stream"),
            Transfer::Sendfile => (&self.sendfile_bytes, "sendfile"),
        };
        cell.get_or_init(|| metrics::counter!("wharf_http_response_bytes_total", "route" => self.route.clone(), "transfer" => label))
            .clone()
    }

    fn request_bytes(&self) -> Counter {
        self.request_bytes.get_or_init(|| metrics::counter!("wharf_http_request_bytes_total", "route" => self.route.clone())).clone()
    }
}

/// How a response body leaves.
#[derive(Debug, Clone, Copy)]
pub enum Transfer {
    Stream,
    Sendfile,
}

/// Counts the request body's bytes as the handler reads them. Only a
/// request with a body pays for matching its route here, before routing;
/// the others are labelled after it, where actix reads the match it made.
pub fn count_request_body(req: &mut ServiceRequest) {
    let payload = req.take_payload();
    if matches!(payload, Payload::None) {
        return;
    }
    let bytes = RouteSeries::of(req.match_pattern()).request_bytes();
    let counted = payload.inspect_ok(move |chunk| bytes.increment(chunk.len() as u64));
    req.set_payload(Payload::Stream { payload: Box::pin(counted) });
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
        assert_eq!(METHODS[method_index(&Method::from_bytes(b"BREW").unwrap())], "other");
        assert_eq!(METHODS[method_index(&Method::PATCH)], "PATCH");
        assert_eq!(STATUS_CLASSES[status_index(StatusCode::NOT_FOUND)], "4xx");
        assert_eq!(STATUS_CLASSES[status_index(StatusCode::from_u16(599).unwrap())], "5xx");
    }
}
