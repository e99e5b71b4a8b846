//! The token endpoint of the Docker registry auth protocol: docker, podman,
//! containerd, skopeo and crane follow the `/v2/` challenge here with Basic
//! credentials (or none, for anonymous pull) and get a short-lived token
//! granting only the requested actions the caller may have.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::access::source;
use super::request::header as header_value;
use super::{ApiError, OciCode};
use crate::auth::{Auth, AuthError, Identity};

/// The query string and form bodies are small; a larger one is refused.
const MAX_PARAMS_BYTES: usize = 16 * 1024;

fn params(raw: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    if raw.len() > MAX_PARAMS_BYTES {
        return Err(ApiError::bad_request(OciCode::InvalidRequest, format!("parameters over {MAX_PARAMS_BYTES} bytes")));
    }
    Ok(url::form_urlencoded::parse(raw).into_owned().collect())
}

fn unauthorized(auth: &Auth, e: AuthError) -> ApiError {
    match e {
        AuthError::Unauthenticated(message) => {
            ApiError::unauthorized(message).with_header(header::WWW_AUTHENTICATE, &format!("Basic realm=\"{}\"", auth.service()))
        }
        other => other.into(),
    }
}

async fn issue(auth: &Auth, id: Result<Identity, AuthError>, scopes: Vec<String>) -> Result<HttpResponse, ApiError> {
    let id = id.map_err(|e| unauthorized(auth, e))?;
    let token = auth.issue_token(&id, &scopes).await?;
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(token))
}

/// `GET /auth/token?service=wharf&scope=repository:<name>:pull,push&scope=...`
/// with optional Basic credentials — `{"token","access_token","expires_in","issued_at"}`.
pub async fn get(req: HttpRequest, auth: web::Data<Auth>) -> Result<HttpResponse, ApiError> {
    let scopes = params(req.query_string().as_bytes())?.into_iter().filter(|(k, _)| k == "scope").map(|(_, v)| v).collect();
    let id = auth.authenticate(header_value(&req, header::AUTHORIZATION), &source(&req)).await;
    issue(&auth, id, scopes).await
}

/// `POST /auth/token` (OAuth2 form: `grant_type=password&username=&password=&scope=`),
/// which containerd tries first. Refresh tokens are not issued.
pub async fn post(req: HttpRequest, body: web::Bytes, auth: web::Data<Auth>) -> Result<HttpResponse, ApiError> {
    let form = params(&body)?;
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let scopes = form.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.clone()).collect();
    let id = match field("grant_type").as_deref() {
        Some("password") => {
            let (user, password) = (field("username").unwrap_or_default(), field("password").unwrap_or_default());
            if auth.enabled() {
                auth.login(&user, &password, &source(&req)).await
            } else {
                // Auth off: everyone acts as the anonymous superuser, as on GET.
                auth.authenticate(None, &source(&req)).await
            }
        }
        Some(other) => {
            return Err(ApiError::bad_request(OciCode::Unsupported, format!("grant_type {other:?} is not supported; use password")))
        }
        None => auth.authenticate(header_value(&req, header::AUTHORIZATION), &source(&req)).await,
    };
    issue(&auth, id, scopes).await
}
