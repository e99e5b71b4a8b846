//! Account management under `/api/v1`: users, robot accounts and grants.
//! Admins change them; auditors (and admins) read them.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::access::{identity, require_global, source};
use super::openapi::{
    AccountSchema, ErrorEnvelope, GrantListSchema, GrantSchema, NewRobotResultSchema, RobotListSchema, RotatedTokenSchema, UserListSchema,
};
use super::ApiError;
use crate::auth::{Action, Auth};

/// Robot accounts live at most this long when an expiry is asked for.
const MAX_ROBOT_DAYS: u64 = 3650;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    name: String,
    password: String,
    #[serde(default)]
    admin: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRobot {
    name: String,
    /// Lifetime in days; none: the robot does not expire.
    expires_in_days: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGrant {
    account: String,
    repository: String,
    role: String,
    #[serde(default)]
    stages: Vec<String>,
}

fn name_param(req: &HttpRequest) -> String {
    req.match_info().get("name").unwrap_or_default().to_owned()
}

/// `POST /api/v1/users` `{"name","password","admin"}` — 201 with the account.
#[utoipa::path(post, path = "/api/v1/users", tag = "accounts", request_body = NewUser, responses(
    (status = 201, description = "The new user", body = AccountSchema),
    (status = 400, description = "Invalid name or password", body = ErrorEnvelope),
    (status = 409, description = "The name is taken", body = ErrorEnvelope),
))]
pub async fn create_user(req: HttpRequest, body: web::Json<NewUser>, auth: web::Data<Auth>) -> Result<HttpResponse, ApiError> {
    let actor = require_global(&req, Action::Admin).await?;
    let account = auth.create_user(&actor, &body.name, &body.password, body.admin).await?;
    Ok(HttpResponse::Created().json(account))
}

/// `GET /api/v1/users`.
#[utoipa::path(get, path = "/api/v1/users", tag = "accounts", responses((status = 200, description = "Every user", body = UserListSchema)))]
pub async fn list_users(req: HttpRequest, auth: web::Data<Auth>) -> Result<HttpResponse, ApiError> {
    require_global(&req, Action::ReadAudit).await?;
    Ok(HttpResponse::Ok().json(json!({"users": auth.list_accounts("user").await?})))
}

/// `DELETE /api/v1/users/<name>` — 204; its grants go with it.
#[utoipa::path(delete, path = "/api/v1/users/{name}", tag = "accounts", params(("name" = String, Path, description = "User name")), responses(
    (status = 204, description = "Deleted, with its grants"),
    (status = 404, description = "No such user", body = ErrorEnvelope),
))]
pub async fn delete_user(req: HttpRequest, auth: web::Data<Auth>) -> Result<HttpResponse, ApiError> {
    let actor = require_global(&req, Action::Admin).await?;
    auth.delete_account(&actor, &name_param(&req), "user").await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/robots` `{"name","expires_in_days"}` — 201 with the
/// account and its `token`, shown this once.
#[utoipa::path(post, path = "/api/v1/robots", tag = "accounts", request_body = NewRobot, responses(
    (status = 201, description = "The new robot and its token, shown this once", body = NewRobotResultSchema),
    (status = 400, description = "Invalid name or lifetime", body = ErrorEnvelope),
    (status = 409, description = "The name is taken", body = ErrorEnvelope),
))]
pub async fn create_robot(req: HttpRequest, body: web::Json<NewRobot>, auth: web::Data<Auth>) -> Result<HttpResponse, ApiError> {
    let actor = require_global(&req, Action::Admin).await?;
    let expires_at = match body.expires_in_days {
        None => None,
        Some(days) if (1..=MAX_ROBOT_DAYS).contains(&days) => Some(crate::domain::now_ms() + (days * 86_400_000) as i64),
        Some(_) => return Err(ApiError::bad_request("INVALID_REQUEST", format!("expires_in_days must be 1 to {MAX_ROBOT_DAYS}"))),
    };
    let (account, token) = auth.create_robot(&actor, &body.name, expires_at).await?;
    Ok(HttpResponse::Created().json(json!({"account": account, "token": token})))
}

/// `GET /api/v1/robots`.
#[utoipa::path(get, path = "/api/v1/robots", tag = "accounts", responses((status = 200, description = "Every robot account", body = RobotListSchema)))]
pub async fn list_robots(req: HttpRequest, auth: web::Data<Auth>) -> Result<HttpResponse, ApiError> {
    require_global(&req, Action::ReadAudit).await?;
    Ok(HttpResponse::Ok().json(json!({"robots": auth.list_accounts("robot").await?})))
}

/// `DELETE /api/v1/robots/<name>` — 204.
#[utoipa::path(delete, path = "/api/v1/robots/{name}", tag = "accounts", params(("name" = String, Path, description = "Robot name")), responses(
    (status = 204, description = "Deleted, with its grants"),
    (status = 404, description = "No such robot", body = ErrorEnvelope),
))]
pub async fn delete_robot(req: HttpRequest, auth: web::Data<Auth>) -> Result<HttpResponse, ApiError> {
    let actor = require_global(&req, Action::Admin).await?;
    auth.delete_account(&actor, &name_param(&req), "robot").await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/grants` `{"account","repository","role","stages"}` — 201.
#[utoipa::path(post, path = "/api/v1/grants", tag = "accounts", request_body = NewGrant, responses(
    (status = 201, description = "The new grant", body = GrantSchema),
    (status = 400, description = "Invalid glob, role or stages", body = ErrorEnvelope),
    (status = 404, description = "No such account", body = ErrorEnvelope),
))]
pub async fn create_grant(req: HttpRequest, body: web::Json<NewGrant>, auth: web::Data<Auth>) -> Result<HttpResponse, ApiError> {
    let actor = require_global(&req, Action::Admin).await?;
    let body = body.into_inner();
    let grant = auth.create_grant(&actor, &body.account, &body.repository, &body.role, body.stages).await?;
    Ok(HttpResponse::Created().json(grant))
}

