//! The one place errors become HTTP: status, OCI error code and the envelope
//! `{"errors":[{"code","message","detail"}]}`.
//!
//! Internal failures (database, storage) are logged with their cause; the
//! client only sees a generic message.

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::auth::AuthError;
use crate::diff::LayerError;
use crate::domain::{InvalidDiffInput, InvalidInput};
use crate::registry::diff::DiffError;
use crate::registry::RegistryError;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    detail: serde_json::Value,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), detail: serde_json::Value::Null, headers: vec![] }
    }

    pub fn with_header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "UNSUPPORTED", "no such endpoint")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", "method not allowed on this endpoint")
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }

    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "DENIED", message)
    }

    /// A server-side fault: logged with its cause, generic to the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", "internal error; see the server log")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        for (name, value) in &self.headers {
            response.insert_header((name.clone(), value.clone()));
        }
        response.json(json!({"errors": [{"code": self.code, "message": self.message, "detail": self.detail}]}))
    }
}

impl From<InvalidInput> for ApiError {
    fn from(e: InvalidInput) -> Self {
        let code = match e {
            InvalidInput::Name(_) => "NAME_INVALID",
            InvalidInput::Tag(_) => "MANIFEST_INVALID",
            InvalidInput::Digest(_) => "DIGEST_INVALID",
        };
        Self::bad_request(code, e.to_string())
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        use RegistryError as E;
        let (status, code) = match &e {
            E::Invalid(invalid) => return invalid.clone().into(),
            E::NameUnknown(_) => (StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
            E::BlobUnknown(_) => (StatusCode::NOT_FOUND, "BLOB_UNKNOWN"),
            E::UploadUnknown(_) => (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"),
            E::UploadInvalid(_) | E::Body(_) => (StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID"),
            E::RangeInvalid { .. } => (StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID"),
            E::RangeNotSatisfiable { size } => {
                return Self::new(StatusCode::RANGE_NOT_SATISFIABLE, "SIZE_INVALID", e.to_string())
                    .with_header(actix_web::http::header::CONTENT_RANGE, &format!("bytes */{size}"))
            }
            E::DigestMismatch { .. } => (StatusCode::BAD_REQUEST, "DIGEST_INVALID"),
            E::ManifestUnknown(_) => (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"),
            E::ManifestInvalid(_) => (StatusCode::BAD_REQUEST, "MANIFEST_INVALID"),
            E::ManifestBlobUnknown(_) => (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN"),
            E::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID"),
            E::DeleteDisabled => (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED"),
            E::Denied(_) => (StatusCode::FORBIDDEN, "DENIED"),
            E::StageUnknown { .. } => (StatusCode::NOT_FOUND, "STAGE_UNKNOWN"),
            E::PromotionDenied { failed, .. } => {
                let mut api = Self::new(StatusCode::CONFLICT, "PROMOTION_DENIED", e.to_string());
                api.detail = serde_json::json!({ "failed_gates": failed });
                return api;
            }
            E::RollbackDenied(_) => (StatusCode::CONFLICT, "ROLLBACK_DENIED"),
            E::BadRequest(_) => (StatusCode::BAD_REQUEST, "INVALID_REQUEST"),
            E::Busy(_) => {
                return Self::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", e.to_string())
                    .with_header(actix_web::http::header::RETRY_AFTER, "1")
            }
            E::Storage(_) | E::Db(_) => return Self::internal(e),
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        use AuthError as E;
        let (status, code) = match &e {
            // Handlers turn this into a challenge; this is the fallback.
            E::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            E::TooManyAttempts { retry_after_secs } => {
                return Self::new(StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS", e.to_string())
                    .with_header(actix_web::http::header::RETRY_AFTER, &retry_after_secs.to_string())
            }
            E::Forbidden(_) => (StatusCode::FORBIDDEN, "DENIED"),
            E::Invalid(_) => (StatusCode::BAD_REQUEST, "INVALID_REQUEST"),
            E::Conflict(_) => (StatusCode::CONFLICT, "CONFLICT"),
            E::NotFound(_) => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            E::Db(_) | E::Setup(_) => return Self::internal(e),
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<InvalidDiffInput> for ApiError {
    fn from(e: InvalidDiffInput) -> Self {
        match e {
            InvalidDiffInput::Input(invalid) => invalid.into(),
            InvalidDiffInput::Release(_) | InvalidDiffInput::Platform(_) => Self::bad_request("INVALID_REQUEST", e.to_string()),
        }
    }
}

impl From<DiffError> for ApiError {
    fn from(e: DiffError) -> Self {
        use DiffError as E;
        let e = match e {
            E::Registry(inner) => return inner.into(),
            other => other,
        };
        let (status, code) = match &e {
            E::Registry(_) => return Self::internal(e),
            // The layer's bytes are there but not a tar Wharf will read.
            E::Layer { source: LayerError::Source(_), .. } | E::IndexCorrupt(..) | E::Task(_) => return Self::internal(e),
            E::Layer { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "LAYER_INVALID"),
            E::ConfigInvalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "CONFIG_INVALID"),
            E::PlatformRequired { .. } => (StatusCode::BAD_REQUEST, "PLATFORM_REQUIRED"),
            E::PlatformUnknown { .. } => (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"),
            E::NotAnImage { .. } => (StatusCode::BAD_REQUEST, "MANIFEST_INVALID"),
        };
        Self::new(status, code, e.to_string())
    }
}
