//! Zero-copy blob responses on plain-HTTP connections.
//!
//! actix-web copies every body chunk into its write buffer, so a streamed
//! blob crosses user space twice (file → buffer → socket). For a local blob
//! file the kernel can move the pages itself (`sendfile`), but actix has no
//! hook for it, so each plain-HTTP connection is wrapped in a
//! [`SendfileConn`]:
//!
//! 1. The handler answers with a [`SendfileBody`]; its length travels as a
//!    `Content-Length` header with chunking off, so actix counts no bytes.
//! 2. On its first poll the body queues the file on its connection and waits.
//! 3. actix calls `poll_flush` on the connection only after its write buffer
//!    (holding this response's head) is fully written: that is where the
//!    wrapper starts the transfer, so the file follows the head exactly.
//! 4. Until the transfer ends the wrapper accepts no other write, and the body
//!    ends only after it, so nothing actix writes later can overtake the file.
//!
//! The transfer runs on a thread of its own with a duplicate of the socket:
//! a file not in the page cache blocks on disk, and actix workers must not.
//!
//! A blob streamed from an object store takes the same path without the
//! thread ([`stream_body`]): the connection writes the stream's buffers to
//! the socket itself, at its flushes, so they are not copied into actix's
//! write buffer first (one copy of every byte fewer, and the bytes are still
//! in the cache the client read them into).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use actix_rt::net::TcpStream;
use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::Extensions;
use actix_web::HttpRequest;
use bytes::{Buf, Bytes};
use futures::stream::BoxStream;
use futures::StreamExt;
use metrics::Counter;
use rustix::io::Errno;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::registry::LocalFile;

/// How long a waiting transfer sleeps before checking for cancellation.
const WAIT_SLICE: rustix::event::Timespec = rustix::event::Timespec { tv_sec: 1, tv_nsec: 0 };
/// Bytes per sendfile call (Linux moves at most about 2 GiB per call).
const MAX_CALL: u64 = 1 << 30;

static ACTIVE_TRANSFERS: AtomicUsize = AtomicUsize::new(0);

/// What a connection is doing with a file, shared by the connection, the
/// response body and the transfer thread.
#[derive(Default)]
struct Shared {
    job: Job,
    /// The connection's task, woken when a transfer ends.
    waker: Option<Waker>,
    /// A transfer was cut short: the response is incomplete, so the
    /// connection must not carry anything more.
    broken: bool,
}

#[derive(Default)]
enum Job {
    #[default]
    Idle,
    /// Queued by the body; starts at the connection's next flush. The
    /// counter takes the bytes as the kernel sends them.
    Queued(Payload),
    /// Sending on its thread; the flag asks it to stop.
    Running(Arc<AtomicBool>),
    /// A stream being written by the connection, at each flush.
    Streaming(Streaming),
    /// Ended; the body reports the result and resets to idle.
    Done(io::Result<()>),
}

type SharedRef = Arc<Mutex<Shared>>;

/// A body's bytes, as the connection sends them.
enum Payload {
    File(LocalFile, Counter),
    Stream(Streaming),
}

/// Bytes a response body reads from elsewhere (an object store).
pub type DirectStream = BoxStream<'static, Result<Bytes, io::Error>>;

/// A stream being written: the chunk in hand, and the bytes the response
/// still owes (its `Content-Length`).
struct Streaming {
    stream: DirectStream,
    current: Bytes,
    left: u64,
    bytes: Counter,
}

fn lock(shared: &SharedRef) -> MutexGuard<'_, Shared> {
    // A poisoned lock only means a transfer thread panicked; the state is
    // still consistent enough to fail the connection.
    shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn broken() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "a file transfer on this connection was cut short")
}

/// A plain TCP connection that can send a queued file with `sendfile`.
pub struct SendfileConn {
    tcp: TcpStream,
    shared: SharedRef,
    /// A client that takes no byte for this long loses its transfer.
    idle_timeout: Duration,
    /// Transfers running at once in the process (`server.max_transfers`),
    /// each holding a thread; past this, blobs are streamed through actix
    /// as on TLS connections.
    max_transfers: usize,
    /// A write being sent in a rewritten form ([`super::malformed`]).
    rewritten: Option<Rewritten>,
}

/// Bytes sent instead of a write, and how much of the original they stand for.
struct Rewritten {
    bytes: Vec<u8>,
    sent: usize,
    stands_for: usize,
}

/// The connection's side of the handshake, kept in each request's
/// connection data.
#[derive(Clone)]
struct SendfileHandle {
    shared: SharedRef,
    max_transfers: usize,
}

impl SendfileConn {
    pub fn new(tcp: TcpStream, idle_timeout: Duration, max_transfers: usize) -> Self {
        Self { tcp, shared: SharedRef::default(), idle_timeout, max_transfers, rewritten: None }
    }

    /// `on_connect_ext` hook: makes the connection reachable from handlers.
    pub fn on_connect(conn: &SendfileConn, extensions: &mut Extensions) {
        extensions.insert(SendfileHandle { shared: conn.shared.clone(), max_transfers: conn.max_transfers });
    }

