//! The transport: the listening socket, TLS, the HTTP workers, zero-copy
//! blob sends and the graceful shutdown. It carries requests to the routes
//! `lib.rs` composes and knows nothing of what they mean.
//!
//! Layering: `server` is at the top, beside `api` and `cli`. It uses
//! `config` (its settings) and `registry` only for the re-exported
//! [`LocalFile`](crate::registry::LocalFile) that sendfile sends; never `db`
//! or `storage`. Between the two edges the direction is `api` → `server`: a
//! blob handler asks [`sendfile::body`] for the zero-copy body, while
//! `server` never names `api` (the routes come in as a closure from
//! `lib.rs`, the composition root).

mod client;
pub mod lifecycle;
mod malformed;
pub mod measure;
pub mod sendfile;
mod tls;

pub use client::client_addr;
pub use malformed::set_body as set_malformed_request_body;

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{web, App, HttpServer};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ServerConfig};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("server: {0}")]
    Run(std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
}

/// A bound listening socket, with the HTTPS set-up when `server.tls` asks
/// for it. `serve` takes it before it opens the database, so a server that
/// cannot listen (or has a bad certificate) writes nothing.
pub struct Listening {
    listener: TcpListener,
    addr: SocketAddr,
    tls: Option<rustls::ServerConfig>,
}

