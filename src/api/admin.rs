//! `/api/v1/admin/drain`: takes this node out of a load balancer before
//! maintenance (`/readyz` answers 503 while drained) and puts it back.
//! Requests keep being served meanwhile; only the readiness answer changes.

use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::access::require_global;
use crate::api::ApiError;
use crate::auth::Action;
use crate::observability::health;

/// Whether the node is drained.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DrainState {
    /// While true, `/readyz` answers 503 `draining`.
    draining: bool,
}

fn state() -> HttpResponse {
    HttpResponse::Ok().json(DrainState { draining: health::draining() })
}

/// `GET /api/v1/admin/drain` — whether the node is drained.
#[utoipa::path(
    get,
    path = "/api/v1/admin/drain",
    tag = "operations",
    responses((status = 200, description = "The drain state", body = DrainState))
)]
pub async fn get(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    require_global(&req, Action::Admin).await?;
    Ok(state())
}

/// `POST /api/v1/admin/drain` — drain: `/readyz` answers 503 from now on.
#[utoipa::path(
    post,
    path = "/api/v1/admin/drain",
    tag = "operations",
    responses((status = 200, description = "Drained", body = DrainState))
)]
pub async fn drain(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let actor = require_global(&req, Action::Admin).await?;
    tracing::warn!(actor = %actor.name, "drain requested");
    health::set_draining(true);
    Ok(state())
}

/// `DELETE /api/v1/admin/drain` — undrain: `/readyz` reports readiness again.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/drain",
    tag = "operations",
    responses((status = 200, description = "Undrained", body = DrainState))
)]
pub async fn undrain(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let actor = require_global(&req, Action::Admin).await?;
    tracing::info!(actor = %actor.name, "undrain requested");
    health::set_draining(false);
    Ok(state())
}
