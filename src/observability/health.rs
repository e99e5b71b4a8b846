//! `/livez`, `/readyz` and the drain switch.
//!
//! `/livez` answers while the process serves requests at all. `/readyz`
//! answers 200 only when the database answered its engine's probe (SQLite:
//! a read and an empty write; PostgreSQL: a read on a server that takes
//! writes, never the cluster-wide writer lock) and the object store
//! answered a listing, each within `health.timeout`, and the node is not
//! drained. A result is reused for `health.cache`, and only one
//! check runs at a time, so probes cannot pile work onto a struggling
//! database. Neither probe needs credentials or says more than which part
//! failed: causes go to the log.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::config::HealthConfig;
use crate::registry::Registry;

/// Set by `POST /api/v1/admin/drain` (or `health.drained`); one per process.
static DRAINING: AtomicBool = AtomicBool::new(false);

pub fn set_draining(on: bool) {
    let was = DRAINING.swap(on, Ordering::SeqCst);
    metrics::gauge!("wharf_draining").set(if on { 1.0 } else { 0.0 });
    if was != on {
        if on {
            tracing::warn!("drained: /readyz answers 503 until undrained");
        } else {
            tracing::info!("undrained: /readyz reports readiness again");
        }
    }
}

pub fn draining() -> bool {
    DRAINING.load(Ordering::SeqCst)
}

/// What a check found, as the probe says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Ok,
    Error,
    Timeout,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Checks {
    database: Check,
    storage: Check,
}

/// The `/livez` answer (described for the OpenAPI document).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Liveness {
    /// Always `live`.
    status: String,
}

/// The `/readyz` answer: which part failed, never why (that is logged).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Readiness {
    /// `ready`, `unready` or `draining`.
    status: String,
    checks: Checks,
    draining: bool,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.status == "ready"
    }

    pub fn status(&self) -> &str {
        &self.status
    }

    /// (part, what its check found) for each part checked.
    pub fn parts(&self) -> [(&'static str, Check); 2] {
        [("database", self.checks.database), ("storage", self.checks.storage)]
    }
}

impl Check {
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Ok => "ok",
            Check::Error => "error",
            Check::Timeout => "timeout",
        }
    }
}

#[derive(Clone)]
pub struct Health {
    registry: Registry,
    config: HealthConfig,
    last: Arc<tokio::sync::Mutex<Option<(Instant, Checks)>>>,
    /// A database probe still queued or running: a locked database keeps its
    /// probe job waiting, and later checks must not queue more behind it.
    db_probe_running: Arc<AtomicBool>,
}

impl Health {
    pub fn new(registry: Registry, config: HealthConfig) -> Self {
        if config.drained {
            set_draining(true);
        }
        Self { registry, config, last: Default::default(), db_probe_running: Default::default() }
    }

    /// The cached result, or a fresh check when it is older than `health.cache`.
    async fn checks(&self) -> Checks {
        let mut last = self.last.lock().await;
        if let Some((at, checks)) = *last {
            if at.elapsed() < self.config.cache {
                return checks;
            }
        }
        let (database, storage) = tokio::join!(self.check_database(), self.check_storage());
        let checks = Checks { database, storage };
        *last = Some((Instant::now(), checks));
        checks
    }

    /// What `/readyz` answers now (the console's admin page shows it too).
    pub async fn readiness(&self) -> Readiness {
        let checks = self.checks().await;
        let healthy = checks.database == Check::Ok && checks.storage == Check::Ok;
        let drained = draining();
        metrics::gauge!("wharf_ready").set(if healthy && !drained { 1.0 } else { 0.0 });
        let status = match (healthy, drained) {
            (true, false) => "ready",
            (_, true) => "draining",
            (false, false) => "unready",
        };
        Readiness { status: status.into(), checks, draining: drained }
    }

    async fn check_database(&self) -> Check {
        if self.db_probe_running.swap(true, Ordering::SeqCst) {
            return Check::Timeout;
        }
        let (db, running) = (self.registry.db().clone(), self.db_probe_running.clone());
        // Spawned so a probe that outlives the timeout still clears its flag.
        let probe = actix_web::rt::spawn(async move {
            let result = db.probe().await;
            running.store(false, Ordering::SeqCst);
            result
        });
        match tokio::time::timeout(self.config.timeout, probe).await {
            Ok(Ok(Ok(()))) => Check::Ok,
            Ok(Ok(Err(e))) => {
                tracing::warn!(error = %e, "readiness: database check failed");
                Check::Error
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: database check task failed");
                Check::Error
            }
            Err(_) => {
                tracing::warn!(timeout = ?self.config.timeout, "readiness: database did not answer in time");
                Check::Timeout
            }
        }
    }

    async fn check_storage(&self) -> Check {
        match tokio::time::timeout(self.config.timeout, self.registry.blobs.ping()).await {
            Ok(Ok(())) => Check::Ok,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: object store check failed");
                Check::Error
            }
            Err(_) => {
                tracing::warn!(timeout = ?self.config.timeout, "readiness: object store did not answer in time");
                Check::Timeout
            }
        }
    }
}

/// `GET /livez` — the process answers (no credentials needed).
#[utoipa::path(
    get,
    path = "/livez",
    tag = "operations",
    security(()),
    responses((status = 200, description = "The process serves requests", body = Liveness))
)]
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(Liveness { status: "live".into() })
}

/// `GET /readyz` — ready for traffic: the database and the object store
/// answer within `health.timeout` and the node is not drained (no
/// credentials needed).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "`unready` (a check failed: `error` or `timeout`) or `draining`", body = Readiness),
    )
)]
pub async fn readyz(health: web::Data<Health>) -> HttpResponse {
    let body = health.readiness().await;
    let mut response = if body.is_ready() { HttpResponse::Ok() } else { HttpResponse::ServiceUnavailable() };
    // A probe's answer is about this instant; no cache in between may keep it.
    response.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store")).json(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_serialize_as_words() {
        let checks = Checks { database: Check::Ok, storage: Check::Timeout };
        assert_eq!(serde_json::to_value(checks).unwrap(), serde_json::json!({ "database": "ok", "storage": "timeout" }));
    }

    #[test]
    fn drain_switch_flips() {
        set_draining(true);
        assert!(draining());
        set_draining(false);
        assert!(!draining());
    }
}