/// `GET /api/v1/grants`.
#[utoipa::path(get, path = "/api/v1/grants", tag = "accounts", responses((status = 200, description = "Every grant", body = GrantListSchema)))]
pub async fn list_grants(req: HttpRequest, auth: web::Data<Auth>) -> Result<HttpResponse, ApiError> {
    require_global(&req, Action::ReadAudit).await?;
    Ok(HttpResponse::Ok().json(json!({"grants": auth.list_grants().await?})))
}

/// `DELETE /api/v1/grants/<id>` — 204.
#[utoipa::path(delete, path = "/api/v1/grants/{id}", tag = "accounts", params(("id" = i64, Path, description = "Grant id")), responses(
    (status = 204, description = "Deleted"),
    (status = 404, description = "No such grant", body = ErrorEnvelope),
))]
pub async fn delete_grant(req: HttpRequest, auth: web::Data<Auth>) -> Result<HttpResponse, ApiError> {
    let actor = require_global(&req, Action::Admin).await?;
    let id: i64 = req
        .match_info()
        .get("id")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ApiError::bad_request("INVALID_REQUEST", "grant id must be a number"))?;
    auth.delete_grant(&actor, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    password: String,
}

/// Account lifecycle routes, mounted under `/api/v1` beside the ones above.
pub fn lifecycle_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/users/{name}/password", web::put().to(set_password))
        .route("/users/{name}/unlock", web::post().to(unlock_user))
        .route("/users/{name}/disable", web::post().to(disable_user))
        .route("/users/{name}/enable", web::post().to(enable_user))
        .route("/robots/{name}/token", web::post().to(rotate_robot))
        .route("/robots/{name}/disable", web::post().to(disable_robot))
        .route("/robots/{name}/enable", web::post().to(enable_robot));
}

