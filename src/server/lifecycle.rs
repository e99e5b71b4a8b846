//! The server's start and end: binding its listener, counting requests in
//! flight, and the graceful shutdown a signal starts.
//!
//! It knows actix's server handle and the process's signals, nothing
//! about the registry (see the layering note in [`super`]).
//!
//! SIGTERM (or SIGINT) stops accepting connections at once: the listening
//! socket is closed, so a new connection is refused, and idle keep-alive
//! connections are closed. Requests in flight (an upload still arriving, a
//! download still leaving) get up to `server.shutdown_timeout`; then their
//! connections are dropped and the process exits. SIGQUIT keeps its default
//! action: it ends the process at once.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use bytes::Bytes;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// Requests whose response has not been fully sent (or dropped) yet.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
/// When the shutdown signal arrived.
static STOPPING_SINCE: OnceLock<Instant> = OnceLock::new();

pub fn in_flight() -> usize {
    IN_FLIGHT.load(Ordering::Relaxed)
}

/// Counts one request in flight until dropped.
pub struct InFlight(());

impl InFlight {
    pub fn begin() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("wharf_http_requests_in_flight").increment(1.0);
        Self(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("wharf_http_requests_in_flight").decrement(1.0);
    }
}

/// A response body that keeps its request counted in flight until the body
/// has been sent or dropped: a blob download is in flight long after its
/// handler returned.
pub struct Tracked {
    body: BoxBody,
    _in_flight: InFlight,
}

impl Tracked {
    pub fn new(body: impl MessageBody + 'static, in_flight: InFlight) -> Self {
        Self { body: body.boxed(), _in_flight: in_flight }
    }
}

impl MessageBody for Tracked {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }

    fn try_into_bytes(self) -> Result<Bytes, Self> {
        let Self { body, _in_flight } = self;
        body.try_into_bytes().map_err(|body| Self { body, _in_flight })
    }
}

/// Binds the server's listening socket; `serve` does this before it writes
/// anything, so a server that cannot listen leaves no trace.
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let family = if addr.is_ipv4() { AddressFamily::INET } else { AddressFamily::INET6 };
    let socket = rustix::net::socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
    // A restarted server must not wait out the old one's TIME_WAIT sockets.
    rustix::net::sockopt::set_socket_reuseaddr(&socket, true)?;
    rustix::net::bind(&socket, &addr)?;
    rustix::net::listen(&socket, 1024)?;
    Ok(std::net::TcpListener::from(socket))
}

/// The signals that start a graceful shutdown, installed before the server
/// runs (actix's own handlers are off, so these are the only ones).
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Self> {
        Ok(Self { term: signal(SignalKind::terminate())?, int: signal(SignalKind::interrupt())? })
    }

    /// Waits for SIGTERM or SIGINT, then stops the server gracefully (and
    /// the schedules through `jobs`), logging what it waits for; logs again
    /// if the deadline passes with requests still in flight. Returns after
    /// the deadline; `serve` drops it sooner when the server stops first.
    pub async fn stop_server_on_signal(mut self, server: actix_server::ServerHandle, jobs: CancellationToken, deadline: Duration) {
        let name = tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        };
        tracing::info!(
            signal = name,
            deadline_secs = deadline.as_secs(),
            in_flight = in_flight(),
            "shutdown requested ({name}), waiting up to {}s for {} in-flight requests",
            deadline.as_secs(),
            in_flight()
        );
        let _ = STOPPING_SINCE.set(Instant::now());
        jobs.cancel();
        // Sends the stop command now; completion is `serve`'s server future.
        drop(server.stop(true));
        // actix cuts connections off on its own timer (checked once a
        // second from when its workers got the stop), never before the
        // deadline: looking a moment earlier sees what it is about to cut.
        tokio::time::sleep(deadline.saturating_sub(Duration::from_millis(50))).await;
        let left = in_flight();
        if left > 0 {
            tracing::warn!(in_flight = left, "shutdown deadline reached: cutting off {left} requests still in flight");
        }
    }
}

/// What is left of the shutdown deadline (all of it if no signal came).
pub fn deadline_left(deadline: Duration) -> Duration {
    STOPPING_SINCE.get().map_or(deadline, |since| deadline.saturating_sub(since.elapsed()))
}

/// Time since the shutdown signal, if one came.
pub fn since_signal() -> Option<Duration> {
    STOPPING_SINCE.get().map(Instant::elapsed)
}

/// `server.shutdown_timeout` in the whole seconds actix counts in, rounded up
/// so a deadline is never shorter than configured.
pub fn deadline_secs(deadline: Duration) -> u64 {
    deadline.as_secs() + u64::from(deadline.subsec_nanos() > 0)
}

/// The shutdown deadline as actix keeps it ([`deadline_secs`]).
pub fn deadline(shutdown_timeout: Duration) -> Duration {
    Duration::from_secs(deadline_secs(shutdown_timeout))
}
