//! Image diff endpoint, and the shapes of its answer (also in the OpenAPI
//! document).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::access::require;
use crate::api::openapi::{ErrorEnvelope, RepoParam};
use crate::api::request::repo;
use crate::api::{ApiError, OciCode};
use crate::auth::Action;
use crate::diff::FileEntry;
use crate::domain::{ImageRef, Platform};
use crate::registry::diff::{DiffReport, DiffRequest, FileDiff, LayerLine, ResolvedImage};
use crate::registry::Registry;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffQuery {
    /// A tag (stage tags included), a digest, or `<stage>@<release number>`.
    from: Option<String>,
    /// Same forms as `from`.
    to: Option<String>,
    /// `<os>/<arch>[/<variant>]`: the image of an index to compare.
    platform: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Files per page (default `diff.default_page_size`; over `diff.max_page_size`: 400).
    #[param(value_type = Option<u32>)]
    n: Option<String>,
}

/// One side of the diff, resolved.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiffImage {
    /// The reference as given.
    reference: String,
    /// The digest it names (an index's, if it is one).
    digest: String,
    /// The image manifest compared (the index's child for the platform, or `digest`).
    manifest: String,
    /// The platform chosen, when the reference is an index.
    platform: Option<String>,
    /// The image configuration's digest.
    config: String,
}

/// One changed field of the image configuration (`null`: not set).
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigField {
    /// `Env`, `Cmd`, `Entrypoint`, `User`, `WorkingDir`, `ExposedPorts`, `Volumes`,
    /// `Labels`, `StopSignal`, `Healthcheck`, `history`, `os`, `architecture`.
    field: String,
    /// `Env` and `Labels`: only the names that differ, name → value.
    from: serde_json::Value,
    to: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiffLayer {
    digest: String,
    size: u64,
    /// The history line (`created_by`) that created the layer.
    history: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiffLayers {
    shared: Vec<DiffLayer>,
    removed: Vec<DiffLayer>,
    added: Vec<DiffLayer>,
}

/// A path's attributes on one side.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileAttrs {
    /// `file`, `dir`, `symlink`, `hardlink`, `char`, `block` or `fifo`.
    r#type: String,
    /// Permission bits, octal (`0644`).
    mode: String,
    uid: u64,
    gid: u64,
    size: u64,
    /// Hex sha256 of the content (regular files and hard links to one).
    sha256: Option<String>,
    /// A symlink's target, or a hard link's path.
    link: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileChangeItem {
    path: String,
    /// `added`, `removed` or `modified`.
    change: String,
    from: Option<FileAttrs>,
    to: Option<FileAttrs>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PackageItem {
    name: String,
    version: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PackageChange {
    name: String,
    from: String,
    to: String,
}

/// Operating-system packages (dpkg, apk), when either image carries a package database.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiffPackages {
    /// The databases found: `dpkg`, `apk`.
    databases: Vec<String>,
    added: Vec<PackageItem>,
    removed: Vec<PackageItem>,
    /// Same package, another version.
    changed: Vec<PackageChange>,
    /// Databases present but not read (larger than `diff.max_package_db_bytes`).
    skipped: Vec<String>,
}

/// Counts and byte totals of the whole diff (not only this page).
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiffSummaryBody {
    files_added: u64,
    files_removed: u64,
    files_modified: u64,
    bytes_added: u64,
    bytes_removed: u64,
    /// Content bytes of modified files after minus before.
    bytes_modified_delta: i64,
    config_changes: u64,
    layers_shared: u64,
    layers_added: u64,
    layers_removed: u64,
    layers_added_bytes: u64,
    layers_removed_bytes: u64,
    /// Layers read from storage by this request (their index was new).
    layers_indexed: u64,
    /// Layers whose stored index was used.
    layers_cached: u64,
    packages_added: u64,
    packages_removed: u64,
    packages_changed: u64,
}

/// What changed from one image to the other.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiffResponse {
    repository: String,
    from: DiffImage,
    to: DiffImage,
    config: Vec<ConfigField>,
    layers: DiffLayers,
    /// This page of the paths that differ, in path order.
    files: Vec<FileChangeItem>,
    /// Pass as `cursor` for the next page; null on the last one.
    next_cursor: Option<String>,
    /// Null when neither image has a package database.
    packages: Option<DiffPackages>,
    summary: DiffSummaryBody,
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, ApiError> {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request(OciCode::InvalidRequest, format!("the {name} parameter is required")))
}

/// `GET /api/v1/repositories/<name>/diff?from=<ref>&to=<ref>[&platform=<os>/<arch>][&n=][&cursor=]`
/// — what changed from one image to the other (a reference is a tag, a
/// digest or `<stage>@<release number>`): configuration fields, layers,
/// files of the merged filesystems (`n` per page, at most
/// `diff.max_page_size`; `next_cursor` and a `Link` header lead on),
/// operating-system packages and a summary. Needs pull on the repository.
#[utoipa::path(
    get,
    path = "/api/v1/repositories/{name}/diff",
    operation_id = "diff_images",
    tag = "diff",
    params(RepoParam, DiffQuery),
    responses(
        (status = 200, description = "The diff; a `Link` header points to the next page of files", body = DiffResponse),
        (status = 400, description = "A missing or invalid reference, platform or page size (over `diff.max_page_size`)", body = ErrorEnvelope),
        (status = 404, description = "Unknown repository, reference (MANIFEST_UNKNOWN) or platform of an index", body = ErrorEnvelope),
        (status = 422, description = "PLATFORM_REQUIRED (an index and no platform), LAYER_INVALID (a layer refused: over a `[diff]` bound, \
                                      unsafe path, corrupt stream), CONFIG_INVALID, MANIFEST_INVALID (not an image)", body = ErrorEnvelope),
    )
)]
pub async fn get(req: HttpRequest, query: web::Query<DiffQuery>, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    let repo = repo(&req)?;
    require(&req, Action::Pull, Some(&repo)).await?;
    let from = ImageRef::parse(required(&query.from, "from")?)?;
    let to = ImageRef::parse(required(&query.to, "to")?)?;
    let platform = query.platform.as_deref().filter(|p| !p.is_empty()).map(Platform::parse).transpose()?;
    let config = registry.diff_config();
    let limit = match &query.n {
        None => config.default_page_size,
        Some(n) => {
            let n = n
                .parse::<u32>()
                .map_err(|_| ApiError::bad_request(OciCode::InvalidRequest, format!("n must be a non-negative number, got {n:?}")))?;
            if n > config.max_page_size {
                return Err(ApiError::bad_request(
                    OciCode::InvalidRequest,
                    format!("n = {n} is over the page size cap diff.max_page_size = {}", config.max_page_size),
                ));
            }
            n
        }
    } as usize;
    let after = query.cursor.clone().filter(|c| !c.is_empty());
    let report = registry.diff(&repo, DiffRequest { from, to, platform, after, limit }).await?;

    let mut response = HttpResponse::Ok();
    if let Some(next) = &report.next {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        url.append_pair("from", &report.from.reference).append_pair("to", &report.to.reference).append_pair("n", &limit.to_string());
        if let Some(p) = &query.platform {
            url.append_pair("platform", p);
        }
        url.append_pair("cursor", next);
        response.insert_header((header::LINK, format!("</api/v1/repositories/{repo}/diff?{}>; rel=\"next\"", url.finish())));
    }
    Ok(response.json(body(repo.as_str(), report)))
}

