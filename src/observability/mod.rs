//! Operating Wharf: Prometheus metrics at `/metrics`, the `/livez` and
//! `/readyz` probes, and the drain switch.
//!
//! Every layer records its own series through the `metrics` facade (HTTP in
//! `server`, storage and database in their modules, registry work and
//! governance in `registry`); this module installs the Prometheus recorder
//! that collects them, names and describes every series ([`series`]),
//! renders them for a scrape, and keeps the values that need a database
//! query fresh in the background ([`refresh`]): a scrape reads memory only.
//!
//! Layering: beside `jobs`. It reads `db` and `storage` directly, but only to
//! probe them (readiness) and to count (gauges); it serves no client data.

pub mod health;
mod refresh;
pub mod series;

use actix_web::{web, HttpResponse};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::registry::Registry;

pub use health::Health;

/// The installed recorder's handle; `None` when metrics are off.
#[derive(Clone)]
pub struct Metrics(Option<PrometheusHandle>);

impl Metrics {
    /// Installs the process-wide Prometheus recorder (once; later calls in
    /// the same process reuse the first) and records `wharf_build_info`.
    pub fn install(config: &Config) -> Self {
        if !config.metrics.enabled {
            return Self(None);
        }
        Self(series::install(&config.metrics))
    }

    pub fn render(&self) -> Option<String> {
        self.0.as_ref().map(PrometheusHandle::render)
    }

    /// Drops histogram samples already folded into the buckets; the
    /// exporter's own upkeep task exists only with its HTTP listener.
    fn upkeep(&self) {
        if let Some(handle) = &self.0 {
            handle.run_upkeep();
        }
    }
}

/// The probes and, unless `metrics.listen` moves it elsewhere, `/metrics`.
pub fn routes(metrics: Metrics, health: Health, metrics_here: bool) -> impl FnOnce(&mut web::ServiceConfig) + Clone + Send + 'static {
    move |cfg| {
        cfg.app_data(web::Data::new(health))
            .route("/livez", web::get().to(health::livez))
            .route("/livez", web::head().to(health::livez))
            .route("/readyz", web::get().to(health::readyz))
            .route("/readyz", web::head().to(health::readyz));
        if metrics_here {
            cfg.app_data(web::Data::new(metrics)).route("/metrics", web::get().to(scrape));
        }
    }
}

/// `GET /metrics`: the Prometheus text format.
async fn scrape(metrics: web::Data<Metrics>) -> HttpResponse {
    match metrics.render() {
        Some(text) => HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(text),
        None => HttpResponse::NotFound().finish(),
    }
}

/// `/metrics` alone on its own listener (`metrics.listen`), plain HTTP, one
/// worker; stopped with the main server.
pub fn metrics_server(listener: std::net::TcpListener, metrics: Metrics) -> std::io::Result<actix_web::dev::Server> {
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new().app_data(web::Data::new(metrics.clone())).route("/metrics", web::get().to(scrape))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}

/// Starts the background work: the gauges that need the database, the
/// audit-chain verification and the histogram upkeep. Ends when `stop` is
/// cancelled.
pub fn start(config: &Config, registry: &Registry, metrics: &Metrics, stop: CancellationToken) {
    if metrics.0.is_none() {
        return;
    }
    refresh::start(config, registry, stop.clone());
    let metrics = metrics.clone();
    actix_web::rt::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => metrics.upkeep(),
            }
        }
    });
}
