//! Governance API under `/api/v1`: promotions, rollback, stage and tag
//! history, audit log. JSON in and out; errors use the same envelope as the
//! registry API.

// Visible to `api::openapi`, which lists their handlers.
pub(super) mod audit;
pub(super) mod maintenance;
pub(super) mod releases;

use actix_web::web;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::ReleaseRow;
use crate::registry::signatures::RecordedVerdict;

/// Routes inside the `/api/v1` scope.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit", web::get().to(audit::list))
        .route("/audit/verify", web::get().to(audit::verify))
        .route("/retention/policies", web::get().to(maintenance::policies))
        .route("/retention/plan", web::get().to(maintenance::plan))
        .route("/retention/runs", web::post().to(maintenance::run))
        .route("/gc/runs", web::post().to(maintenance::gc))
        .route("/repositories/{name:.+}/promotions", web::post().to(releases::promote))
        .route("/repositories/{name:.+}/stages", web::get().to(releases::stages))
        .route("/repositories/{name:.+}/stages/{stage}/rollback", web::post().to(releases::rollback))
        .route("/repositories/{name:.+}/stages/{stage}/releases", web::get().to(releases::list))
        .route("/repositories/{name:.+}/tags/{tag}/history", web::get().to(releases::tag_history));
}

pub(crate) fn time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A release: one entry of a stage's append-only history.
// Not closed with `deny_unknown_fields` (additionalProperties: false):
// `PromotionResult` extends it with `unchanged`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Release {
    repository: String,
    stage: String,
    /// 1, 2, ... per repository and stage.
    sequence: i64,
    digest: String,
    version: Option<String>,
    note: Option<String>,
    /// The account that promoted or rolled back.
    actor: String,
    /// RFC 3339, UTC.
    #[schema(format = DateTime)]
    created_at: String,
    /// `promote` or `rollback`.
    reason: String,
    /// For a rollback: the sequence that was current before it.
    rolled_back_from: Option<i64>,
    /// For a rollback: the sequence whose digest it made current again.
    restored_sequence: Option<i64>,
    /// The signature gate's verdict, for a release of a stage that requires
    /// signatures (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<ReleaseSignature>,
}

/// Who signed a released digest, verified when it entered the stage.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReleaseSignature {
    /// RFC 3339, UTC: when the signatures were verified.
    #[schema(format = DateTime)]
    verified_at: String,
    signers: Vec<ReleaseSigner>,
    /// SBOM referrers found by the `require_sbom` gate.
    sboms: Vec<String>,
    /// For a rollback: the release whose verdict was re-used (not re-verified).
    reused_from_sequence: Option<i64>,
    /// A signer's key has been revoked since: what runs did not change, but
    /// the release deserves a look.
    signed_by_revoked_key: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReleaseSigner {
    /// The trusted key's configured name.
    key: String,
    /// `sha256:` of the key's DER SubjectPublicKeyInfo.
    fingerprint: String,
    /// `ecdsa-p256`, `ed25519` or `rsa`.
    algorithm: String,
    /// The signed digest (the release's, or one platform manifest's).
    subject: String,
    /// The signature manifest that carried the signature.
    signature_manifest: String,
    /// The key is configured as revoked now.
    revoked: bool,
}

impl ReleaseSignature {
    fn new(r: &RecordedVerdict) -> Self {
        let v = &r.verdict;
        Self {
            verified_at: time(v.verified_at),
            signers: v
                .signers
                .iter()
                .map(|s| ReleaseSigner {
                    key: s.key.clone(),
                    fingerprint: s.fingerprint.clone(),
                    algorithm: s.algorithm.clone(),
                    subject: s.subject.clone(),
                    signature_manifest: s.signature_manifest.clone(),
                    revoked: r.revoked.contains(&s.fingerprint),
                })
                .collect(),
            sboms: v.sboms.clone(),
            reused_from_sequence: v.reused_from_sequence,
            signed_by_revoked_key: !r.revoked.is_empty(),
        }
    }
}

impl Release {
    pub(crate) fn new(repository: &str, r: &ReleaseRow) -> Self {
        Self {
            repository: repository.to_owned(),
            stage: r.stage.to_string(),
            sequence: r.sequence,
            digest: r.digest.to_string(),
            version: r.version.clone(),
            note: r.note.clone(),
            actor: r.actor.clone(),
            created_at: time(r.created_at),
            reason: r.reason.to_string(),
            rolled_back_from: r.rolled_back_from,
            restored_sequence: r.restored_sequence,
            signature: None,
        }
    }

    /// The release with its recorded signature verdict, if any.
    pub(crate) fn with_verdict(mut self, verdict: Option<&RecordedVerdict>) -> Self {
        self.signature = verdict.map(ReleaseSignature::new);
        self
    }
}
