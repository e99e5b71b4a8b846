//! `/api/v1/events/...`: webhook deliveries of durable events, and replay.
//! Admin only: deliveries name every repository's changes.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::access::require_global;
use crate::api::governance::time;
use crate::api::openapi::ErrorEnvelope;
use crate::api::{ApiError, OciCode};
use crate::auth::Action;
use crate::registry::events::{Delivery as DeliveryRow, DeliveryFilter, DeliveryState, ReplayTarget};
use crate::registry::Registry;

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/events/deliveries", web::get().to(list)).route("/events/replay", web::post().to(replay));
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// An endpoint name from `[[events.endpoints]]`.
    endpoint: Option<String>,
    /// `pending`, `delivered` or `dead` (dead letters).
    state: Option<String>,
    /// Page size (at most 1000).
    n: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<i64>,
}

/// One event at one endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Delivery {
    endpoint: String,
    /// The event id: the hash of its audit entry.
    event_id: String,
    /// The audit entry's id (replay ranges are in these).
    audit_id: i64,
    #[schema(example = "dev.wharf.push")]
    event_type: String,
    /// Empty for an event of no repository (GC).
    repository: String,
    /// `pending`, `delivered` or `dead`.
    state: String,
    attempts: i64,
    /// When a pending delivery is next tried (RFC 3339).
    #[schema(format = DateTime)]
    next_attempt_at: String,
    last_error: Option<String>,
    #[schema(format = DateTime)]
    updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeliveryPage {
    deliveries: Vec<Delivery>,
    /// Pass as `cursor` for the next page; null on the last one.
    next_cursor: Option<i64>,
}

fn render(d: DeliveryRow) -> Delivery {
    Delivery {
        endpoint: d.endpoint,
        event_id: d.event_id,
        audit_id: d.audit_id,
        event_type: d.event_type,
        repository: d.repository,
        state: d.state.as_str().to_owned(),
        attempts: d.attempts,
        next_attempt_at: time(d.next_attempt_at),
        last_error: d.last_error,
        updated_at: time(d.updated_at),
    }
}

/// `GET /api/v1/events/deliveries` — deliveries, oldest event first.
#[utoipa::path(
    get,
    path = "/api/v1/events/deliveries",
    operation_id = "list_event_deliveries",
    tag = "events",
    params(DeliveryQuery),
    responses(
        (status = 200, description = "Deliveries, oldest event first", body = DeliveryPage),
        (status = 400, description = "Unknown state or bad page size", body = ErrorEnvelope),
    )
)]
pub async fn list(req: HttpRequest, query: web::Query<DeliveryQuery>, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    require_global(&req, Action::Admin).await?;
    let q = query.into_inner();
    let state =
        match q.state.as_deref() {
            None => None,
            Some(s) => Some(DeliveryState::parse(s).ok_or_else(|| {
                ApiError::bad_request(OciCode::InvalidRequest, format!("state {s:?}: expected pending, delivered or dead"))
            })?),
        };
    let n = q.n.unwrap_or(DEFAULT_PAGE);
    if n == 0 || n > MAX_PAGE {
        return Err(ApiError::bad_request(OciCode::InvalidRequest, format!("n must be 1 to {MAX_PAGE}")));
    }
    let filter = DeliveryFilter { endpoint: q.endpoint, state, after_id: q.cursor };
    let rows = registry.event_deliveries(filter, n).await?;
    let next_cursor = if rows.len() == n as usize { rows.last().map(|d| d.audit_id) } else { None };
    Ok(HttpResponse::Ok().json(DeliveryPage { deliveries: rows.into_iter().map(render).collect(), next_cursor }))
}

/// One event by id, or the audit ids `from..=to`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayBody {
    endpoint: String,
    /// An event id (audit entry hash).
    event: Option<String>,
    from: Option<i64>,
    to: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayResult {
    /// Deliveries put back in the endpoint's queue.
    replayed: u64,
}

/// `POST /api/v1/events/replay` — sends events to an endpoint again,
/// dead letters included.
#[utoipa::path(
    post,
    path = "/api/v1/events/replay",
    operation_id = "replay_events",
    tag = "events",
    request_body = ReplayBody,
    responses(
        (status = 200, description = "The deliveries now pending again", body = ReplayResult),
        (status = 400, description = "Unknown endpoint or event, or a bad range", body = ErrorEnvelope),
    )
)]
pub async fn replay(req: HttpRequest, body: web::Json<ReplayBody>, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    require_global(&req, Action::Admin).await?;
    let b = body.into_inner();
    let target = match (b.event, b.from, b.to) {
        (Some(id), None, None) => ReplayTarget::Event(id),
        (None, Some(from), Some(to)) => ReplayTarget::Range { from, to },
        _ => return Err(ApiError::bad_request(OciCode::InvalidRequest, "give either event, or both from and to")),
    };
    let replayed = registry.replay_events(&b.endpoint, target).await?;
    Ok(HttpResponse::Ok().json(ReplayResult { replayed }))
}
