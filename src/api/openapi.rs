//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 description of the
//! governance and management API (`/api/v1`), generated from the handlers'
//! `#[utoipa::path]` annotations and the response types they serialize.
//!
//! Some responses are serialized from types of lower layers (accounts,
//! reports) that stay free of API concerns; their shapes are described here
//! by the `*Schema` types below. tests/openapi.rs compares every documented
//! endpoint's real answers with the document, so a drift fails the tests.

// The `*Schema` types and parameter structs describe JSON; they are never built.
#![allow(dead_code)]

use actix_web::HttpResponse;
use once_cell::sync::Lazy;
use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use super::{accounts, admin, diff, events, governance};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Wharf governance and management API",
        description = "Promotion through stages, rollback, release and tag history, the audit log, retention, \
                       garbage collection and accounts. The OCI Distribution API under /v2/ is specified by the OCI \
                       and not described here. Errors use the OCI envelope `{\"errors\":[{\"code\",\"message\",\"detail\"}]}`. \
                       With access control on, send Basic credentials or a bearer token from /auth/token."
    ),
    paths(
        governance::releases::promote,
        governance::releases::rollback,
        governance::releases::stages,
        governance::releases::list,
        governance::releases::tag_history,
        diff::get,
        governance::audit::list,
        governance::audit::verify,
        governance::maintenance::policies,
        governance::maintenance::plan,
        governance::maintenance::run,
        governance::maintenance::gc,
        events::list,
        events::replay,
        accounts::create_user,
        accounts::list_users,
        accounts::delete_user,
        accounts::create_robot,
        accounts::list_robots,
        accounts::delete_robot,
        accounts::create_grant,
        accounts::list_grants,
        accounts::delete_grant,
        accounts::set_password,
        accounts::unlock_user,
        accounts::disable_user,
        accounts::enable_user,
        accounts::rotate_robot,
        accounts::disable_robot,
        accounts::enable_robot,
        admin::get,
        admin::drain,
        admin::undrain,
        crate::observability::health::livez,
        crate::observability::health::readyz,
    ),
    modifiers(&Security),
    security((), ("basic" = []), ("bearer" = [])),
    tags(
        (name = "releases", description = "Promotion, rollback, stage and tag history"),
        (name = "diff", description = "What changed between two images: configuration, layers, files, packages"),
        (name = "audit", description = "The hash-chained audit log"),
        (name = "maintenance", description = "Retention and garbage collection"),
        (name = "accounts", description = "Users, robot accounts and grants"),
        (name = "events", description = "Webhook deliveries of durable events, dead letters and replay (admin only)"),
        (name = "operations", description = "Operating a node: the probes /livez and /readyz (no credentials) and the drain switch"),
    )
)]
pub struct ApiDoc;

/// Basic credentials, or a bearer token from `/auth/token`.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("basic", SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)));
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// Built once: the document only changes with the code.
static DOCUMENT: Lazy<String> = Lazy::new(|| ApiDoc::openapi().to_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")));

/// `GET /api/v1/openapi.json` — readable without credentials, like `/v2/`.
pub async fn document() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(DOCUMENT.as_str())
}

// ---------------------------------------------------------------------------
// Parameters shared by several paths
// ---------------------------------------------------------------------------

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct RepoParam {
    /// Repository name; it may contain `/`, sent as is (not percent-encoded).
    name: String,
}

/// Handlers read these through `request::PageQuery`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageParams {
    /// Page size (capped by the server).
    n: Option<u32>,
    /// The last item of the previous page (from the `Link` header).
    last: Option<String>,
}

// ---------------------------------------------------------------------------
// Shapes of answers serialized by other layers (see the module doc)
// ---------------------------------------------------------------------------

/// The OCI error envelope every error answer carries.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ErrorEnvelope {
    errors: Vec<ErrorItem>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ErrorItem {
    /// An OCI code (`DENIED`, `NAME_UNKNOWN`, ...) or a governance one
    /// (`PROMOTION_DENIED`, `STAGE_UNKNOWN`, ...).
    code: String,
    message: String,
    /// Structured facts, e.g. `{"failed_gates": [...]}`; null when none.
    detail: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = VerifyReport)]
pub(crate) struct VerifyReportSchema {
    rows_checked: u64,
    valid: bool,
    first_broken: Option<BrokenRowSchema>,
    /// Hash of the newest row: keep it elsewhere to detect truncation later.
    head_hash: String,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BrokenRow)]
pub(crate) struct BrokenRowSchema {
    id: i64,
    reason: String,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = GcReport)]
pub(crate) struct GcReportSchema {
    dry_run: bool,
    blobs_deleted: u64,
    bytes_freed: u64,
    uploads_deleted: u64,
    /// Deletions a previous, interrupted run had started.
    resumed: u64,
    /// Objects in the store that nothing in the database accounts for.
    strays_deleted: u64,
    stray_bytes_freed: u64,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RetentionReport)]
pub(crate) struct RetentionReportSchema {
    dry_run: bool,
    manifests_deleted: u64,
    tags_deleted: u64,
    repositories: Vec<RepoPlanSchema>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RepoPlan)]
pub(crate) struct RepoPlanSchema {
    repository: String,
    manifests: Vec<ManifestDecisionSchema>,
    tags: Vec<TagDecisionSchema>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ManifestDecision)]
pub(crate) struct ManifestDecisionSchema {
    digest: String,
    keep: bool,
    /// Why, e.g. `kept: prod release #3 (current)`.
    reason: String,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TagDecision)]
pub(crate) struct TagDecisionSchema {
    tag: String,
    digest: String,
    keep: bool,
    reason: String,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RetentionPolicies)]
pub(crate) struct RetentionPoliciesSchema {
    policies: Vec<RetentionPolicySchema>,
    /// How often retention runs on its own (`1day`), or null: on demand only.
    schedule: Option<String>,
    rollback_depth: u32,
    /// The protections no policy overrides, in words.
    always_kept: Vec<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RetentionPolicy)]
pub(crate) struct RetentionPolicySchema {
    name: String,
    /// Repository glob.
    repositories: String,
    keep_last: Option<u32>,
    keep_tags: Vec<String>,
    /// A duration such as `7days`.
    keep_within: Option<String>,
    delete_untagged_after: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Account)]
pub(crate) struct AccountSchema {
    name: String,
    /// `user` or `robot`.
    kind: String,
    admin: bool,
    /// Unix milliseconds; null: never expires.
    expires_at: Option<i64>,
    /// Unix milliseconds.
    created_at: i64,
    /// A disabled account cannot log in and its tokens are refused.
    disabled: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Grant)]
pub(crate) struct GrantSchema {
    id: i64,
    account: String,
    /// Repository glob.
    repository: String,
    /// reader, developer, releaser, auditor or admin.
    role: String,
    /// Stages a releaser may promote into and roll back.
    stages: Vec<String>,
    /// Unix milliseconds.
    created_at: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UserList)]
pub(crate) struct UserListSchema {
    users: Vec<AccountSchema>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RobotList)]
pub(crate) struct RobotListSchema {
    robots: Vec<AccountSchema>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = GrantList)]
pub(crate) struct GrantListSchema {
    grants: Vec<GrantSchema>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewRobotResult)]
pub(crate) struct NewRobotResultSchema {
    account: AccountSchema,
    /// The robot's secret, shown this once: its password for `docker login`.
    token: String,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RotatedToken)]
pub(crate) struct RotatedTokenSchema {
    /// The robot's name: the user name for `docker login`.
    username: String,
    /// The new secret, shown this once: the password for `docker login`.
    token: String,
}
