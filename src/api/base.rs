//! `GET /v2/` and the fallbacks for unknown routes.

use actix_web::{HttpRequest, HttpResponse};

use super::access::require_login;
use super::ApiError;

/// `GET /v2/`: tells clients this is a registry speaking the v2 API; with
/// auth on, answers 401 with the token challenge until they log in.
pub async fn version_check(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    require_login(&req, None).await?;
    Ok(HttpResponse::Ok().content_type("application/json").body("{}"))
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found())
}

pub async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::method_not_allowed())
}