    fn cancel_transfer(&self, shared: &mut Shared) {
        if let Job::Running(cancel) = &shared.job {
            cancel.store(true, Ordering::Relaxed);
            shared.broken = true;
            // The thread holds a duplicate of the socket: shutting it down
            // ends its sendfile or wait at once.
            let _ = rustix::net::shutdown(&self.tcp, rustix::net::Shutdown::Both);
        }
    }
}

impl Drop for SendfileConn {
    fn drop(&mut self) {
        let shared = self.shared.clone();
        self.cancel_transfer(&mut lock(&shared));
    }
}

impl AsyncRead for SendfileConn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendfileConn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        {
            let mut shared = lock(&this.shared);
            if shared.broken {
                return Poll::Ready(Err(broken()));
            }
            // Bytes written while a file is queued belong before it (the
            // head); while it is sending, nothing may interleave.
            if matches!(shared.job, Job::Running(_) | Job::Streaming(_)) {
                shared.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
        }
        if this.rewritten.is_none() {
            if let Some(bytes) = super::malformed::rewrite_bare_400(buf) {
                this.rewritten = Some(Rewritten { bytes, sent: 0, stands_for: buf.len() });
            }
        }
        let Some(rewritten) = this.rewritten.as_mut() else { return Pin::new(&mut this.tcp).poll_write(cx, buf) };
        // Until the replacement is out, report nothing of the original
        // written: actix calls again with the same bytes.
        while rewritten.sent < rewritten.bytes.len() {
            match Pin::new(&mut this.tcp).poll_write(cx, &rewritten.bytes[rewritten.sent..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(0)),
                Poll::Ready(Ok(n)) => rewritten.sent += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let stands_for = rewritten.stands_for.min(buf.len());
        this.rewritten = None;
        Poll::Ready(Ok(stands_for))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        {
            let mut shared = lock(&this.shared);
            if shared.broken {
                return Poll::Ready(Err(broken()));
            }
            match std::mem::take(&mut shared.job) {
                // actix flushes only after writing all it had: the head is out.
                Job::Queued(Payload::Stream(mut streaming)) | Job::Streaming(mut streaming) => {
                    match streaming.write_to(&mut this.tcp, cx) {
                        Poll::Pending => {
                            shared.job = Job::Streaming(streaming);
                            return Poll::Pending;
                        }
                        Poll::Ready(result) => {
                            if let Err(e) = &result {
                                tracing::debug!(error = %e, "streamed response ended early");
                                // Fewer bytes than promised went out.
                                shared.broken = true;
                            }
                            shared.job = Job::Done(result);
                            // The body is polled next, and reports the end.
                            cx.waker().wake_by_ref();
                        }
                    }
                }
                Job::Queued(Payload::File(file, bytes)) => {
                    match start_transfer(&this.tcp, file, bytes, this.shared.clone(), this.idle_timeout) {
                        Ok(cancel) => {
                            shared.job = Job::Running(cancel);
                            shared.waker = Some(cx.waker().clone());
                            return Poll::Pending;
                        }
                        Err(e) => {
                            // The body reports it; wake the task so it is polled.
                            shared.job = Job::Done(Err(e));
                            cx.waker().wake_by_ref();
                        }
                    }
                }
                Job::Running(cancel) => {
                    shared.job = Job::Running(cancel);
                    shared.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                other => shared.job = other,
            }
        }
        Pin::new(&mut this.tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let shared = this.shared.clone();
        this.cancel_transfer(&mut lock(&shared));
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}

/// A response body sent by the connection itself: a file with `sendfile`,
/// or a stream written from its own buffers.
pub struct SendfileBody {
    shared: SharedRef,
    payload: Option<Payload>,
    finished: bool,
}

/// The zero-copy body for `file` when this request's connection can send it,
/// or the file back when it cannot (TLS, or too many transfers running).
/// The response must carry the length with `no_chunking(file.len)`.
pub fn body(req: &HttpRequest, file: LocalFile) -> Result<SendfileBody, LocalFile> {
    match req.conn_data::<SendfileHandle>() {
        Some(handle) if ACTIVE_TRANSFERS.load(Ordering::Relaxed) < handle.max_transfers => {
            let bytes = super::measure::RouteSeries::of(req.match_pattern()).response_bytes(super::measure::Transfer::Sendfile);
            Ok(SendfileBody { shared: handle.shared.clone(), payload: Some(Payload::File(file, bytes)), finished: false })
        }
        _ => Err(file),
    }
}

/// The body for `stream`, of exactly `len` bytes, written by this request's
/// connection without a copy into actix's buffer; or the stream back when
/// the connection cannot (TLS, or `server.sendfile` off). The response must
/// carry the length with `no_chunking(len)`. Bytes past `len` are never
/// sent; a stream that ends or fails early ends the connection, so a client
/// sees a short body, never wrong bytes.
pub fn stream_body(req: &HttpRequest, stream: DirectStream, len: u64) -> Result<SendfileBody, DirectStream> {
    match req.conn_data::<SendfileHandle>() {
        Some(handle) => {
            // Counted with what actix streams: these are streamed bytes too.
            let bytes = super::measure::RouteSeries::of(req.match_pattern()).response_bytes(super::measure::Transfer::Stream);
            let streaming = Streaming { stream, current: Bytes::new(), left: len, bytes };
            Ok(SendfileBody { shared: handle.shared.clone(), payload: Some(Payload::Stream(streaming)), finished: false })
        }
        None => Err(stream),
    }
}

impl Streaming {
    /// Writes chunks as the stream yields them until the response's bytes
    /// are all out (ready), the socket or the stream waits (pending), or
    /// either fails.
    fn write_to(&mut self, tcp: &mut TcpStream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.current.has_remaining() {
                match Pin::new(&mut *tcp).poll_write(cx, &self.current) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => {
                        self.current.advance(n);
                        self.bytes.increment(n as u64);
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
                continue;
            }
            if self.left == 0 {
                return Poll::Ready(Ok(()));
            }
            match self.stream.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(mut chunk))) => {
                    chunk.truncate(usize::try_from(self.left).unwrap_or(usize::MAX));
                    self.left -= chunk.len() as u64;
                    self.current = chunk;
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(None) => {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the body ended before its length")))
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl MessageBody for SendfileBody {
    type Error = io::Error;

    /// Unknown to actix on purpose: the length is in the `Content-Length`
    /// header, and actix must not count bytes it never sees.
    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        let mut shared = lock(&this.shared);
        if let Some(payload) = this.payload.take() {
            let empty = match &payload {
                Payload::File(file, _) => file.len == 0,
                Payload::Stream(streaming) => streaming.left == 0,
            };
            if empty {
                this.finished = true;
                return Poll::Ready(None);
            }
            if !matches!(shared.job, Job::Idle) {
                this.finished = true;
                return Poll::Ready(Some(Err(io::Error::other("connection already has a file transfer"))));
            }
            shared.job = Job::Queued(payload);
            shared.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        match std::mem::take(&mut shared.job) {
            Job::Done(result) => {
                this.finished = true;
                Poll::Ready(result.err().map(Err))
            }
            other => {
                shared.job = other;
                shared.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for SendfileBody {
    /// A body dropped before its transfer ended leaves a truncated response:
    /// the connection is marked broken so actix closes it.
    fn drop(&mut self) {
        if self.finished || self.payload.is_some() {
            return;
        }
        let mut shared = lock(&self.shared);
        match std::mem::take(&mut shared.job) {
            Job::Running(cancel) => {
                cancel.store(true, Ordering::Relaxed);
                shared.job = Job::Running(cancel);
                shared.broken = true;
            }
            Job::Queued(..) | Job::Streaming(_) | Job::Done(Err(_)) => shared.broken = true,
            Job::Idle | Job::Done(Ok(())) => {}
        }
    }
}

fn start_transfer(
    tcp: &TcpStream,
    file: LocalFile,
    bytes: Counter,
    shared: SharedRef,
    idle_timeout: Duration,
) -> io::Result<Arc<AtomicBool>> {
    let socket = tcp.as_fd().try_clone_to_owned()?;
    let cancel = Arc::new(AtomicBool::new(false));
    let stop = cancel.clone();
    ACTIVE_TRANSFERS.fetch_add(1, Ordering::Relaxed);
    let spawned = std::thread::Builder::new().name("wharf-sendfile".into()).spawn(move || {
        let result = send_file(&socket, &file, &bytes, &stop, idle_timeout);
        drop(socket);
        ACTIVE_TRANSFERS.fetch_sub(1, Ordering::Relaxed);
        if let Err(e) = &result {
            tracing::debug!(blob = %file.name, error = %e, "file transfer ended early");
        }
        let waker = {
            let mut shared = lock(&shared);
            if matches!(shared.job, Job::Running(_)) {
                shared.job = Job::Done(result);
            }
            shared.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    });
    if let Err(e) = spawned {
        ACTIVE_TRANSFERS.fetch_sub(1, Ordering::Relaxed);
        return Err(e);
    }
    Ok(cancel)
}

/// Sends the file's range on the (non-blocking) socket, waiting for room
/// with poll(2) in slices so a cancellation is seen within one.
fn send_file(socket: &OwnedFd, file: &LocalFile, bytes: &Counter, cancel: &AtomicBool, idle_timeout: Duration) -> io::Result<()> {
    let mut offset = file.offset;
    let end = file.offset + file.len;
    let mut last_progress = Instant::now();
    while offset < end {
        if cancel.load(Ordering::Relaxed) {
            return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "connection closed"));
        }
        let count = (end - offset).min(MAX_CALL) as usize;
        match rustix::fs::sendfile(socket, &file.file, Some(&mut offset), count) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "blob file is shorter than recorded")),
            Ok(sent) => {
                bytes.increment(sent as u64);
                last_progress = Instant::now();
            }
            Err(Errno::AGAIN) => {
                if last_progress.elapsed() >= idle_timeout {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "client took no data"));
                }
                let mut fds = [rustix::event::PollFd::new(socket, rustix::event::PollFlags::OUT)];
                match rustix::event::poll(&mut fds, Some(&WAIT_SLICE)) {
                    Ok(_) | Err(Errno::INTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
