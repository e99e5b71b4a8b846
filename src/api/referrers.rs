//! Referrers endpoint.

use actix_web::http::header::HeaderName;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::access::require;
use super::request::{digest_param, repo};
use super::ApiError;
use crate::auth::Action;
use crate::domain::MediaType;
use crate::registry::Registry;

const FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");

#[derive(Debug, Deserialize)]
pub struct ReferrersQuery {
    #[serde(rename = "artifactType")]
    artifact_type: Option<String>,
}

/// `GET /v2/<name>/referrers/<digest>?artifactType=` — an image index listing
/// the manifests whose subject is `<digest>`.
pub async fn list(req: HttpRequest, query: web::Query<ReferrersQuery>, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    let repo = repo(&req)?;
    require(&req, Action::Pull, Some(&repo)).await?;
    let subject = digest_param(&req, "digest")?;
    let filter = query.artifact_type.clone().filter(|t| !t.is_empty());
    let manifests = registry.referrers(&repo, &subject, filter.clone()).await?;
    let mut response = HttpResponse::Ok();
    response.content_type(MediaType::OciIndex.as_str());
    if filter.is_some() {
        response.insert_header((FILTERS_APPLIED, "artifactType"));
    }
    let index = json!({"schemaVersion": 2, "mediaType": MediaType::OciIndex.as_str(), "manifests": manifests});
    Ok(response.body(index.to_string()))
}
