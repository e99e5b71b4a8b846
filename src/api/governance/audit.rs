//! Audit log endpoints.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::DateTime;
use serde::Deserialize;
use serde_json::json;

use super::time;
use crate::api::access::require_global;
use crate::api::ApiError;
use crate::auth::Action;
use crate::db::audit::AuditFilter;
use crate::domain::{AuditAction, RepoName};
use crate::registry::Registry;

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    repository: Option<String>,
    action: Option<String>,
    actor: Option<String>,
    /// RFC 3339, inclusive.
    since: Option<String>,
    /// RFC 3339, exclusive.
    until: Option<String>,
    n: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<i64>,
}

fn parse_time(name: &str, value: &Option<String>) -> Result<Option<i64>, ApiError> {
    value
        .as_deref()
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.timestamp_millis())
                .map_err(|e| ApiError::bad_request("INVALID_REQUEST", format!("{name}: not an RFC 3339 time: {e}")))
        })
        .transpose()
}

/// `GET /api/v1/audit?repository=&action=&actor=&since=&until=&n=&cursor=` —
/// newest first; `next_cursor` (and a `Link` header) continue.
pub async fn list(req: HttpRequest, query: web::Query<AuditQuery>, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    require_global(&req, Action::ReadAudit).await?;
    if let Some(repo) = &query.repository {
        RepoName::parse(repo)?;
    }
    if let Some(action) = &query.action {
        if AuditAction::parse(action).is_none() {
            let known: Vec<_> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
            return Err(ApiError::bad_request("INVALID_REQUEST", format!("unknown action {action:?}; one of {}", known.join(", "))));
        }
    }
    let filter = AuditFilter {
        repository: query.repository.clone(),
        action: query.action.clone(),
        actor: query.actor.clone(),
        since: parse_time("since", &query.since)?,
        until: parse_time("until", &query.until)?,
        before_id: query.cursor,
    };
    let n = query.n.unwrap_or(registry.config().default_page_size).min(registry.config().max_page_size);
    let rows = registry.audit_log(filter, n).await?;
    let next_cursor = (rows.len() as u32 == n && n > 0).then(|| rows.last().map(|r| r.record.id)).flatten();
    let entries: Vec<_> = rows
        .iter()
        .map(|r| {
            let rec = &r.record;
            json!({
                "id": rec.id, "time": time(rec.created_at), "actor": rec.actor, "source": rec.source,
                "action": rec.action, "repository": rec.repository, "reference": rec.reference,
                "digest": rec.digest, "details": rec.details, "hash": r.hash,
            })
        })
        .collect();
    let mut response = HttpResponse::Ok();
    if let Some(cursor) = next_cursor {
        response.insert_header((header::LINK, format!("</api/v1/audit?n={n}&cursor={cursor}>; rel=\"next\"")));
    }
    Ok(response.json(json!({"entries": entries, "next_cursor": next_cursor})))
}

/// `GET /api/v1/audit/verify` — recomputes the chain; names the first broken row.
pub async fn verify(req: HttpRequest, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    require_global(&req, Action::ReadAudit).await?;
    Ok(HttpResponse::Ok().json(registry.verify_audit().await?))
}
