//! Wharf: an OCI Distribution registry with version governance.
//!
//! Layers, calls going down only:
//! `api` (HTTP) → `registry` (use-cases) → `db` (metadata) and `storage` (bytes).
//! `domain` holds the validated types every layer shares.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod datadir;
pub mod db;
pub mod diff;
pub mod domain;
pub mod governance;
pub mod jobs;
pub mod lifecycle;
pub mod registry;
pub mod storage;
pub mod telemetry;

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{web, App, HttpServer};

use crate::api::{ApiError, OciCode};
use crate::config::Config;
use crate::db::Db;
use crate::registry::Registry;
use crate::storage::BlobStore;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] config::ConfigError),
    #[error("{0}")]
    Db(#[from] db::DbError),
    #[error("{0}")]
    Storage(#[from] storage::StorageError),
    #[error("data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("server: {0}")]
    Server(std::io::Error),
    #[error("recording the governance policy: {0}")]
    Policy(String),
    #[error("access control: {0}")]
    Auth(#[from] auth::AuthError),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Lock(#[from] datadir::DataDirError),
    #[error("storage check: {0}")]
    StorageCheck(storage::StorageError),
}

/// Opens the database and blob store the configuration names.
pub fn open_registry(config: &Config) -> Result<Registry, StartError> {
    datadir::create(&config.data_dir).map_err(|e| StartError::DataDir(config.data_dir.display().to_string(), e))?;
    let db = Db::open(&config.database_path(), config.database.read_connections)?;
    let blobs = BlobStore::from_config(config)?;
    let maintenance = registry::Maintenance { retention: config.retention.clone(), gc: config.gc.clone() };
    Ok(Registry::new(db, blobs, config.registry.clone(), governance::Policy::new(&config.governance), maintenance))
}

/// Like [`open_registry`] for local maintenance commands: the database must
/// already exist, and neither it nor the data directory is created.
pub fn open_existing_registry(config: &Config) -> Result<Registry, StartError> {
    let db = Db::open_existing(&config.database_path(), config.database.read_connections)?;
    let blobs = BlobStore::from_config(config)?;
    let maintenance = registry::Maintenance { retention: config.retention.clone(), gc: config.gc.clone() };
    Ok(Registry::new(db, blobs, config.registry.clone(), governance::Policy::new(&config.governance), maintenance))
}

/// Sets up access control over the registry's database.
pub fn open_auth(config: &Config, registry: &Registry) -> Result<auth::Auth, StartError> {
    Ok(auth::Auth::new(registry.db().clone(), config)?)
}

/// Mounts every route with its shared state; used by `serve` and tests.
pub fn configure_app(registry: Registry, auth: auth::Auth) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(registry))
            .app_data(web::Data::new(auth))
            .app_data(
                web::QueryConfig::default().error_handler(|e, _| ApiError::bad_request(OciCode::Unsupported, format!("query: {e}")).into()),
            )
            .app_data(
                web::PathConfig::default().error_handler(|e, _| ApiError::bad_request(OciCode::NameInvalid, format!("path: {e}")).into()),
            )
            .configure(api::configure);
    }
}

/// One log line per request: method, path, status, duration. The request
/// counts as in flight until its response body is sent (for shutdown).
async fn log_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let in_flight = lifecycle::InFlight::begin();
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_owned();
    let peer = req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    let response = next.call(req).await;
    // Whole microseconds, so the field reads 0.84 rather than 0.8403660000000001.
    let elapsed_ms = started.elapsed().as_micros() as f64 / 1000.0;
    match &response {
        Ok(r) => tracing::info!(%method, %path, %peer, status = r.status().as_u16(), elapsed_ms, "request"),
        Err(e) => tracing::warn!(%method, %path, %peer, error = %e, elapsed_ms, "request failed"),
    }
    response.map(|r| r.map_body(|_, body| lifecycle::Tracked::new(body, in_flight)))
}

