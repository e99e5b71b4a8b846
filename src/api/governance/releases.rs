//! Promotion, rollback, stage and tag history endpoints.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{time, Release};
use crate::api::access::{identity, require};
use crate::api::openapi::{ErrorEnvelope, PageParams, RepoParam};
use crate::api::request::{next_link, repo, PageQuery};
use crate::api::{ApiError, OciCode};
use crate::auth::Action;
use crate::domain::{Reference, Tag};
use crate::registry::diff::ReleaseDiffRow;
use crate::registry::promotion::PromotionRequest;
use crate::registry::Registry;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromotionBody {
    /// A tag or a digest in the repository.
    reference: String,
    stage: String,
    version: Option<String>,
    note: Option<String>,
}

#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// The release to make current again; default: the newest earlier
    /// release with a different digest.
    to_sequence: Option<i64>,
}

/// The stage's current release after a promotion.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PromotionResult {
    #[serde(flatten)]
    release: Release,
    /// True when the digest was already current: the existing release is
    /// returned and nothing was written.
    unchanged: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StageCurrent {
    stage: String,
    /// None before the first promotion into the stage.
    current: Option<Release>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StagesResponse {
    repository: String,
    /// In the configured order.
    stages: Vec<StageCurrent>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReleasesPage {
    repository: String,
    stage: String,
    /// Newest first.
    releases: Vec<HistoryRelease>,
}

/// A release in a stage's history, with the summary of its diff against
/// the release it replaced.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HistoryRelease {
    #[serde(flatten)]
    release: Release,
    diff: ReleaseDiff,
}

/// The diff of a release against the one it replaced, computed in the
/// background after the promotion.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReleaseDiff {
    /// `ready`, `pending` (being computed) or `unavailable` (`reason` says why).
    state: String,
    /// The digest of the release it replaced.
    from_digest: Option<String>,
    /// When ready: counts and byte totals, as the diff endpoint's `summary`
    /// (without its per-request `layers_indexed` / `layers_cached`) plus the
    /// platform compared when the releases are indexes.
    #[schema(value_type = Option<Object>)]
    summary: Option<serde_json::Value>,
    reason: Option<String>,
}

