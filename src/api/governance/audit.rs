//! Audit log endpoints.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::DateTime;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::time;
use crate::api::access::require_global;
use crate::api::openapi::{ErrorEnvelope, VerifyReportSchema};
use crate::api::{ApiError, OciCode};
use crate::auth::Action;
use crate::domain::AuditFilter;
use crate::domain::{AuditAction, RepoName};
use crate::registry::Registry;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Exact repository name.
    repository: Option<String>,
    /// An audit action such as `promotion` or `access.denied`.
    action: Option<String>,
    /// Account name.
    actor: Option<String>,
    /// RFC 3339, inclusive.
    since: Option<String>,
    /// RFC 3339, exclusive.
    until: Option<String>,
    /// Page size (capped by the server).
    n: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<i64>,
}

/// One audit row, with its place in the hash chain.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditEntry {
    id: i64,
    #[schema(format = DateTime)]
    time: String,
    actor: String,
    /// Client address; empty for changes not made over HTTP.
    source: String,
    action: String,
    repository: Option<String>,
    reference: Option<String>,
    digest: Option<String>,
    /// Action-specific facts (failed gates, previous digest, ...): a JSON object.
    #[schema(value_type = Object)]
    details: serde_json::Value,
    /// sha256(previous hash ‖ canonical row), hex.
    hash: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditPage {
    /// Newest first.
    entries: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; none on the last page.
    next_cursor: Option<i64>,
}

fn parse_time(name: &str, value: &Option<String>) -> Result<Option<i64>, ApiError> {
    value
        .as_deref()
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.timestamp_millis())
                .map_err(|e| ApiError::bad_request(OciCode::InvalidRequest, format!("{name}: not an RFC 3339 time: {e}")))
        })
        .transpose()
}

/// `GET /api/v1/audit?repository=&action=&actor=&since=&until=&n=&cursor=` —
/// newest first; `next_cursor` (and a `Link` header) continue.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    operation_id = "list_audit",
    tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "Audit rows, newest first", body = AuditPage),
        (status = 400, description = "Unknown action, bad time or repository name", body = ErrorEnvelope),
    )
)]
pub async fn list(req: HttpRequest, query: web::Query<AuditQuery>, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    require_global(&req, Action::ReadAudit).await?;
    let repository = query.repository.as_deref().map(RepoName::parse).transpose()?;
    let action = match &query.action {
        None => None,
        Some(action) => Some(AuditAction::parse(action).ok_or_else(|| {
            let known: Vec<_> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
            ApiError::bad_request(OciCode::InvalidRequest, format!("unknown action {action:?}; one of {}", known.join(", ")))
        })?),
    };
    let filter = AuditFilter {
        repository,
        action,
        actor: query.actor.clone(),
        since: parse_time("since", &query.since)?,
        until: parse_time("until", &query.until)?,
        before_id: query.cursor,
    };
    let n = query.n.unwrap_or(registry.config().default_page_size).min(registry.config().max_page_size);
    let rows = registry.audit_log(filter, n).await?;
    let next_cursor = (rows.len() as u32 == n && n > 0).then(|| rows.last().map(|r| r.record.id)).flatten();
    let entries = rows
        .iter()
        .map(|r| {
            let rec = &r.record;
            AuditEntry {
                id: rec.id,
                time: time(rec.created_at),
                actor: rec.actor.clone(),
                source: rec.source.clone(),
                action: rec.action.clone(),
                repository: rec.repository.clone(),
                reference: rec.reference.clone(),
                digest: rec.digest.clone(),
                details: rec.details.clone(),
                hash: r.hash.clone(),
            }
        })
        .collect();
    let mut response = HttpResponse::Ok();
    if let Some(cursor) = next_cursor {
        response.insert_header((header::LINK, format!("</api/v1/audit?n={n}&cursor={cursor}>; rel=\"next\"")));
    }
    Ok(response.json(AuditPage { entries, next_cursor }))
}

/// `GET /api/v1/audit/verify` — recomputes the chain; names the first broken row.
#[utoipa::path(
    get,
    path = "/api/v1/audit/verify",
    operation_id = "verify_audit",
    tag = "audit",
    responses((status = 200, description = "The chain's state; `first_broken` names the first row that does not verify", body = VerifyReportSchema))
)]
pub async fn verify(req: HttpRequest, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    require_global(&req, Action::ReadAudit).await?;
    Ok(HttpResponse::Ok().json(registry.verify_audit().await?))
}
