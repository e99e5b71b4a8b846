//! The web console at `/ui/`: server-rendered HTML pages over the same
//! use-cases as the API, readable without JavaScript (htmx, vendored and
//! served from the binary, only adds partial updates).
//!
//! Layering: an edge beside `api`. It calls `registry`, `governance`,
//! `auth` and `observability` (the admin page's health), never `db`; every page and action checks the same grants as the
//! API through `Auth::permits`.
//!
//! Sessions: `POST /ui/login` checks the password under the registry's
//! failed-login limits and sets an `HttpOnly`, `SameSite=Strict` cookie
//! (`Secure` over TLS); the session lives in the database. Every POST
//! carries the session's CSRF token and is refused when the browser says it
//! comes from another site.

mod actions;
mod admin;
mod diff;
mod error;
mod manifest;
mod pages;
mod view;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use subtle::ConstantTimeEq;

use crate::auth::{Action, Auth, Identity};
pub use error::ConsoleError;

const COOKIE: &str = "wharf_console";
const HTMX: &[u8] = include_bytes!("static/htmx.min.js");
const HTMX_LICENSE: &[u8] = include_bytes!("static/htmx.LICENSE");
const CSS: &[u8] = include_bytes!("static/console.css");
/// Static files are named with the crate version, so a year-long cache never
/// serves a stale file after an upgrade.
pub(crate) const STATIC_PREFIX: &str = concat!("/ui/static/", env!("CARGO_PKG_VERSION"));

pub fn configure(cfg: &mut web::ServiceConfig) {
    // A browser pointed at the registry's address lands in the console, not on a JSON 404.
    cfg.route("/", web::get().to(home)).route("/ui", web::get().to(home)).service(
        web::scope("/ui")
            .app_data(web::FormConfig::default().limit(16 * 1024).error_handler(|e, _| ConsoleError::BadRequest(e.to_string()).into()))
            .route("/", web::get().to(home))
            .route("/static/{version}/{file}", web::get().to(static_file))
            .route("/login", web::get().to(actions::login_form))
            .route("/login", web::post().to(actions::login))
            .route("/logout", web::post().to(actions::logout))
            .route("/repositories", web::get().to(pages::repositories))
            .route("/audit", web::get().to(pages::audit))
            .route("/admin", web::get().to(admin::admin))
            .route("/r/{name:.+}/stages/{stage}", web::get().to(pages::stage))
            .route("/r/{name:.+}/diff", web::get().to(diff::diff))
            .route("/r/{name:.+}/manifests/{reference}", web::get().to(manifest::manifest))
            .route("/r/{name:.+}/confirm", web::get().to(actions::confirm))
            .route("/r/{name:.+}/promote", web::post().to(actions::promote))
            .route("/r/{name:.+}/rollback", web::post().to(actions::rollback))
            .route("/r/{name:.+}", web::get().to(pages::repository))
            .default_service(web::to(|| async { Err::<HttpResponse, _>(ConsoleError::NotFound("no such page".into())) })),
    );
}

async fn home() -> HttpResponse {
    see_other("/ui/repositories")
}

pub(crate) fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish()
}

async fn static_file(path: web::Path<(String, String)>) -> Result<HttpResponse, ConsoleError> {
    let (version, file) = path.into_inner();
    let (body, content_type) = match file.as_str() {
        "htmx.min.js" => (HTMX, "text/javascript; charset=utf-8"),
        "htmx.LICENSE" => (HTMX_LICENSE, "text/plain; charset=utf-8"),
        "console.css" => (CSS, "text/css; charset=utf-8"),
        _ => return Err(ConsoleError::NotFound(format!("no static file {file}"))),
    };
    if version != env!("CARGO_PKG_VERSION") {
        return Err(ConsoleError::NotFound(format!("no static file {version}/{file}")));
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .body(body))
}

