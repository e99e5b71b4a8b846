//! The one place errors become HTTP: status, OCI error code and the envelope
//! `{"errors":[{"code","message","detail"}]}`.
//!
//! Every code Wharf answers with is an [`OciCode`], each with its usual HTTP
//! status and a description, the way CNCF distribution's error-code registry
//! (`registry/api/errcode`) lists them; no other file spells a code.
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

/// Declares the code registry: variant, wire code, usual status, description.
macro_rules! oci_codes {
    ($($variant:ident => $code:literal, $status:ident, $description:literal;)*) => {
        /// An error code of the OCI Distribution spec, or one of Wharf's own
        /// (governance, accounts, diff), as it appears in the error envelope.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum OciCode {
            $(#[doc = $description] $variant,)*
        }

        impl OciCode {
            /// Every code, for documentation and tests.
            pub const ALL: &'static [OciCode] = &[$(OciCode::$variant),*];

            /// The code as it appears on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(OciCode::$variant => $code,)*
                }
            }

            /// The status this code is answered with unless the mapping says otherwise.
            pub const fn status(self) -> StatusCode {
                match self {
                    $(OciCode::$variant => StatusCode::$status,)*
                }
            }

            /// What the code means, in one sentence.
            pub const fn description(self) -> &'static str {
                match self {
                    $(OciCode::$variant => $description,)*
                }
            }
        }
    };
}

oci_codes! {
    // The OCI Distribution spec's codes.
    BlobUnknown => "BLOB_UNKNOWN", NOT_FOUND, "blob unknown to registry";
    BlobUploadInvalid => "BLOB_UPLOAD_INVALID", BAD_REQUEST, "blob upload invalid";
    BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN", NOT_FOUND, "blob upload unknown to registry";
    DigestInvalid => "DIGEST_INVALID", BAD_REQUEST, "provided digest did not match uploaded content";
    ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN", BAD_REQUEST, "manifest references a manifest or blob unknown to registry";
    ManifestInvalid => "MANIFEST_INVALID", BAD_REQUEST, "manifest invalid";
    ManifestUnknown => "MANIFEST_UNKNOWN", NOT_FOUND, "manifest unknown to registry";
    NameInvalid => "NAME_INVALID", BAD_REQUEST, "invalid repository name";
    NameUnknown => "NAME_UNKNOWN", NOT_FOUND, "repository name not known to registry";
    SizeInvalid => "SIZE_INVALID", BAD_REQUEST, "provided length did not match content length";
    Unauthorized => "UNAUTHORIZED", UNAUTHORIZED, "authentication required";
    Denied => "DENIED", FORBIDDEN, "requested access to the resource is denied";
    Unsupported => "UNSUPPORTED", METHOD_NOT_ALLOWED, "the operation is unsupported";
    TooManyRequests => "TOOMANYREQUESTS", TOO_MANY_REQUESTS, "too many requests";
    // distribution's generic codes.
    Unknown => "UNKNOWN", INTERNAL_SERVER_ERROR, "unknown error";
    Unavailable => "UNAVAILABLE", SERVICE_UNAVAILABLE, "service unavailable";
    // Wharf's own: governance, accounts, requests outside the OCI API, diff.
    StageUnknown => "STAGE_UNKNOWN", NOT_FOUND, "stage not configured";
    PromotionDenied => "PROMOTION_DENIED", CONFLICT, "a promotion gate failed";
    RollbackDenied => "ROLLBACK_DENIED", CONFLICT, "the rollback target is not allowed";
    InvalidRequest => "INVALID_REQUEST", BAD_REQUEST, "the request is malformed";
    Conflict => "CONFLICT", CONFLICT, "the request conflicts with the current state";
    NotFound => "NOT_FOUND", NOT_FOUND, "no such resource";
    LayerInvalid => "LAYER_INVALID", UNPROCESSABLE_ENTITY, "a layer is not a readable tar archive";
    ConfigInvalid => "CONFIG_INVALID", UNPROCESSABLE_ENTITY, "an image config is not valid";
    PlatformRequired => "PLATFORM_REQUIRED", BAD_REQUEST, "an index needs a platform to be chosen";
}

impl std::fmt::Display for OciCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for OciCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The error envelope as JSON text, for answers written below actix.
pub fn envelope(code: OciCode, message: &str) -> String {
    json!({"errors": [{"code": code, "message": message, "detail": null}]}).to_string()
}

