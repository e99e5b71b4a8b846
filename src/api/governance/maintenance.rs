//! Retention and garbage collection endpoints.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;

use crate::api::access::require_global;
use crate::api::openapi::{GcReportSchema, RetentionPoliciesSchema, RetentionReportSchema};
use crate::api::ApiError;
use crate::auth::Action;
use crate::registry::{Registry, RunTrigger};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DryRun {
    /// Report what would be collected; change nothing.
    #[serde(default)]
    dry_run: bool,
}

/// `GET /api/v1/retention/policies` — the configured policies and the
/// protections no policy overrides.
#[utoipa::path(
    get,
    path = "/api/v1/retention/policies",
    tag = "maintenance",
    responses((status = 200, description = "Configured policies and what is always kept", body = RetentionPoliciesSchema))
)]
pub async fn policies(req: HttpRequest, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    require_global(&req, Action::ReadAudit).await?;
    let m = registry.maintenance();
    Ok(HttpResponse::Ok().json(json!({
        "policies": m.retention.policies,
        "schedule": m.retention.schedule.map(|d| humantime::format_duration(d).to_string()),
        "rollback_depth": registry.policy().rollback_depth,
        "always_kept": [
            "the current release of every stage",
            "the last rollback_depth releases of every stage",
            "the target of an immutable tag",
            "every manifest a kept index or manifest refers to (all platforms)",
            "referrers (signatures, SBOMs, attestations) of a kept manifest",
        ],
    })))
}

/// `GET /api/v1/retention/plan` — what a run would do, with a reason for
/// every manifest and tag; changes nothing.
#[utoipa::path(
    get,
    path = "/api/v1/retention/plan",
    tag = "maintenance",
    responses((status = 200, description = "The plan (`dry_run: true`), a decision with its reason per manifest and tag", body = RetentionReportSchema))
)]
pub async fn plan(req: HttpRequest, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    let actor = require_global(&req, Action::ReadAudit).await?;
    Ok(HttpResponse::Ok().json(registry.run_retention(&actor, RunTrigger::Api, true).await?))
}

/// `POST /api/v1/retention/runs` — applies the plan; 200 with the report.
#[utoipa::path(
    post,
    path = "/api/v1/retention/runs",
    tag = "maintenance",
    responses((status = 200, description = "What was deleted, with every decision", body = RetentionReportSchema))
)]
pub async fn run(req: HttpRequest, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    let actor = require_global(&req, Action::Admin).await?;
    Ok(HttpResponse::Ok().json(registry.run_retention(&actor, RunTrigger::Api, false).await?))
}

/// `POST /api/v1/gc/runs?dry_run=true|false` — collects unreferenced blobs
/// and abandoned uploads; reports counts and bytes freed.
#[utoipa::path(
    post,
    path = "/api/v1/gc/runs",
    tag = "maintenance",
    params(DryRun),
    responses((status = 200, description = "Counts and bytes freed (or that would be, on a dry run)", body = GcReportSchema))
)]
pub async fn gc(req: HttpRequest, query: web::Query<DryRun>, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    let actor = require_global(&req, Action::Admin).await?;
    Ok(HttpResponse::Ok().json(registry.run_gc(&actor, RunTrigger::Api, query.dry_run).await?))
}
