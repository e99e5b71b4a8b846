//! Manifest endpoints.

use actix_web::body::SizedStream;
use actix_web::http::header::{self, HeaderName};
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};

use super::access::require;
use super::request::{header, read_limited, repo};
use super::{ApiError, OciCode};
use crate::auth::Action;
use crate::domain::{Reference, Tag};
use crate::registry::Registry;

const CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
const OCI_TAG: HeaderName = HeaderName::from_static("oci-tag");
/// Most `?tag=` parameters one manifest PUT may carry.
const MAX_TAG_PARAMS: usize = 100;

/// The repeatable `?tag=` parameters of a manifest PUT.
fn tag_params(req: &HttpRequest) -> Result<Vec<Tag>, ApiError> {
    let tags: Vec<Tag> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .filter(|(k, _)| k == "tag")
        .map(|(_, v)| Tag::parse(&v))
        .collect::<Result<_, _>>()?;
    if tags.len() > MAX_TAG_PARAMS {
        return Err(ApiError::bad_request(OciCode::ManifestInvalid, format!("at most {MAX_TAG_PARAMS} tag parameters")));
    }
    Ok(tags)
}

fn reference(req: &HttpRequest) -> Result<Reference, ApiError> {
    Ok(Reference::parse(req.match_info().get("reference").unwrap_or_default())?)
}

/// `GET|HEAD /v2/<name>/manifests/<reference>` — the exact bytes pushed.
pub async fn get(req: HttpRequest, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    let repo = repo(&req)?;
    require(&req, Action::Pull, Some(&repo)).await?;
    let reference = reference(&req)?;
    let manifest = registry.serve_manifest(&repo, &reference).await?;
    let mut response = HttpResponse::Ok();
    response
        .insert_header((CONTENT_DIGEST, manifest.digest.to_string()))
        .insert_header((header::ETAG, format!("\"{}\"", manifest.digest)))
        .content_type(manifest.media_type.as_str());
    if req.method() == Method::HEAD {
        let empty = futures::stream::empty::<Result<bytes::Bytes, std::io::Error>>();
        return Ok(response.body(SizedStream::new(manifest.content.len() as u64, empty)));
    }
    Ok(response.body(manifest.content.clone()))
}

/// `PUT /v2/<name>/manifests/<reference>` — 201 with `Location`,
/// `Docker-Content-Digest` and, for a manifest with a subject, `OCI-Subject`.
pub async fn put(req: HttpRequest, payload: web::Payload, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    let repo = repo(&req)?;
    let actor = require(&req, Action::Push, Some(&repo)).await?;
    let reference = reference(&req)?;
    let tags = tag_params(&req)?;
    let body = read_limited(&req, payload, registry.config().max_manifest_bytes).await?;
    let put = registry.put_manifest(&actor, &repo, &reference, &tags, header(&req, header::CONTENT_TYPE), body).await?;
    let mut response = HttpResponse::Created();
    response
        .insert_header((header::LOCATION, format!("/v2/{repo}/manifests/{}", put.digest)))
        .insert_header((CONTENT_DIGEST, put.digest.to_string()));
    if let Some(subject) = put.subject {
        response.insert_header((OCI_SUBJECT, subject.to_string()));
    }
    if !put.tags.is_empty() {
        response.insert_header((OCI_TAG, put.tags.join(", ")));
    }
    Ok(response.finish())
}

/// `DELETE /v2/<name>/manifests/<reference>` — 202.
pub async fn delete(req: HttpRequest, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    let repo = repo(&req)?;
    let actor = require(&req, Action::Delete, Some(&repo)).await?;
    let reference = reference(&req)?;
    registry.delete_manifest(&actor, &repo, &reference).await?;
    Ok(HttpResponse::Accepted().finish())
}
