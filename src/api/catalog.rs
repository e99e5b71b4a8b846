//! Catalog endpoint.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde_json::json;

use super::request::{next_link, PageQuery};
use super::ApiError;
use crate::registry::Registry;

/// `GET /v2/_catalog?n=&last=` — `{"repositories"}`, with a `Link` header when
/// more follow.
pub async fn list(query: web::Query<PageQuery>, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    let n = query.size(registry.config())?;
    let page = registry.catalog(query.last(), n).await?;
    let mut response = HttpResponse::Ok();
    if let (true, Some(last)) = (page.has_more, page.items.last()) {
        response.insert_header((header::LINK, next_link("/v2/_catalog", n, last)));
    }
    Ok(response.json(json!({"repositories": page.items})))
}
