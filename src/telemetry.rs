//! Logging setup: tracing to stderr, text or JSON, written by a background
//! thread so an HTTP worker never waits on the terminal or a pipe.

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

/// Sets up logging; keep the guard until the process is done logging:
/// dropping it writes out the lines still queued.
pub fn init(config: &LogConfig) -> WorkerGuard {
    let filter = EnvFilter::try_new(&config.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // Not lossy: when the queue is full a worker waits rather than drop the
    // line (one line per request is kept).
    let (writer, guard) = NonBlockingBuilder::default().lossy(false).finish(std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(writer);
    // An operator chasing a protocol problem names actix_http in log.level
    // and gets its connection errors back.
    let quiet = (!config.level.contains("actix_http")).then_some(QuietClientStreamErrors);
    let result =
        if config.format == "json" { builder.json().finish().with(quiet).try_init() } else { builder.finish().with(quiet).try_init() };
    if let Err(e) = result {
        eprintln!("logging already initialised: {e}");
    }
    guard
}

/// Drops actix-http's `ERROR stream error: ...` line. It is logged when a
/// connection ends on a client-side fault: bytes that are not HTTP (docker
/// probes a plain-HTTP registry with a TLS ClientHello before every login,
/// push and pull: "request parse error: invalid Header provided"), a client
/// too slow to send its request head, or a peer gone mid-request. The client
/// already got its 400/408 or is gone, and the server is fine, so at ERROR it
/// only buries real faults. actix's other dispatcher errors (a failing
/// response body stream, an upgrade handler error) are server faults and
/// still log.
struct QuietClientStreamErrors;

const DISPATCHER: &str = "actix_http::h1::dispatcher";

impl<S: Subscriber> Layer<S> for QuietClientStreamErrors {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        if event.metadata().target() != DISPATCHER {
            return true;
        }
        let mut message = MessageStart::default();
        event.record(&mut message);
        !message.is_stream_error
    }
}

#[derive(Default)]
struct MessageStart {
    is_stream_error: bool,
}

impl Visit for MessageStart {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.is_stream_error = format!("{value:?}").starts_with("stream error: ");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Default)]
    struct Message(String);

    impl Visit for Message {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.0 = format!("{value:?}");
            }
        }
    }

    /// Collects the messages of the events that got through.
    struct Seen(Arc<Mutex<Vec<String>>>);

    impl<S: Subscriber> Layer<S> for Seen {
        fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
            let mut message = Message::default();
            event.record(&mut message);
            self.0.lock().unwrap().push(message.0);
        }
    }

    #[test]
    fn only_actix_client_stream_errors_are_dropped() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(QuietClientStreamErrors).with(Seen(seen.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "actix_http::h1::dispatcher", "stream error: request parse error: invalid Header provided");
            tracing::error!(target: "actix_http::h1::dispatcher", "Response payload stream error: storage gone");
            tracing::error!(target: "wharf", "stream error: ours");
        });
        assert_eq!(*seen.lock().unwrap(), vec!["Response payload stream error: storage gone", "stream error: ours"]);
    }
}
