//! Wharf: an OCI Distribution registry with version governance.
//!
//! Layers, calls going down only:
//! `api` (HTTP) and `server` (transport) → `registry` (use-cases) → `db`
//! (metadata) and `storage` (bytes). `domain` holds the validated types
//! every layer shares. This file is the composition root: it opens the
//! parts and hands the routes to `server`.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod console;
pub mod datadir;
pub mod db;
pub mod diff;
pub mod domain;
pub mod events;
pub mod governance;
pub mod jobs;
pub mod observability;
pub mod registry;
pub mod server;
pub mod storage;
pub mod telemetry;

use actix_web::web;

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
    #[error("{0}")]
    Server(#[from] server::ServerError),
    #[error("recording the governance policy: {0}")]
    Policy(String),
    #[error("access control: {0}")]
    Auth(#[from] auth::AuthError),
    #[error("{0}")]
    Lock(#[from] datadir::DataDirError),
    #[error("storage check: {0}")]
    StorageCheck(storage::StorageError),
}

/// Opens the database and blob store the configuration names.
pub fn open_registry(config: &Config) -> Result<Registry, StartError> {
    datadir::create(&config.data_dir).map_err(|e| StartError::DataDir(config.data_dir.display().to_string(), e))?;
    let db = match config.postgres_url() {
        Some(url) => Db::open_postgres(url, config.database.read_connections)?,
        None => Db::open(&config.database_path(), config.database.read_connections)?,
    };
    let blobs = BlobStore::from_config(config)?;
    let maintenance = maintenance(config);
    Ok(Registry::new(db, blobs, config.registry.clone(), governance::Policy::new(&config.governance), maintenance)
        .with_diff(config.diff.clone()))
}

/// Like [`open_registry`] for local maintenance commands: the database must
/// already exist, and neither it nor the data directory is created.
pub fn open_existing_registry(config: &Config) -> Result<Registry, StartError> {
    let db = match config.postgres_url() {
        Some(url) => Db::open_postgres(url, config.database.read_connections)?,
        None => Db::open_existing(&config.database_path(), config.database.read_connections)?,
    };
    let blobs = BlobStore::from_config(config)?;
    let maintenance = maintenance(config);
    Ok(Registry::new(db, blobs, config.registry.clone(), governance::Policy::new(&config.governance), maintenance)
        .with_diff(config.diff.clone()))
}

/// Cleanup and backup settings the use-cases and schedules read.
fn maintenance(config: &Config) -> registry::Maintenance {
    registry::Maintenance {
        retention: config.retention.clone(),
        gc: config.gc.clone(),
        backup: config.backup.clone(),
        backup_s3: config.storage.s3.clone(),
        events: config.events.clone(),
        node_id: config.node.id.clone(),
    }
}

/// Sets up access control over the registry's database.
pub fn open_auth(config: &Config, registry: &Registry) -> Result<auth::Auth, StartError> {
    Ok(auth::Auth::new(registry.db().clone(), config)?)
}

/// Mounts every route with its shared state; used by `serve` and tests.
pub fn configure_app(registry: Registry, auth: auth::Auth) -> impl FnOnce(&mut web::ServiceConfig) + Clone + Send + 'static {
    move |cfg| {
        cfg.app_data(web::Data::new(registry))
            .app_data(web::Data::new(auth))
            .app_data(
                web::QueryConfig::default().error_handler(|e, _| ApiError::bad_request(OciCode::Unsupported, format!("query: {e}")).into()),
            )
            .app_data(
                web::PathConfig::default().error_handler(|e, _| ApiError::bad_request(OciCode::NameInvalid, format!("path: {e}")).into()),
            )
            .configure(console::configure)
            .configure(api::configure);
    }
}

/// Runs Wharf until SIGTERM/SIGINT, then lets in-flight requests finish
/// for up to `server.shutdown_timeout` (see [`server::lifecycle`]).
///
/// Start-up order: the configuration was validated by loading it; then this
/// server takes the data directory's lock and binds its address, and only
/// then opens (and migrates) the database, records the policy and creates
/// the admin account. A second server on the same directory, or one that
/// cannot listen, so writes nothing but the lock file.
pub async fn serve(config: Config) -> Result<(), StartError> {
    config.validate_for_serving()?;
    datadir::create(&config.data_dir).map_err(|e| StartError::DataDir(config.data_dir.display().to_string(), e))?;
    let _lock = datadir::lock(&config.data_dir)?;
    let listening = server::Listening::open(&config)?;
    let metrics_listener = match config.metrics.listen.filter(|_| config.metrics.enabled) {
        Some(addr) => Some(server::lifecycle::bind(addr).map_err(|e| server::ServerError::Bind(addr, e))?),
        None => None,
    };
    let metrics = observability::Metrics::install(&config);
    if config.metrics.repository_labels {
        server::measure::label_repositories(config.metrics.max_repositories);
    }
    server::set_malformed_request_body(api::oci_error::malformed_request_body());
    tighten_install(&config);

    let registry = open_registry(&config)?;
    // A wrong endpoint, bucket or credentials fail here, not on every push.
    registry.blobs.check().await.map_err(StartError::StorageCheck)?;
    let policy = serde_json::to_value(&config.governance).unwrap_or_default();
    match registry.record_policy(policy).await.map_err(|e| StartError::Policy(e.to_string()))? {
        registry::audit::PolicyRecord::First => tracing::info!("governance policy recorded in the audit log"),
        registry::audit::PolicyRecord::Changed => {
            tracing::info!("governance policy changed since the last start; recorded in the audit log")
        }
        registry::audit::PolicyRecord::Unchanged => {}
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
        tls = listening.is_tls(),
        auth = auth.enabled(),
        data_dir = %config.data_dir.display(),
        backend = ?config.storage.backend,
        "wharf starting"
    );
    let jobs = jobs::start(&registry);
    observability::start(&config, &registry, &metrics, jobs.stopper());
    let metrics_server = match metrics_listener {
        Some(listener) => {
            let server = observability::metrics_server(listener, metrics.clone()).map_err(server::ServerError::Run)?;
            let handle = server.handle();
            actix_web::rt::spawn(server);
            Some(handle)
        }
        None => None,
    };
    let health = observability::Health::new(registry.clone(), config.health.clone());
    let probes = observability::routes(metrics, health, config.metrics.listen.is_none());
    let app = configure_app(registry.clone(), auth.clone());
    let routes = move |cfg: &mut web::ServiceConfig| {
        probes.clone()(cfg);
        app.clone()(cfg);
    };
    let result = server::run(listening, &config.server, routes, jobs.stopper()).await;
    if let Some(handle) = metrics_server {
        handle.stop(true).await;
    }
    // The schedules get what the requests left of the deadline.
    jobs.shut_down(server::lifecycle::deadline_left(server::lifecycle::deadline(config.server.shutdown_timeout))).await;
    result?;
    let after_signal_ms = server::lifecycle::since_signal().map(|d| d.as_millis() as u64);
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