fn body(repository: &str, report: DiffReport) -> DiffResponse {
    let s = &report.summary;
    let summary = DiffSummaryBody {
        files_added: s.files_added,
        files_removed: s.files_removed,
        files_modified: s.files_modified,
        bytes_added: s.bytes_added,
        bytes_removed: s.bytes_removed,
        bytes_modified_delta: s.bytes_modified_delta,
        config_changes: s.config_changes,
        layers_shared: s.layers_shared,
        layers_added: s.layers_added,
        layers_removed: s.layers_removed,
        layers_added_bytes: report.added.iter().map(|l| l.size).sum(),
        layers_removed_bytes: report.removed.iter().map(|l| l.size).sum(),
        layers_indexed: s.layers_indexed,
        layers_cached: s.layers_cached,
        packages_added: s.packages_added,
        packages_removed: s.packages_removed,
        packages_changed: s.packages_changed,
    };
    let item = |(name, version): &(String, String)| PackageItem { name: name.clone(), version: version.clone() };
    let packages = report.packages.as_ref().map(|p| DiffPackages {
        databases: p.databases.iter().map(|d| d.to_string()).collect(),
        added: p.changes.added.iter().map(item).collect(),
        removed: p.changes.removed.iter().map(item).collect(),
        changed: p.changes.changed.iter().map(|(n, a, b)| PackageChange { name: n.clone(), from: a.clone(), to: b.clone() }).collect(),
        skipped: p.skipped.clone(),
    });
    DiffResponse {
        repository: repository.to_owned(),
        from: image(&report.from),
        to: image(&report.to),
        config: report.config.iter().map(|c| ConfigField { field: c.field.to_owned(), from: c.from.clone(), to: c.to.clone() }).collect(),
        layers: DiffLayers {
            shared: report.shared.iter().map(layer).collect(),
            removed: report.removed.iter().map(layer).collect(),
            added: report.added.iter().map(layer).collect(),
        },
        files: report.files.iter().map(file).collect(),
        next_cursor: report.next,
        packages,
        summary,
    }
}

fn image(i: &ResolvedImage) -> DiffImage {
    DiffImage {
        reference: i.reference.clone(),
        digest: i.digest.clone(),
        manifest: i.manifest.clone(),
        platform: i.platform.clone(),
        config: i.config_digest.clone(),
    }
}

fn layer(l: &LayerLine) -> DiffLayer {
    DiffLayer { digest: l.digest.clone(), size: l.size, history: l.history.clone() }
}

fn attrs(e: &FileEntry) -> FileAttrs {
    FileAttrs {
        r#type: e.kind.as_str().to_owned(),
        mode: format!("{:04o}", e.mode),
        uid: e.uid,
        gid: e.gid,
        size: e.size,
        sha256: e.sha256.clone(),
        link: e.link.clone(),
    }
}

fn file(f: &FileDiff) -> FileChangeItem {
    FileChangeItem {
        path: f.path.clone(),
        change: f.change.as_str().to_owned(),
        from: f.from.as_ref().map(attrs),
        to: f.to.as_ref().map(attrs),
    }
}