impl ReleaseDiff {
    fn new(row: Option<&ReleaseDiffRow>) -> Self {
        match row {
            Some(r) => Self {
                state: r.state.as_str().to_owned(),
                from_digest: r.from_digest.as_ref().map(|d| d.to_string()),
                summary: r.summary.as_deref().and_then(|s| serde_json::from_str(s).ok()),
                reason: r.reason.clone(),
            },
            None => Self {
                state: "unavailable".into(),
                from_digest: None,
                summary: None,
                reason: Some("no summary recorded: a rollback, or a release made before summaries were kept".into()),
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TagEvent {
    id: i64,
    /// None: the tag was deleted.
    digest: Option<String>,
    actor: String,
    #[schema(format = DateTime)]
    created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TagHistory {
    repository: String,
    tag: String,
    /// Newest first.
    history: Vec<TagEvent>,
}

/// A signed-in caller who names a stage that does not exist is told the
/// configured ones (404 STAGE_UNKNOWN), not refused for a stage their grant
/// cannot name anyway (403); anonymous callers still get 401 first.
async fn known_stage_for_caller(req: &HttpRequest, registry: &Registry, stage: &str) -> Result<(), ApiError> {
    if identity(req).await?.authenticated {
        registry.check_stage(stage)?;
    }
    Ok(())
}

/// `POST /api/v1/repositories/<name>/promotions` — 201 with the new release;
/// 200 with the existing release and `"unchanged": true` when the digest is
/// already current in the stage (a retry: nothing is written, not even an
/// audit row); 409 PROMOTION_DENIED naming every failed gate.
#[utoipa::path(
    post,
    path = "/api/v1/repositories/{name}/promotions",
    tag = "releases",
    params(RepoParam),
    request_body = PromotionBody,
    responses(
        (status = 201, description = "Promoted: the new release", body = PromotionResult),
        (status = 200, description = "The digest was already current in the stage: the existing release, `unchanged: true`, nothing written", body = PromotionResult),
        (status = 400, description = "Invalid body or reference", body = ErrorEnvelope),
        (status = 404, description = "Unknown repository, manifest (MANIFEST_UNKNOWN) or stage (STAGE_UNKNOWN)", body = ErrorEnvelope),
        (status = 409, description = "PROMOTION_DENIED; `detail.failed_gates` names every failed gate", body = ErrorEnvelope),
    )
)]
pub async fn promote(req: HttpRequest, body: web::Json<PromotionBody>, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    let repo = repo(&req)?;
    let body = body.into_inner();
    known_stage_for_caller(&req, &registry, &body.stage).await?;
    let actor = require(&req, Action::Promote(body.stage.clone()), Some(&repo)).await?;
    let request =
        PromotionRequest { reference: Reference::parse(&body.reference)?, stage: body.stage, version: body.version, note: body.note };
    let promotion = registry.promote(&actor, &repo, request).await?;
    let verdicts = registry.release_verdicts(&repo, vec![(promotion.release.stage.clone(), promotion.release.sequence)]).await?;
    let release = Release::new(repo.as_str(), &promotion.release).with_verdict(verdicts.first().and_then(Option::as_ref));
    let body = PromotionResult { release, unchanged: promotion.unchanged };
    let mut response = if promotion.unchanged { HttpResponse::Ok() } else { HttpResponse::Created() };
    Ok(response.json(body))
}

/// `POST /api/v1/repositories/<name>/stages/<stage>/rollback` with optional
/// `{"to_sequence": N}` — 201 with the new release.
#[utoipa::path(
    post,
    path = "/api/v1/repositories/{name}/stages/{stage}/rollback",
    tag = "releases",
    params(RepoParam, ("stage" = String, Path, description = "A configured stage")),
    request_body(content = Option<RollbackBody>, description = "Optional; no body rolls back one step"),
    responses(
        (status = 201, description = "The new release (reason `rollback`)", body = Release),
        (status = 404, description = "Unknown repository or stage", body = ErrorEnvelope),
        (status = 409, description = "ROLLBACK_DENIED: nothing to roll back to, or the target is gone", body = ErrorEnvelope),
    )
)]
pub async fn rollback(
    req: HttpRequest,
    body: Option<web::Json<RollbackBody>>,
    registry: web::Data<Registry>,
) -> Result<HttpResponse, ApiError> {
    let repo = repo(&req)?;
    let stage = req.match_info().get("stage").unwrap_or_default();
    known_stage_for_caller(&req, &registry, stage).await?;
    let actor = require(&req, Action::Rollback(stage.to_owned()), Some(&repo)).await?;
    let to = body.map(|b| b.into_inner()).unwrap_or_default().to_sequence;
    let release = registry.rollback(&actor, &repo, stage, to).await?;
    let verdicts = registry.release_verdicts(&repo, vec![(release.stage.clone(), release.sequence)]).await?;
    Ok(HttpResponse::Created().json(Release::new(repo.as_str(), &release).with_verdict(verdicts.first().and_then(Option::as_ref))))
}

/// `GET /api/v1/repositories/<name>/stages` — each stage's current release.
#[utoipa::path(
    get,
    path = "/api/v1/repositories/{name}/stages",
    tag = "releases",
    params(RepoParam),
    responses(
        (status = 200, description = "Each configured stage with its current release", body = StagesResponse),
        (status = 404, description = "Unknown repository", body = ErrorEnvelope),
    )
)]
pub async fn stages(req: HttpRequest, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    let repo = repo(&req)?;
    require(&req, Action::Pull, Some(&repo)).await?;
    let stages = registry.stages(&repo).await?;
    let keys = stages.iter().filter_map(|(_, current)| current.as_ref().map(|r| (r.stage.clone(), r.sequence))).collect();
    // One verdict (or none) per stage that has a current release, in order.
    let mut verdicts = registry.release_verdicts(&repo, keys).await?.into_iter();
    let stages = stages
        .iter()
        .map(|(stage, current)| StageCurrent {
            stage: stage.clone(),
            current: current.as_ref().map(|r| Release::new(repo.as_str(), r).with_verdict(verdicts.next().flatten().as_ref())),
        })
        .collect();
    Ok(HttpResponse::Ok().json(StagesResponse { repository: repo.to_string(), stages }))
}

