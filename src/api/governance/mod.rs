//! Governance API under `/api/v1`: promotions, rollback, stage and tag
//! history, audit log. JSON in and out; errors use the same envelope as the
//! registry API.

mod audit;
mod maintenance;
mod releases;

use actix_web::web;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::db::releases::ReleaseRow;

/// Routes inside the `/api/v1` scope.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit", web::get().to(audit::list))
        .route("/audit/verify", web::get().to(audit::verify))
        .route("/retention/policies", web::get().to(maintenance::policies))
        .route("/retention/plan", web::get().to(maintenance::plan))
        .route("/retention/runs", web::post().to(maintenance::run))
        .route("/gc/runs", web::post().to(maintenance::gc))
        .route("/repositories/{name:.+}/promotions", web::post().to(releases::promote))
        .route("/repositories/{name:.+}/stages", web::get().to(releases::stages))
        .route("/repositories/{name:.+}/stages/{stage}/rollback", web::post().to(releases::rollback))
        .route("/repositories/{name:.+}/stages/{stage}/releases", web::get().to(releases::list))
        .route("/repositories/{name:.+}/tags/{tag}/history", web::get().to(releases::tag_history));
}

pub(crate) fn time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn release_json(repository: &str, r: &ReleaseRow) -> Value {
    json!({
        "repository": repository,
        "stage": r.stage,
        "sequence": r.sequence,
        "digest": r.digest,
        "version": r.version,
        "note": r.note,
        "actor": r.actor,
        "created_at": time(r.created_at),
        "reason": r.reason,
        "rolled_back_from": r.rolled_back_from,
        "restored_sequence": r.restored_sequence,
    })
}
