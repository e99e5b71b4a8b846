//! Promotion, rollback, stage and tag history endpoints.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{release_json, time};
use crate::api::access::require;
use crate::api::request::{next_link, repo, PageQuery};
use crate::auth::Action;
use crate::api::ApiError;
use crate::domain::{Reference, Tag};
use crate::governance::promotion::PromotionRequest;
use crate::registry::Registry;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromotionBody {
    reference: String,
    stage: String,
    version: Option<String>,
    note: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    to_sequence: Option<i64>,
}

/// `POST /api/v1/repositories/<name>/promotions` — 201 with the release;
/// 409 PROMOTION_DENIED naming every failed gate.
pub async fn promote(req: HttpRequest, body: web::Json<PromotionBody>, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    let repo = repo(&req)?;
    let body = body.into_inner();
    let actor = require(&req, Action::Promote(body.stage.clone()), Some(&repo)).await?;
    let request = PromotionRequest { reference: Reference::parse(&body.reference)?, stage: body.stage, version: body.version, note: body.note };
    let release = registry.promote(&actor, &repo, request).await?;
    Ok(HttpResponse::Created().json(release_json(repo.as_str(), &release)))
}

/// `POST /api/v1/repositories/<name>/stages/<stage>/rollback` with optional
/// `{"to_sequence": N}` — 201 with the new release.
pub async fn rollback(req: HttpRequest, body: Option<web::Json<RollbackBody>>, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    let repo = repo(&req)?;
    let stage = req.match_info().get("stage").unwrap_or_default();
    let actor = require(&req, Action::Rollback(stage.to_owned()), Some(&repo)).await?;
    let to = body.map(|b| b.into_inner()).unwrap_or_default().to_sequence;
    let release = registry.rollback(&actor, &repo, stage, to).await?;
    Ok(HttpResponse::Created().json(release_json(repo.as_str(), &release)))
}

/// `GET /api/v1/repositories/<name>/stages` — each stage's current release.
pub async fn stages(req: HttpRequest, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    let repo = repo(&req)?;
    require(&req, Action::Pull, Some(&repo)).await?;
    let stages = registry.stages(&repo).await?;
    let stages: Vec<_> = stages
        .iter()
        .map(|(stage, current)| json!({"stage": stage, "current": current.as_ref().map(|r| release_json(repo.as_str(), r))}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({"repository": repo.as_str(), "stages": stages})))
}

fn before(query: &PageQuery) -> Result<Option<i64>, ApiError> {
    query
        .last()
        .map(|l| l.parse::<i64>().map_err(|_| ApiError::bad_request("INVALID_REQUEST", "last must be a number from a previous page")))
        .transpose()
}

/// `GET /api/v1/repositories/<name>/stages/<stage>/releases?n=&last=` — newest first.
pub async fn list(req: HttpRequest, query: web::Query<PageQuery>, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    let repo = repo(&req)?;
    require(&req, Action::Pull, Some(&repo)).await?;
    let stage = req.match_info().get("stage").unwrap_or_default().to_owned();
    let n = query.size(registry.config())?;
    let releases = registry.releases(&repo, &stage, before(&query)?, n).await?;
    let mut response = HttpResponse::Ok();
    if let (true, Some(last)) = (releases.len() as u32 == n && n > 0, releases.last()) {
        let path = format!("/api/v1/repositories/{repo}/stages/{stage}/releases");
        response.insert_header((header::LINK, next_link(&path, n, &last.sequence.to_string())));
    }
    let items: Vec<_> = releases.iter().map(|r| release_json(repo.as_str(), r)).collect();
    Ok(response.json(json!({"repository": repo.as_str(), "stage": stage, "releases": items})))
}

/// `GET /api/v1/repositories/<name>/tags/<tag>/history?n=&last=` — every
/// digest the tag pointed to, newest first (`digest: null` = deleted).
pub async fn tag_history(req: HttpRequest, query: web::Query<PageQuery>, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    let repo = repo(&req)?;
    require(&req, Action::Pull, Some(&repo)).await?;
    let tag = Tag::parse(req.match_info().get("tag").unwrap_or_default())?;
    let n = query.size(registry.config())?;
    let events = registry.tag_history(&repo, tag.as_str(), before(&query)?, n).await?;
    let mut response = HttpResponse::Ok();
    if let (true, Some(last)) = (events.len() as u32 == n && n > 0, events.last()) {
        let path = format!("/api/v1/repositories/{repo}/tags/{tag}/history");
        response.insert_header((header::LINK, next_link(&path, n, &last.id.to_string())));
    }
    let items: Vec<_> = events
        .iter()
        .map(|e| json!({"id": e.id, "digest": e.digest, "actor": e.actor, "created_at": time(e.created_at)}))
        .collect();
    Ok(response.json(json!({"repository": repo.as_str(), "tag": tag.as_str(), "history": items})))
}
