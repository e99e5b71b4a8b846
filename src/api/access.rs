//! Access control at the edge: who is calling (read once per request from
//! the `Authorization` header) and whether they may do what the handler is
//! about to do. Every handler calls [`require`] (or [`require_global`])
//! before touching a use-case; a refusal is 401 with the token challenge
//! (no or insufficient credentials) or 403 DENIED, recorded in the audit log.

use actix_web::http::header;
use actix_web::{web, HttpMessage, HttpRequest};

use super::request::header as header_value;
use super::ApiError;
use crate::auth::{Action, Auth, AuthError, Identity};
use crate::domain::{Actor, RepoName};

/// The caller's address as recorded in logs and the audit log.
pub fn source(req: &HttpRequest) -> String {
    crate::server::client_addr(req)
}

fn auth(req: &HttpRequest) -> Result<&Auth, ApiError> {
    req.app_data::<web::Data<Auth>>().map(|a| a.get_ref()).ok_or_else(|| ApiError::internal("access control is not configured"))
}

/// `<scheme>://<host>/auth/token`, or the configured realm.
pub fn realm(req: &HttpRequest, auth: &Auth) -> String {
    match auth.realm() {
        Some(base) => format!("{}/auth/token", base.trim_end_matches('/')),
        None => {
            let info = req.connection_info();
            format!("{}://{}/auth/token", info.scheme(), info.host())
        }
    }
}

/// The scope string a token needs for `action` (registry actions only).
fn scope_for(action: &Action, repo: Option<&RepoName>) -> Option<String> {
    let word = action.scope_word()?;
    // Docker asks for pull and push together when it pushes.
    let words = if word == "push" { "pull,push" } else { word };
    repo.map(|r| format!("repository:{r}:{words}"))
}

/// 401 with the challenge a client answers by logging in: the Docker token
/// challenge on the registry API, Basic on the management API.
fn challenge(req: &HttpRequest, auth: &Auth, message: String, scope: Option<String>) -> ApiError {
    let value = if req.path().starts_with("/v2") {
        let mut v = format!("Bearer realm=\"{}\",service=\"{}\"", realm(req, auth), auth.service());
        if let Some(scope) = scope {
            v.push_str(&format!(",scope=\"{scope}\""));
        }
        v
    } else {
        format!("Basic realm=\"{}\"", auth.service())
    };
    ApiError::unauthorized(message).with_header(header::WWW_AUTHENTICATE, &value)
}

/// 401 asking for a token with `scope`.
pub fn challenge_for(req: &HttpRequest, message: &str, scope: &str) -> ApiError {
    match auth(req) {
        Ok(auth) => challenge(req, auth, message.to_owned(), Some(scope.to_owned())),
        Err(e) => e,
    }
}

/// The caller, authenticated once per request and cached on it.
pub async fn identity(req: &HttpRequest) -> Result<Identity, ApiError> {
    if let Some(id) = req.extensions().get::<Identity>() {
        return Ok(id.clone());
    }
    let auth = auth(req)?;
    let id = match auth.authenticate(header_value(req, header::AUTHORIZATION), &source(req)).await {
        Ok(id) => id,
        Err(AuthError::Unauthenticated(message)) => return Err(challenge(req, auth, message, None)),
        Err(e) => return Err(e.into()),
    };
    req.extensions_mut().insert(id.clone());
    Ok(id)
}

/// Allows `action` on `repo` or answers 401/403; returns who acts.
pub async fn require(req: &HttpRequest, action: Action, repo: Option<&RepoName>) -> Result<Actor, ApiError> {
    let auth = auth(req)?;
    let id = identity(req).await?;
    let actor = id.actor(&source(req));
    let repo_name = repo.map(RepoName::as_str);
    if !auth.permits(&id, &action, repo_name) {
        if !id.authenticated {
            return Err(challenge(req, auth, format!("authentication required to {}", action.describe()), scope_for(&action, repo)));
        }
        auth.record_denied(&actor, &action, repo_name).await?;
        return Err(ApiError::denied(format!(
            "{} may not {}{}",
            id.name,
            action.describe(),
            repo_name.map(|r| format!(" in {r}")).unwrap_or_default()
        )));
    }
    if !auth.token_covers(&id, &action, repo_name) {
        // Docker asks for a new token with the scope the challenge names.
        return Err(challenge(req, auth, "the token does not cover this request".into(), scope_for(&action, repo)));
    }
    Ok(actor)
}

/// Like [`require`], for actions that concern no single repository.
pub async fn require_global(req: &HttpRequest, action: Action) -> Result<Actor, ApiError> {
    require(req, action, None).await
}

/// `GET /v2/` and the catalog: any valid credentials (a password, a robot
/// token, or a bearer token, even an anonymous one) when auth is on.
pub async fn require_login(req: &HttpRequest, scope: Option<&str>) -> Result<Identity, ApiError> {
    let auth = auth(req)?;
    let id = identity(req).await?;
    if auth.enabled() && !id.authenticated && id.token_access.is_none() {
        return Err(challenge(req, auth, "authentication required".into(), scope.map(str::to_owned)));
    }
    Ok(id)
}

/// Whether the caller may pull `repo` (filters the catalog).
pub fn may_pull(req: &HttpRequest, id: &Identity, repo: &str) -> bool {
    auth(req).is_ok_and(|auth| auth.permits(id, &Action::Pull, Some(repo)))
}

/// Whether the caller may mount from any repository without naming it:
/// only when it may read everything (or auth is off).
pub fn may_mount_anonymously(id: &Identity) -> bool {
    id.permissions.superuser
}