fn before(query: &PageQuery) -> Result<Option<i64>, ApiError> {
    query
        .last()
        .map(|l| l.parse::<i64>().map_err(|_| ApiError::bad_request(OciCode::InvalidRequest, "last must be a number from a previous page")))
        .transpose()
}

/// `GET /api/v1/repositories/<name>/stages/<stage>/releases?n=&last=` — newest first.
#[utoipa::path(
    get,
    path = "/api/v1/repositories/{name}/stages/{stage}/releases",
    operation_id = "list_releases",
    tag = "releases",
    params(RepoParam, ("stage" = String, Path, description = "A configured stage"), PageParams),
    responses(
        (status = 200, description = "Releases, newest first; a `Link` header points to the next page", body = ReleasesPage),
        (status = 404, description = "Unknown repository or stage", body = ErrorEnvelope),
    )
)]
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
    let diffs = registry.release_diffs(&repo, &stage, releases.iter().map(|r| r.sequence).collect()).await?;
    let verdicts = registry.release_verdicts(&repo, releases.iter().map(|r| (r.stage.clone(), r.sequence)).collect()).await?;
    let releases = releases
        .iter()
        .zip(&verdicts)
        .map(|(r, v)| HistoryRelease {
            release: Release::new(repo.as_str(), r).with_verdict(v.as_ref()),
            diff: ReleaseDiff::new(diffs.iter().find(|d| d.sequence == r.sequence)),
        })
        .collect();
    Ok(response.json(ReleasesPage { repository: repo.to_string(), stage, releases }))
}

/// `GET /api/v1/repositories/<name>/tags/<tag>/history?n=&last=` — every
/// digest the tag pointed to, newest first (`digest: null` = deleted).
#[utoipa::path(
    get,
    path = "/api/v1/repositories/{name}/tags/{tag}/history",
    tag = "releases",
    params(RepoParam, ("tag" = String, Path, description = "Any tag, stage tags included"), PageParams),
    responses(
        (status = 200, description = "Every digest the tag pointed to, newest first; a `Link` header points to the next page", body = TagHistory),
        (status = 400, description = "Invalid tag", body = ErrorEnvelope),
        (status = 404, description = "Unknown repository", body = ErrorEnvelope),
    )
)]
pub async fn tag_history(req: HttpRequest, query: web::Query<PageQuery>, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    let repo = repo(&req)?;
    require(&req, Action::Pull, Some(&repo)).await?;
    let tag = Tag::parse(req.match_info().get("tag").unwrap_or_default())?;
    let n = query.size(registry.config())?;
    let events = registry.tag_history(&repo, &tag, before(&query)?, n).await?;
    let mut response = HttpResponse::Ok();
    if let (true, Some(last)) = (events.len() as u32 == n && n > 0, events.last()) {
        let path = format!("/api/v1/repositories/{repo}/tags/{tag}/history");
        response.insert_header((header::LINK, next_link(&path, n, &last.id.to_string())));
    }
    let history = events
        .iter()
        .map(|e| TagEvent {
            id: e.id,
            digest: e.digest.as_ref().map(ToString::to_string),
            actor: e.actor.clone(),
            created_at: time(e.created_at),
        })
        .collect();
    Ok(response.json(TagHistory { repository: repo.to_string(), tag: tag.to_string(), history }))
}