/// The answer to a request too malformed to reach the app (the transport
/// writes it in place of actix's bare 400: `server::malformed`).
pub fn malformed_request_body() -> String {
    envelope(
        OciCode::Unsupported,
        "malformed HTTP request: the request line or a header is not valid HTTP/1.1 \
         (bytes outside ASCII in a path must be percent-encoded)",
    )
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: OciCode,
    message: String,
    detail: serde_json::Value,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    /// `code` answered with its usual status.
    pub fn new(code: OciCode, message: impl Into<String>) -> Self {
        Self::with_status(code.status(), code, message)
    }

    /// `code` answered with another status than its usual one.
    pub fn with_status(status: StatusCode, code: OciCode, message: impl Into<String>) -> Self {
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

    pub fn code(&self) -> OciCode {
        self.code
    }

    pub fn not_found() -> Self {
        Self::with_status(StatusCode::NOT_FOUND, OciCode::Unsupported, "no such endpoint")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(OciCode::Unsupported, "method not allowed on this endpoint")
    }

    /// A 400 whatever the code's usual status.
    pub fn bad_request(code: OciCode, message: impl Into<String>) -> Self {
        Self::with_status(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(OciCode::Unauthorized, message)
    }

    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(OciCode::Denied, message)
    }

    /// A server-side fault: logged with its cause, generic to the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(OciCode::Unknown, "internal error; see the server log")
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
            InvalidInput::Name(_) => OciCode::NameInvalid,
            InvalidInput::Tag(_) => OciCode::ManifestInvalid,
            InvalidInput::Digest(_) => OciCode::DigestInvalid,
        };
        Self::bad_request(code, e.to_string())
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        use OciCode as C;
        use RegistryError as E;
        let code = match &e {
            E::Invalid(invalid) => return invalid.clone().into(),
            E::NameUnknown(_) => C::NameUnknown,
            E::BlobUnknown(_) => C::BlobUnknown,
            E::UploadUnknown(_) => C::BlobUploadUnknown,
            E::UploadInvalid(_) | E::Body(_) => C::BlobUploadInvalid,
            E::RangeInvalid { .. } => return Self::with_status(StatusCode::RANGE_NOT_SATISFIABLE, C::BlobUploadInvalid, e.to_string()),
            E::RangeNotSatisfiable { size } => {
                return Self::with_status(StatusCode::RANGE_NOT_SATISFIABLE, C::SizeInvalid, e.to_string())
                    .with_header(actix_web::http::header::CONTENT_RANGE, &format!("bytes */{size}"))
            }
            E::DigestMismatch { .. } => C::DigestInvalid,
            E::ManifestUnknown(_) => C::ManifestUnknown,
            E::ManifestInvalid(_) => C::ManifestInvalid,
            E::ManifestBlobUnknown(_) => C::ManifestBlobUnknown,
            E::TooLarge { .. } => return Self::with_status(StatusCode::PAYLOAD_TOO_LARGE, C::SizeInvalid, e.to_string()),
            E::DeleteDisabled => C::Unsupported,
            E::Denied(_) => C::Denied,
            E::StageUnknown { .. } => C::StageUnknown,
            E::PromotionDenied { failed, .. } => {
                let mut api = Self::new(C::PromotionDenied, e.to_string());
                api.detail = serde_json::json!({ "failed_gates": failed });
                return api;
            }
            E::RollbackDenied(_) => C::RollbackDenied,
            E::BadRequest(_) => C::InvalidRequest,
            E::Busy(_) => return Self::new(C::Unavailable, e.to_string()).with_header(actix_web::http::header::RETRY_AFTER, "1"),
            E::Storage(_) | E::Db(_) => return Self::internal(e),
        };
        Self::new(code, e.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        use AuthError as E;
        use OciCode as C;
        let code = match &e {
            // Handlers turn this into a challenge; this is the fallback.
            E::Unauthenticated(_) => C::Unauthorized,
            E::TooManyAttempts { retry_after_secs } => {
                return Self::new(C::TooManyRequests, e.to_string())
                    .with_header(actix_web::http::header::RETRY_AFTER, &retry_after_secs.to_string())
            }
            E::Forbidden(_) => C::Denied,
            E::Invalid(_) => C::InvalidRequest,
            E::Conflict(_) => C::Conflict,
            E::NotFound(_) => C::NotFound,
            E::Db(_) | E::Setup(_) => return Self::internal(e),
        };
        Self::new(code, e.to_string())
    }
}

impl From<InvalidDiffInput> for ApiError {
    fn from(e: InvalidDiffInput) -> Self {
        match e {
            InvalidDiffInput::Input(invalid) => invalid.into(),
            InvalidDiffInput::Release(_) | InvalidDiffInput::Platform(_) => Self::new(OciCode::InvalidRequest, e.to_string()),
        }
    }
}

impl From<DiffError> for ApiError {
    fn from(e: DiffError) -> Self {
        use DiffError as E;
        use OciCode as C;
        let e = match e {
            E::Registry(inner) => return inner.into(),
            other => other,
        };
        let code = match &e {
            E::Registry(_) => return Self::internal(e),
            // The layer's bytes are there but not a tar Wharf will read.
            E::Layer { source: LayerError::Source(_), .. } | E::IndexCorrupt(..) | E::Task(_) => return Self::internal(e),
            E::Layer { .. } => C::LayerInvalid,
            E::ConfigInvalid { .. } => C::ConfigInvalid,
            E::PlatformRequired { .. } => C::PlatformRequired,
            E::PlatformUnknown { .. } => C::ManifestUnknown,
            E::NotAnImage { .. } => C::ManifestInvalid,
        };
        Self::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_upper_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in OciCode::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
            assert!(code.as_str().chars().all(|c| c.is_ascii_uppercase() || c == '_'), "{code}");
            assert!(!code.description().is_empty());
        }
    }

    #[test]
    fn envelope_carries_the_code() {
        let json: serde_json::Value = serde_json::from_str(&envelope(OciCode::Unsupported, "x")).expect("json");
        assert_eq!(json["errors"][0]["code"], OciCode::Unsupported.as_str());
        assert_eq!(json["errors"][0]["detail"], serde_json::Value::Null);
    }
}
