//! Governance API under `/api/v1`: promotions, rollback, stage and tag
//! history, audit log. JSON in and out; errors use the same envelope as the
//! registry API.

// Visible to `api::openapi`, which lists their handlers.
pub(super) mod audit;
pub(super) mod maintenance;
pub(super) mod releases;

use actix_web::web;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::ReleaseRow;

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

/// A release: one entry of a stage's append-only history.
// Not closed with `deny_unknown_fields` (additionalProperties: false):
// `PromotionResult` extends it with `unchanged`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Release {
    repository: String,
    stage: String,
    /// 1, 2, ... per repository and stage.
    sequence: i64,
    digest: String,
    version: Option<String>,
    note: Option<String>,
    /// The account that promoted or rolled back.
    actor: String,
    /// RFC 3339, UTC.
    #[schema(format = DateTime)]
    created_at: String,
    /// `promote` or `rollback`.
    reason: String,
    /// For a rollback: the sequence that was current before it.
    rolled_back_from: Option<i64>,
    /// For a rollback: the sequence whose digest it made current again.
    restored_sequence: Option<i64>,
}

impl Release {
    pub(crate) fn new(repository: &str, r: &ReleaseRow) -> Self {
        Self {
            repository: repository.to_owned(),
            stage: r.stage.to_string(),
            sequence: r.sequence,
            digest: r.digest.to_string(),
            version: r.version.clone(),
            note: r.note.clone(),
            actor: r.actor.clone(),
            created_at: time(r.created_at),
            reason: r.reason.to_string(),
            rolled_back_from: r.rolled_back_from,
            restored_sequence: r.restored_sequence,
        }
    }
}