/// Runs the HTTP server until SIGTERM/SIGINT, then lets in-flight requests
/// finish for up to `server.shutdown_timeout` (see [`lifecycle`]).
///
/// Start-up order: the configuration was validated by loading it; then this
/// server takes the data directory's lock and binds its address, and only
/// then opens (and migrates) the database, records the policy and creates
/// the admin account. A second server on the same directory, or one that
/// cannot listen, so writes nothing but the lock file.
pub async fn serve(config: Config) -> Result<(), StartError> {
    datadir::create(&config.data_dir).map_err(|e| StartError::DataDir(config.data_dir.display().to_string(), e))?;
    let _lock = datadir::lock(&config.data_dir)?;
    let tls = config.server.tls.cert_file.as_ref().zip(config.server.tls.key_file.as_ref()).map(|(c, k)| tls_config(c, k)).transpose()?;
    let listener = lifecycle::bind(config.listen).map_err(|e| StartError::Bind(config.listen.to_string(), e))?;
    tighten_install(&config);

    let registry = open_registry(&config)?;
    // A wrong endpoint, bucket or credentials fail here, not on every push.
    registry.blobs.check().await.map_err(StartError::StorageCheck)?;
    let policy = serde_json::to_value(&config.governance).unwrap_or_default();
    match registry.record_policy(policy).await.map_err(|e| StartError::Policy(e.to_string()))? {
        governance::audit::PolicyRecord::First => tracing::info!("governance policy recorded in the audit log"),
        governance::audit::PolicyRecord::Changed => {
            tracing::info!("governance policy changed since the last start; recorded in the audit log")
        }
        governance::audit::PolicyRecord::Unchanged => {}
    }
    let auth = open_auth(&config, &registry)?;
    if auth.enabled() {
        if auth.bootstrap_admin(std::env::var("WHARF_ADMIN_PASSWORD").ok()).await?.is_some() {
            tracing::info!("created the admin account from WHARF_ADMIN_PASSWORD");
        } else if auth.account_count().await? == 0 {
            tracing::warn!(
                "auth is on but no account exists: set WHARF_ADMIN_PASSWORD or run `wharf user add admin --admin --data-dir DIR`"
            );
        }
    } else {
        tracing::warn!(
            "AUTH IS DISABLED: anyone who reaches this server can push, delete and promote. Set auth.enabled = true outside local use."
        );
    }
    tracing::info!(
        listen = %config.listen,
        tls = tls.is_some(),
        auth = auth.enabled(),
        data_dir = %config.data_dir.display(),
        backend = ?config.storage.backend,
        "wharf starting"
    );
    let signals = lifecycle::Signals::install().map_err(StartError::Server)?;
    let jobs = jobs::start(&registry);
    let workers =
        if config.server.workers == 0 { std::thread::available_parallelism().map_or(2, |n| n.get()) } else { config.server.workers };
    let deadline_secs = lifecycle::deadline_secs(config.server.shutdown_timeout);
    let app = move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(log_request))
            .wrap(DefaultHeaders::new().add(("Docker-Distribution-API-Version", "registry/2.0")))
            .configure(configure_app(registry.clone(), auth.clone()))
    };
    let bind_error = |e| StartError::Bind(config.listen.to_string(), e);
    let server = match tls {
        Some(tls) => HttpServer::new(app)
            .workers(workers)
            .shutdown_timeout(deadline_secs)
            .disable_signals()
            .listen_rustls_0_23(listener, tls)
            .map_err(bind_error)?
            .run(),
        None => plain_http_server(app, listener, workers, deadline_secs, &config.server).map_err(bind_error)?,
    };
    let deadline = std::time::Duration::from_secs(deadline_secs);
    let stop_on_signal = actix_web::rt::spawn(signals.stop_server_on_signal(server.handle(), jobs.stopper(), deadline));
    let result = server.await;
    // The schedules get what the requests left of the deadline.
    jobs.shut_down(lifecycle::deadline_left(deadline)).await;
    stop_on_signal.abort();
    result.map_err(StartError::Server)?;
    let after_signal_ms = lifecycle::since_signal().map(|d| d.as_millis() as u64);
    tracing::info!(after_signal_ms, "wharf stopped");
    Ok(())
}

/// Takes group and other permissions off the data directory and the
/// secrets in it (installs from before they were created private), naming
/// each change in one log line.
fn tighten_install(config: &Config) {
    let mut paths = vec![config.data_dir.clone(), config.data_dir.join(datadir::LOCK_FILE), config.token_key_path()];
    paths.extend(db::files(&config.database_path()));
    let (changed, failed) = datadir::tighten(&paths);
    if !changed.is_empty() {
        let list = changed.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        tracing::warn!("tightened permissions of an existing install (group and others had access): {list}");
    }
    for (path, e) in failed {
        tracing::warn!(path = %path.display(), error = %e, "could not make private; other users may read it");
    }
}

/// The plain-HTTP server: actix-web's own listener, except that each
/// connection is a [`api::sendfile::SendfileConn`], so blob files go out
/// with sendfile instead of through actix's write buffer (unless
/// `server.sendfile` is off: then handlers never see the connection).
fn plain_http_server<F, I, S, B>(
    app: F,
    listener: std::net::TcpListener,
    workers: usize,
    shutdown_timeout: u64,
    server: &config::ServerConfig,
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
    use api::sendfile::SendfileConn;
    let (sendfile, send_timeout) = (server.sendfile, server.send_timeout);
    let listen = listener.local_addr()?;
    let builder = actix_server::Server::build();
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
                .client_request_timeout(std::time::Duration::from_secs(5))
                .client_disconnect_timeout(std::time::Duration::from_secs(1))
                .local_addr(listen)
                .on_connect_ext(move |conn: &SendfileConn, extensions: &mut actix_web::dev::Extensions| {
                    if sendfile {
                        SendfileConn::on_connect(conn, extensions)
                    }
                })
                .h1(map_config(factory, |_| actix_web::dev::AppConfig::default()));
            fn_service(move |tcp: actix_rt::net::TcpStream| async move {
                let peer = tcp.peer_addr().ok();
                Ok::<_, actix_http::error::DispatchError>((SendfileConn::new(tcp, send_timeout), peer))
            })
            .and_then(http)
        })?
        .run())
}

/// Loads the PEM certificate chain and private key for HTTPS.
fn tls_config(cert_path: &std::path::Path, key_path: &std::path::Path) -> Result<rustls::ServerConfig, StartError> {
    let open = |p: &std::path::Path| {
        std::fs::File::open(p).map(std::io::BufReader::new).map_err(|e| StartError::Tls(format!("{}: {e}", p.display())))
    };
    let certs = rustls_pemfile::certs(&mut open(cert_path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StartError::Tls(format!("{}: {e}", cert_path.display())))?;
    if certs.is_empty() {
        return Err(StartError::Tls(format!("{}: no certificate found", cert_path.display())));
    }
    let key = rustls_pemfile::private_key(&mut open(key_path)?)
        .map_err(|e| StartError::Tls(format!("{}: {e}", key_path.display())))?
        .ok_or_else(|| StartError::Tls(format!("{}: no private key found", key_path.display())))?;
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| StartError::Tls(e.to_string()))
}