/// Who is looking at a page: a logged-in user (with the session's form
/// token) or an anonymous visitor with the anonymous-pull grants.
pub(crate) struct Viewer {
    pub identity: Identity,
    pub csrf: Option<String>,
    pub cookie: Option<String>,
    auth: Auth,
}

impl Viewer {
    pub async fn of(req: &HttpRequest) -> Result<Self, ConsoleError> {
        let auth = auth(req)?;
        if let Some(cookie) = req.cookie(COOKIE) {
            if let Some(session) = auth.session(cookie.value()).await? {
                return Ok(Self { identity: session.identity, csrf: Some(session.csrf), cookie: Some(cookie.value().to_owned()), auth });
            }
        }
        Ok(Self { identity: auth.console_anonymous(), csrf: None, cookie: None, auth })
    }

    pub fn logged_in(&self) -> bool {
        self.csrf.is_some()
    }

    pub fn may(&self, action: &Action, repo: Option<&str>) -> bool {
        self.auth.permits(&self.identity, action, repo)
    }

    /// Allows `action` or refuses it as the API does: an anonymous visitor
    /// is asked to log in, a logged-in user gets 403 (and the refusal is in
    /// the audit log).
    pub async fn require(&self, req: &HttpRequest, action: Action, repo: Option<&str>) -> Result<crate::domain::Actor, ConsoleError> {
        let actor = self.identity.actor(&source(req));
        if self.may(&action, repo) {
            return Ok(actor);
        }
        if !self.logged_in() {
            return Err(ConsoleError::LoginRequired);
        }
        self.auth.record_denied(&actor, &action, repo).await?;
        Err(ConsoleError::Forbidden(format!(
            "{} may not {}{}",
            self.identity.name,
            action.describe(),
            repo.map(|r| format!(" in {r}")).unwrap_or_default()
        )))
    }

    /// A state-changing form: refused when the browser says it comes from
    /// another site, or when its token is not this session's.
    pub fn check_post(&self, req: &HttpRequest, token: &str) -> Result<(), ConsoleError> {
        same_origin(req)?;
        match &self.csrf {
            None => Err(ConsoleError::LoginRequired),
            Some(expected) if bool::from(expected.as_bytes().ct_eq(token.as_bytes())) => Ok(()),
            Some(_) => Err(ConsoleError::Forbidden("the form's CSRF token is missing or wrong; reload the page and try again".into())),
        }
    }
}

/// Refuses a request a browser marks as cross-site (`Sec-Fetch-Site`) or
/// whose `Origin` is not this host.
pub(crate) fn same_origin(req: &HttpRequest) -> Result<(), ConsoleError> {
    let value = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if value("sec-fetch-site").is_some_and(|s| s == "cross-site" || s == "same-site") {
        return Err(ConsoleError::Forbidden("cross-site form posts are refused".into()));
    }
    if let Some(origin) = value("origin") {
        let host = req.connection_info().host().to_owned();
        let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or(origin);
        if origin != "null" && origin_host != host {
            return Err(ConsoleError::Forbidden(format!("form posted from another origin ({origin})")));
        }
        if origin == "null" {
            return Err(ConsoleError::Forbidden("form posted from an opaque origin".into()));
        }
    }
    Ok(())
}

pub(crate) fn auth(req: &HttpRequest) -> Result<Auth, ConsoleError> {
    req.app_data::<web::Data<Auth>>()
        .map(|a| a.get_ref().clone())
        .ok_or_else(|| ConsoleError::Internal("access control is not configured".into()))
}

pub(crate) fn source(req: &HttpRequest) -> String {
    crate::server::client_addr(req)
}

/// The session cookie: `Secure` when the console is served over TLS.
pub(crate) fn session_cookie(req: &HttpRequest, value: String, max_age_secs: i64) -> Cookie<'static> {
    let secure = req.connection_info().scheme() == "https";
    Cookie::build(COOKIE, value)
        .path("/ui")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age_secs))
        .finish()
}
