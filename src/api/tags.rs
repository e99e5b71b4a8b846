//! Tags list endpoint.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::access::require;
use super::request::{next_link, repo, PageQuery};
use super::ApiError;
use crate::auth::Action;
use crate::registry::Registry;

/// `GET /v2/<name>/tags/list?n=&last=` — `{"name","tags"}`, with a `Link`
/// header when more tags follow.
pub async fn list(req: HttpRequest, query: web::Query<PageQuery>, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    let repo = repo(&req)?;
    require(&req, Action::Pull, Some(&repo)).await?;
    let n = query.size(registry.config())?;
    let page = registry.list_tags(&repo, query.last(), n).await?;
    let mut response = HttpResponse::Ok();
    if let (true, Some(last)) = (page.has_more, page.items.last()) {
        response.insert_header((header::LINK, next_link(&format!("/v2/{repo}/tags/list"), n, last)));
    }
    Ok(response.json(json!({"name": repo.as_str(), "tags": page.items})))
}