/// `PUT /api/v1/users/<name>/password` `{"password"}` — 204. A user may set
/// their own; an admin anyone's. Bearer tokens issued before stop working.
#[utoipa::path(put, path = "/api/v1/users/{name}/password", tag = "accounts", request_body = NewPassword,
    params(("name" = String, Path, description = "User name")), responses(
    (status = 204, description = "Changed; bearer tokens issued before stop working"),
    (status = 400, description = "The password is too short or too long", body = ErrorEnvelope),
    (status = 403, description = "Not the user themself, nor an admin", body = ErrorEnvelope),
    (status = 404, description = "No such user", body = ErrorEnvelope),
))]
pub async fn set_password(req: HttpRequest, body: web::Json<NewPassword>, auth: web::Data<Auth>) -> Result<HttpResponse, ApiError> {
    let name = name_param(&req);
    let id = identity(&req).await?;
    let actor = match auth.enabled() && id.authenticated && id.name == name {
        true => id.actor(&source(&req)),
        false => require_global(&req, Action::Admin).await?,
    };
    auth.set_password(&actor, &name, &body.password).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/users/<name>/unlock` — 204: clears the failed-login
/// lock-out of the account from every source address (on this instance).
#[utoipa::path(post, path = "/api/v1/users/{name}/unlock", tag = "accounts", params(("name" = String, Path, description = "User name")), responses(
    (status = 204, description = "The lock-out is cleared"),
    (status = 404, description = "No such user", body = ErrorEnvelope),
))]
pub async fn unlock_user(req: HttpRequest, auth: web::Data<Auth>) -> Result<HttpResponse, ApiError> {
    let actor = require_global(&req, Action::Admin).await?;
    auth.unlock(&actor, &name_param(&req)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/robots/<name>/token` — 200 `{"username","token"}`: a new
/// token, shown this once; the old one stops working.
#[utoipa::path(post, path = "/api/v1/robots/{name}/token", tag = "accounts", params(("name" = String, Path, description = "Robot name")), responses(
    (status = 200, description = "The new token, shown this once; the old one stops working", body = RotatedTokenSchema),
    (status = 404, description = "No such robot", body = ErrorEnvelope),
))]
pub async fn rotate_robot(req: HttpRequest, auth: web::Data<Auth>) -> Result<HttpResponse, ApiError> {
    let actor = require_global(&req, Action::Admin).await?;
    let name = name_param(&req);
    let token = auth.rotate_robot_token(&actor, &name).await?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(json!({"username": name, "token": token})))
}

async fn set_disabled(req: HttpRequest, auth: web::Data<Auth>, kind: &'static str, disabled: bool) -> Result<HttpResponse, ApiError> {
    let actor = require_global(&req, Action::Admin).await?;
    auth.set_disabled(&actor, &name_param(&req), kind, disabled).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/users/<name>/disable` — 204: no login, tokens refused.
#[utoipa::path(post, path = "/api/v1/users/{name}/disable", tag = "accounts", params(("name" = String, Path, description = "User name")), responses(
    (status = 204, description = "Disabled: no login, its tokens are refused"),
    (status = 404, description = "No such user", body = ErrorEnvelope),
))]
pub async fn disable_user(req: HttpRequest, auth: web::Data<Auth>) -> Result<HttpResponse, ApiError> {
    set_disabled(req, auth, "user", true).await
}

/// `POST /api/v1/users/<name>/enable` — 204.
#[utoipa::path(post, path = "/api/v1/users/{name}/enable", tag = "accounts", params(("name" = String, Path, description = "User name")), responses(
    (status = 204, description = "Enabled"),
    (status = 404, description = "No such user", body = ErrorEnvelope),
))]
pub async fn enable_user(req: HttpRequest, auth: web::Data<Auth>) -> Result<HttpResponse, ApiError> {
    set_disabled(req, auth, "user", false).await
}

/// `POST /api/v1/robots/<name>/disable` — 204.
#[utoipa::path(post, path = "/api/v1/robots/{name}/disable", tag = "accounts", params(("name" = String, Path, description = "Robot name")), responses(
    (status = 204, description = "Disabled: no login, its tokens are refused"),
    (status = 404, description = "No such robot", body = ErrorEnvelope),
))]
pub async fn disable_robot(req: HttpRequest, auth: web::Data<Auth>) -> Result<HttpResponse, ApiError> {
    set_disabled(req, auth, "robot", true).await
}

/// `POST /api/v1/robots/<name>/enable` — 204.
#[utoipa::path(post, path = "/api/v1/robots/{name}/enable", tag = "accounts", params(("name" = String, Path, description = "Robot name")), responses(
    (status = 204, description = "Enabled"),
    (status = 404, description = "No such robot", body = ErrorEnvelope),
))]
pub async fn enable_robot(req: HttpRequest, auth: web::Data<Auth>) -> Result<HttpResponse, ApiError> {
    set_disabled(req, auth, "robot", false).await
}
