//! Login, logout, and the state-changing forms: promote and roll back, each
//! behind a confirmation page, each checking the same grants as the API.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::pages::{html, repo_name};
use super::view::{q, Nav};
use super::{same_origin, see_other, session_cookie, ConsoleError, Viewer};
use crate::auth::sessions::SESSION_TTL_MS;
use crate::auth::Action;
use crate::domain::Reference;
use crate::registry::promotion::PromotionRequest;
use crate::registry::Registry;

#[derive(Template)]
#[template(path = "login.html", config = "src/console/askama.toml")]
struct LoginPage {
    nav: Nav,
    user: String,
    message: String,
}

/// `GET /ui/login`.
pub async fn login_form(req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let viewer = Viewer::of(&req).await?;
    Ok(html(LoginPage { nav: Nav::new(&viewer), user: String::new(), message: String::new() }.render()?))
}

#[derive(Deserialize)]
pub struct LoginForm {
    user: String,
    password: String,
}

/// `POST /ui/login`: a session for a valid password; the form again (401)
/// for a wrong one. Failures count against the registry's login limits.
pub async fn login(req: HttpRequest, form: web::Form<LoginForm>) -> Result<HttpResponse, ConsoleError> {
    same_origin(&req)?;
    let auth = super::auth(&req)?;
    match auth.start_session(form.user.trim(), &form.password, &super::source(&req)).await {
        Ok(session) => Ok(HttpResponse::SeeOther()
            .insert_header(("location", "/ui/repositories"))
            .cookie(session_cookie(&req, session.cookie, SESSION_TTL_MS / 1000))
            .finish()),
        Err(crate::auth::AuthError::Unauthenticated(message)) => {
            let viewer = Viewer::of(&req).await?;
            let page = LoginPage { nav: Nav::new(&viewer), user: form.user.clone(), message };
            Ok(HttpResponse::Unauthorized().content_type("text/html; charset=utf-8").body(page.render()?))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /ui/logout`: ends the session in the database and drops the cookie.
pub async fn logout(req: HttpRequest, form: web::Form<CsrfForm>) -> Result<HttpResponse, ConsoleError> {
    let viewer = Viewer::of(&req).await?;
    viewer.check_post(&req, &form.csrf)?;
    if let Some(cookie) = &viewer.cookie {
        super::auth(&req)?.end_session(cookie).await?;
    }
    Ok(HttpResponse::SeeOther().insert_header(("location", "/ui/login")).cookie(session_cookie(&req, String::new(), 0)).finish())
}

#[derive(Deserialize)]
pub struct ConfirmQuery {
    action: String,
    stage: String,
    /// For a promotion: the tag or digest to promote.
    #[serde(default)]
    reference: String,
    /// For a rollback: the release to restore.
    to_sequence: Option<i64>,
}

#[derive(Template)]
#[template(path = "confirm.html", config = "src/console/askama.toml")]
struct ConfirmPage {
    nav: Nav,
    name: String,
    name_q: String,
    promote: bool,
    stage: String,
    reference: String,
    to_sequence: i64,
}

/// `GET /ui/r/<name>/confirm?action=promote|rollback&...`: what will happen,
/// and the button that does it. Shown only to those allowed to.
pub async fn confirm(req: HttpRequest, path: web::Path<String>, query: web::Query<ConfirmQuery>) -> Result<HttpResponse, ConsoleError> {
    let viewer = Viewer::of(&req).await?;
    let repo = repo_name(&path)?;
    let promote = match query.action.as_str() {
        "promote" => true,
        "rollback" => false,
        other => return Err(ConsoleError::BadRequest(format!("unknown action {other:?}; promote or rollback"))),
    };
    let action = if promote { Action::Promote(query.stage.clone()) } else { Action::Rollback(query.stage.clone()) };
    viewer.require(&req, action, Some(repo.as_str())).await?;
    let page = ConfirmPage {
        nav: Nav::new(&viewer),
        name: repo.to_string(),
        name_q: q(repo.as_str()),
        promote,
        stage: query.stage.clone(),
        reference: query.reference.clone(),
        to_sequence: query.to_sequence.unwrap_or(0),
    };
    Ok(html(page.render()?))
}

#[derive(Deserialize)]
pub struct PromoteForm {
    #[serde(default)]
    csrf: String,
    stage: String,
    reference: String,
}

/// `POST /ui/r/<name>/promote`.
pub async fn promote(
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<PromoteForm>,
    registry: web::Data<Registry>,
) -> Result<HttpResponse, ConsoleError> {
    let viewer = Viewer::of(&req).await?;
    viewer.check_post(&req, &form.csrf)?;
    let repo = repo_name(&path)?;
    let actor = viewer.require(&req, Action::Promote(form.stage.clone()), Some(repo.as_str())).await?;
    let reference = Reference::parse(form.reference.trim()).map_err(|e| ConsoleError::BadRequest(format!("reference: {e}")))?;
    let request =
        PromotionRequest { reference, stage: form.stage.clone(), version: None, note: Some("promoted from the web console".into()) };
    registry.promote(&actor, &repo, request).await?;
    Ok(see_other(&format!("/ui/r/{repo}")))
}

#[derive(Deserialize)]
pub struct RollbackForm {
    #[serde(default)]
    csrf: String,
    stage: String,
    to_sequence: Option<i64>,
}

/// `POST /ui/r/<name>/rollback`.
pub async fn rollback(
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<RollbackForm>,
    registry: web::Data<Registry>,
) -> Result<HttpResponse, ConsoleError> {
    let viewer = Viewer::of(&req).await?;
    viewer.check_post(&req, &form.csrf)?;
    let repo = repo_name(&path)?;
    let actor = viewer.require(&req, Action::Rollback(form.stage.clone()), Some(repo.as_str())).await?;
    registry.rollback(&actor, &repo, &form.stage, form.to_sequence.filter(|s| *s > 0)).await?;
    Ok(see_other(&format!("/ui/r/{repo}/stages/{}", form.stage)))
}