impl Listening {
    pub fn open(config: &Config) -> Result<Self, ServerError> {
        let tls =
            config.server.tls.cert_file.as_ref().zip(config.server.tls.key_file.as_ref()).map(|(c, k)| tls::load(c, k)).transpose()?;
        let listener = lifecycle::bind(config.listen).map_err(|e| ServerError::Bind(config.listen, e))?;
        Ok(Self { listener, addr: config.listen, tls })
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
}

/// Runs the HTTP server on `listening` with `routes` until SIGTERM/SIGINT,
/// then lets in-flight requests finish for up to `server.shutdown_timeout`
/// (see [`lifecycle`]); `on_stop` is cancelled when the signal comes.
/// Returns once the server has stopped.
pub async fn run<R>(listening: Listening, config: &ServerConfig, routes: R, on_stop: CancellationToken) -> Result<(), ServerError>
where
    R: FnOnce(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    let signals = lifecycle::Signals::install().map_err(ServerError::Run)?;
    let workers = if config.workers == 0 { std::thread::available_parallelism().map_or(2, |n| n.get()) } else { config.workers };
    let deadline_secs = lifecycle::deadline_secs(config.shutdown_timeout);
    let proxies = web::Data::new(client::Proxies(config.trusted_proxies.clone()));
    let app = move || {
        App::new()
            .app_data(proxies.clone())
            .wrap(actix_web::middleware::from_fn(log_request))
            .wrap(DefaultHeaders::new().add(("Docker-Distribution-API-Version", "registry/2.0")))
            .configure(routes.clone())
    };
    let Listening { listener, addr, tls } = listening;
    let bind_error = |e| ServerError::Bind(addr, e);
    let server = match tls {
        Some(tls) => {
            let mut http = HttpServer::new(app).workers(workers).shutdown_timeout(deadline_secs).disable_signals();
            if config.blocking_threads > 0 {
                http = http.worker_max_blocking_threads(config.blocking_threads);
            }
            http.listen_rustls_0_23(listener, tls).map_err(bind_error)?.run()
        }
        None => plain_http_server(app, listener, workers, deadline_secs, config).map_err(bind_error)?,
    };
    let deadline = lifecycle::deadline(config.shutdown_timeout);
    let stop_on_signal = actix_web::rt::spawn(signals.stop_server_on_signal(server.handle(), on_stop, deadline));
    let result = server.await;
    stop_on_signal.abort();
    result.map_err(ServerError::Run)
}

/// One log line per request: method, path, status, duration, and the HTTP
/// series ([`measure`]). The request counts as in flight until its response
/// body is sent (for shutdown).
async fn log_request(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let in_flight = lifecycle::InFlight::begin();
    let started = Instant::now();
    let method = req.method().clone();
    // A cheap clone (shared bytes), for the log line.
    let uri = req.uri().clone();
    // The client's address (behind a trusted proxy, the one it forwards).
    let peer = client::resolve(&req);
    measure::count_request_body(&mut req);
    let response = next.call(req).await;
    let elapsed = started.elapsed();
    // Whole microseconds, so the field reads 0.84 rather than 0.8403660000000001.
    let elapsed_ms = elapsed.as_micros() as f64 / 1000.0;
    let path = uri.path();
    let peer = client::Peer(peer);
    let (status, route) = match &response {
        Ok(r) => {
            tracing::info!(%method, %path, %peer, status = r.status().as_u16(), elapsed_ms, "request");
            if path.starts_with("/v2/") {
                if let Some(name) = r.request().match_info().get("name") {
                    measure::count_repository(name);
                }
            }
            // After routing, actix reads the pattern off the match it
            // recorded instead of matching the path again.
            (r.status(), r.request().match_pattern())
        }
        Err(e) => {
            tracing::warn!(%method, %path, %peer, error = %e, elapsed_ms, "request failed");
            (e.as_response_error().status_code(), None)
        }
    };
    let series = measure::RouteSeries::of(route);
    series.answered(&method, status, elapsed);
    let bytes = series.response_bytes(measure::Transfer::Stream);
    response.map(|r| r.map_body(|_, body| lifecycle::Tracked::new(measure::Counted::new(body.boxed(), bytes), in_flight)))
}

/// The plain-HTTP server: actix-web's own listener, except that each
/// connection is a [`sendfile::SendfileConn`], so blob files go out with
/// sendfile instead of through actix's write buffer (unless
/// `server.sendfile` is off: then handlers never see the connection).
fn plain_http_server<F, I, S, B>(
    app: F,
    listener: TcpListener,
    workers: usize,
    shutdown_timeout: u64,
    server: &ServerConfig,
) -> std::io::Result<actix_server::Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: actix_service::IntoServiceFactory<S, actix_http::Request>,
    S: actix_service::ServiceFactory<actix_http::Request, Config = actix_web::dev::AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<actix_http::Response<B>> + 'static,
    <S::Service as actix_service::Service<actix_http::Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    use actix_service::{fn_service, map_config, ServiceFactoryExt};
    use sendfile::SendfileConn;
    let (sendfile, send_timeout, max_transfers) = (server.sendfile, server.send_timeout, server.max_transfers);
    let listen = listener.local_addr()?;
    let mut builder = actix_server::Server::build();
    if server.blocking_threads > 0 {
        builder = builder.worker_max_blocking_threads(server.blocking_threads);
    }
    let shutdown = builder.graceful_shutdown_signal();
    Ok(builder
        .workers(workers)
        .shutdown_timeout(shutdown_timeout)
        .disable_signals()
        .listen("wharf", listener, move || {
            let factory = app().into_factory().map_err(|e| e.into().error_response());
            // Timeouts as actix-web's HttpServer sets them; the disconnect
            // grace lets a client that is still sending a refused body read
            // the error instead of a reset.
            let shutdown = shutdown.clone();
            let http = actix_http::HttpService::build()
                // As actix-web's HttpServer does: idle keep-alive connections
                // close as soon as a graceful shutdown starts.
                .graceful_shutdown_signal(move || {
                    let shutdown = shutdown.clone();
                    async move { shutdown.notified().await }
                })
                .client_request_timeout(Duration::from_secs(5))
                .client_disconnect_timeout(Duration::from_secs(1))
                .local_addr(listen)
                .on_connect_ext(move |conn: &SendfileConn, extensions: &mut actix_web::dev::Extensions| {
                    if sendfile {
                        SendfileConn::on_connect(conn, extensions)
                    }
                })
                .h1(map_config(factory, |_| actix_web::dev::AppConfig::default()));
            fn_service(move |tcp: actix_rt::net::TcpStream| async move {
                let peer = tcp.peer_addr().ok();
                Ok::<_, actix_http::error::DispatchError>((SendfileConn::new(tcp, send_timeout, max_transfers), peer))
            })
            .and_then(http)
        })?
        .run())
}
