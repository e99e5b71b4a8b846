//! Blob upload endpoints.

use actix_web::http::header::{self, HeaderName};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::access::{identity, may_mount_anonymously, may_pull, require};
use super::request::{body_stream, header, repo};
use super::{ApiError, OciCode};
use crate::auth::Action;
use crate::domain::{Digest, RepoName};
use crate::registry::uploads::{MountOutcome, UploadStatus};
use crate::registry::{Registry, RegistryError};

const UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
const CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");

#[derive(Debug, Deserialize)]
pub struct StartQuery {
    digest: Option<String>,
    mount: Option<String>,
    from: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CompleteQuery {
    digest: Option<String>,
}

fn upload_location(repo: &RepoName, id: &str) -> String {
    format!("/v2/{repo}/blobs/uploads/{id}")
}

/// `Range: 0-<last byte>` as the spec (not RFC 9110) shapes it for uploads.
fn range_value(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

fn in_progress(repo: &RepoName, status: &UploadStatus, code: actix_web::http::StatusCode) -> HttpResponse {
    HttpResponse::build(code)
        .insert_header((header::LOCATION, upload_location(repo, &status.id)))
        .insert_header((header::RANGE, range_value(status.size)))
        .insert_header((UPLOAD_UUID, status.id.clone()))
        .insert_header((header::CONTENT_LENGTH, "0"))
        .finish()
}

fn created(repo: &RepoName, digest: &Digest) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/v2/{repo}/blobs/{digest}")))
        .insert_header((CONTENT_DIGEST, digest.to_string()))
        .finish()
}

/// A 416 for an out-of-order chunk tells the client where the upload stands.
fn with_upload_headers(e: RegistryError, repo: &RepoName, id: &str) -> ApiError {
    let current = match &e {
        RegistryError::RangeInvalid { current, .. } => Some(*current),
        _ => None,
    };
    let api = ApiError::from(e);
    match current {
        Some(size) => api
            .with_header(header::LOCATION, &upload_location(repo, id))
            .with_header(header::RANGE, &range_value(size))
            .with_header(UPLOAD_UUID, id),
        None => api,
    }
}

/// `POST /v2/<name>/blobs/uploads/` — opens a session (202), or with
/// `?digest=` takes the whole blob as body (201), or with `?mount=&from=`
/// links a blob from another repository (201, else a session: 202).
pub async fn start(
    req: HttpRequest,
    query: web::Query<StartQuery>,
    payload: web::Payload,
    registry: web::Data<Registry>,
) -> Result<HttpResponse, ApiError> {
    let repo = repo(&req)?;
    require(&req, Action::Push, Some(&repo)).await?;
    if let Some(mount) = &query.mount {
        let digest = Digest::parse(mount)?;
        // An invalid `from`, or one the caller may not read, cannot lend the
        // blob: fall back to a plain upload. So does a mount that names no
        // source, unless the caller may read every repository.
        let id = identity(&req).await?;
        let from = query.from.as_deref().and_then(|f| RepoName::parse(f).ok()).filter(|f| may_pull(&req, &id, f.as_str()));
        if (query.from.is_some() && from.is_none()) || (query.from.is_none() && !may_mount_anonymously(&id)) {
            let status = registry.start_upload(&repo).await?;
            return Ok(in_progress(&repo, &status, actix_web::http::StatusCode::ACCEPTED));
        }
        return match registry.mount_blob(&repo, &digest, from.as_ref()).await? {
            MountOutcome::Mounted => Ok(created(&repo, &digest)),
            MountOutcome::Started(status) => Ok(in_progress(&repo, &status, actix_web::http::StatusCode::ACCEPTED)),
        };
    }
    if let Some(digest) = &query.digest {
        let digest = Digest::parse(digest)?;
        registry.push_blob(&repo, &digest, body_stream(payload)).await?;
        return Ok(created(&repo, &digest));
    }
    let status = registry.start_upload(&repo).await?;
    Ok(in_progress(&repo, &status, actix_web::http::StatusCode::ACCEPTED))
}

/// `GET /v2/<name>/blobs/uploads/<id>` — 204 with the current `Range`.
pub async fn status(req: HttpRequest, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    let repo = repo(&req)?;
    require(&req, Action::Push, Some(&repo)).await?;
    let id = req.match_info().get("id").unwrap_or_default();
    let status = registry.upload_status(&repo, id).await?;
    Ok(in_progress(&repo, &status, actix_web::http::StatusCode::NO_CONTENT))
}

/// Parses `Content-Range: <start>-<end>` (an optional `bytes ` prefix is tolerated).
fn content_range_start(req: &HttpRequest) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(value) = header(req, header::CONTENT_RANGE) else { return Ok(None) };
    let spec = value.trim().trim_start_matches("bytes ").trim_start_matches("bytes=");
    let parsed = spec.split_once('-').and_then(|(a, b)| Some((a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?)));
    match parsed {
        Some((start, end)) if end >= start => Ok(Some((start, end))),
        _ => Err(ApiError::with_status(
            actix_web::http::StatusCode::RANGE_NOT_SATISFIABLE,
            OciCode::BlobUploadInvalid,
            format!("invalid Content-Range {value:?}"),
        )),
    }
}

/// `PATCH /v2/<name>/blobs/uploads/<id>` — appends a chunk; 202 with `Range`.
pub async fn append(req: HttpRequest, payload: web::Payload, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    let repo = repo(&req)?;
    require(&req, Action::Push, Some(&repo)).await?;
    let id = req.match_info().get("id").unwrap_or_default().to_owned();
    let range = content_range_start(&req)?;
    let status = registry.append_upload(&repo, &id, range, body_stream(payload)).await.map_err(|e| with_upload_headers(e, &repo, &id))?;
    Ok(in_progress(&repo, &status, actix_web::http::StatusCode::ACCEPTED))
}

/// `PUT /v2/<name>/blobs/uploads/<id>?digest=<digest>` — completes the upload
/// (the body, if any, is the last chunk); 201.
pub async fn complete(
    req: HttpRequest,
    query: web::Query<CompleteQuery>,
    payload: web::Payload,
    registry: web::Data<Registry>,
) -> Result<HttpResponse, ApiError> {
    let repo = repo(&req)?;
    require(&req, Action::Push, Some(&repo)).await?;
    let id = req.match_info().get("id").unwrap_or_default().to_owned();
    let digest =
        query.digest.as_deref().ok_or_else(|| ApiError::bad_request(OciCode::DigestInvalid, "the digest query parameter is required"))?;
    let digest = Digest::parse(digest)?;
    let has_body = header(&req, header::CONTENT_LENGTH).is_none_or(|len| len != "0");
    let body = has_body.then(|| body_stream(payload));
    let range = content_range_start(&req)?;
    registry.complete_upload(&repo, &id, &digest, range, body).await.map_err(|e| with_upload_headers(e, &repo, &id))?;
    Ok(created(&repo, &digest))
}

/// `DELETE /v2/<name>/blobs/uploads/<id>` — cancels; 204.
pub async fn cancel(req: HttpRequest, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    let repo = repo(&req)?;
    require(&req, Action::Push, Some(&repo)).await?;
    let id = req.match_info().get("id").unwrap_or_default();
    registry.cancel_upload(&repo, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
