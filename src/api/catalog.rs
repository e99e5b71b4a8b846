//! Catalog endpoint.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::access::{may_pull, require_login};
use super::request::{next_link, PageQuery};
use super::ApiError;
use crate::registry::Registry;

/// Database pages scanned at most for one response, so a caller who may read
/// few repositories cannot make one request walk the whole catalog; the
/// `Link` header then continues where the scan stopped.
const MAX_SCANNED_PAGES: usize = 20;
const CATALOG_SCOPE: &str = "registry:catalog:*";

/// `GET /v2/_catalog?n=&last=` — `{"repositories"}` the caller may pull,
/// with a `Link` header when more follow.
pub async fn list(req: HttpRequest, query: web::Query<PageQuery>, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    let id = require_login(&req, Some(CATALOG_SCOPE)).await?;
    if let Some(access) = &id.token_access {
        if !access.iter().any(|a| a.kind == "registry" && a.name == "catalog") {
            return Err(super::access::challenge_for(&req, "the token does not cover the catalog", CATALOG_SCOPE));
        }
    }
    let n = query.size(registry.config())?;
    let mut repositories: Vec<String> = Vec::new();
    let mut cursor = query.last();
    let mut has_more = false;
    for _ in 0..MAX_SCANNED_PAGES {
        if repositories.len() >= n as usize {
            break;
        }
        let page = registry.catalog(cursor.clone(), n).await?;
        let scanned = page.items.len();
        for (i, name) in page.items.into_iter().enumerate() {
            cursor = Some(name.clone());
            if may_pull(&req, &id, &name) {
                repositories.push(name);
                if repositories.len() >= n as usize {
                    has_more = i + 1 < scanned || page.has_more;
                    break;
                }
            }
        }
        if repositories.len() < n as usize {
            has_more = page.has_more;
            if !page.has_more {
                break;
            }
        }
    }
    let mut response = HttpResponse::Ok();
    if let (true, Some(last)) = (has_more, cursor.as_deref()) {
        response.insert_header((header::LINK, next_link("/v2/_catalog", n, last)));
    }
    Ok(response.json(json!({"repositories": repositories})))
}
