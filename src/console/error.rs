//! The console's errors, rendered as HTML pages with the matching status.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use crate::auth::AuthError;
use crate::registry::RegistryError;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("log in to see this page")]
    LoginRequired,
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    /// A promotion gate or a rollback rule said no.
    #[error("{0}")]
    Refused(String),
    #[error("too many failed logins; try again in {0} seconds")]
    TooManyAttempts(u64),
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    Internal(String),
}

impl From<RegistryError> for ConsoleError {
    fn from(e: RegistryError) -> Self {
        use RegistryError as E;
        match e {
            E::NameUnknown(_) | E::ManifestUnknown(_) | E::BlobUnknown(_) | E::StageUnknown { .. } => Self::NotFound(e.to_string()),
            E::Invalid(_) | E::BadRequest(_) => Self::BadRequest(e.to_string()),
            E::PromotionDenied { .. } | E::RollbackDenied(_) => Self::Refused(e.to_string()),
            E::Denied(_) => Self::Forbidden(e.to_string()),
            E::Busy(_) => Self::Busy(e.to_string()),
            other => {
                tracing::error!(error = %other, "console request failed");
                Self::Internal("the registry could not answer; see the server log".into())
            }
        }
    }
}

impl From<AuthError> for ConsoleError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated(m) => Self::Unauthenticated(m),
            AuthError::TooManyAttempts { retry_after_secs } => Self::TooManyAttempts(retry_after_secs),
            AuthError::Forbidden(m) => Self::Forbidden(m),
            AuthError::Invalid(m) => Self::BadRequest(m),
            AuthError::NotFound(m) => Self::NotFound(m),
            other => {
                tracing::error!(error = %other, "console request failed");
                Self::Internal("access control could not answer; see the server log".into())
            }
        }
    }
}

impl From<askama::Error> for ConsoleError {
    fn from(e: askama::Error) -> Self {
        tracing::error!(error = %e, "console template failed");
        Self::Internal("the page could not be rendered".into())
    }
}

#[derive(Template)]
#[template(path = "error.html", config = "src/console/askama.toml")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: String,
    login: bool,
    static_prefix: &'a str,
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::LoginRequired | Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Refused(_) => StatusCode::CONFLICT,
            Self::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let page = ErrorPage {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error"),
            message: self.to_string(),
            login: matches!(self, Self::LoginRequired | Self::Unauthenticated(_)),
            static_prefix: super::STATIC_PREFIX,
        };
        let body = page.render().unwrap_or_else(|_| self.to_string());
        let mut response = HttpResponse::build(status);
        if let Self::TooManyAttempts(secs) = self {
            response.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        response.insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8")).body(body)
    }
}
