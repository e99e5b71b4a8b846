//! `GET /v2/` and the fallbacks for unknown routes.

use actix_web::HttpResponse;

use super::ApiError;

/// `GET /v2/`: tells clients this is a registry speaking the v2 API.
pub async fn version_check() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body("{}")
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found())
}

pub async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::method_not_allowed())
}
