//! Catalog endpoint.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::access::{may_pull, require_login};
use super::request::{next_link, PageQuery};
use super::ApiError;
use crate::registry::Registry;

/// Names read from the database per page of the scan, and at most per
/// request: a caller who may pull few repositories cannot make one request
/// walk the whole catalog. The scan is in database pages, not in the
/// caller's `n`, so `n=1` does not shrink it.
const SCAN_PAGE: u32 = 1000;
const MAX_SCANNED: usize = 50_000;
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
    let n = query.size(registry.config())? as usize;
    let mut repositories: Vec<String> = Vec::new();
    let mut cursor = query.last();
    let (mut scanned, mut has_more) = (0usize, false);
    'scan: while repositories.len() < n && scanned < MAX_SCANNED {
        let page = registry.catalog(cursor.clone(), SCAN_PAGE).await?;
        scanned += page.items.len();
        let page_has_more = page.has_more;
        for name in page.items {
            cursor = Some(name.clone());
            if !may_pull(&req, &id, &name) {
                continue;
            }
            if repositories.len() == n {
                // A pullable name beyond this page: more follow.
                has_more = true;
                break 'scan;
            }
            repositories.push(name);
        }
        if !page_has_more {
            break;
        }
        // The page ended with the response full or the scan budget spent:
        // more may follow, unless none of them is pullable.
        has_more = true;
    }
    // The Link names only what this response returned, never a repository
    // the caller may not pull (the scan's own cursor may be one). When the
    // scan budget ran out before anything pullable was found, there is
    // nothing safe to continue from, and the listing ends here.
    let mut response = HttpResponse::Ok();
    if let (true, Some(last)) = (has_more, repositories.last()) {
        response.insert_header((header::LINK, next_link("/v2/_catalog", n as u32, last)));
    }
    Ok(response.json(json!({"repositories": repositories})))
}
