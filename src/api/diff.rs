//! Image diff endpoint.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::access::require;
use crate::api::request::repo;
use crate::api::{ApiError, OciCode};
use crate::auth::Action;
use crate::diff::FileEntry;
use crate::domain::{ImageRef, Platform};
use crate::registry::diff::{DiffRequest, FileDiff, LayerLine, ResolvedImage};
use crate::registry::Registry;

#[derive(Debug, Deserialize)]
pub struct DiffQuery {
    from: Option<String>,
    to: Option<String>,
    platform: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    n: Option<String>,
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
/// `registry.max_page_size`; `next_cursor` and a `Link` header lead on) and
/// a summary. Needs pull on the repository.
pub async fn get(req: HttpRequest, query: web::Query<DiffQuery>, registry: web::Data<Registry>) -> Result<HttpResponse, ApiError> {
    let repo = repo(&req)?;
    require(&req, Action::Pull, Some(&repo)).await?;
    let from = ImageRef::parse(required(&query.from, "from")?)?;
    let to = ImageRef::parse(required(&query.to, "to")?)?;
    let platform = query.platform.as_deref().filter(|p| !p.is_empty()).map(Platform::parse).transpose()?;
    let config = registry.config();
    let limit = match &query.n {
        None => config.default_page_size,
        Some(n) => n
            .parse::<u32>()
            .map_err(|_| ApiError::bad_request(OciCode::InvalidRequest, format!("n must be a non-negative number, got {n:?}")))?
            .min(config.max_page_size),
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
    let s = &report.summary;
    Ok(response.json(json!({
        "repository": repo.as_str(),
        "from": image_json(&report.from),
        "to": image_json(&report.to),
        "config": report.config.iter().map(|c| json!({"field": c.field, "from": c.from, "to": c.to})).collect::<Vec<_>>(),
        "layers": {
            "shared": report.shared.iter().map(layer_json).collect::<Vec<_>>(),
            "removed": report.removed.iter().map(layer_json).collect::<Vec<_>>(),
            "added": report.added.iter().map(layer_json).collect::<Vec<_>>(),
        },
        "files": report.files.iter().map(file_json).collect::<Vec<_>>(),
        "next_cursor": report.next,
        "summary": {
            "files_added": s.files_added,
            "files_removed": s.files_removed,
            "files_modified": s.files_modified,
            "bytes_added": s.bytes_added,
            "bytes_removed": s.bytes_removed,
            "bytes_modified_delta": s.bytes_modified_delta,
            "config_changes": s.config_changes,
            "layers_shared": s.layers_shared,
            "layers_added": s.layers_added,
            "layers_removed": s.layers_removed,
            "layers_added_bytes": report.added.iter().map(|l| l.size).sum::<u64>(),
            "layers_removed_bytes": report.removed.iter().map(|l| l.size).sum::<u64>(),
            "layers_indexed": s.layers_indexed,
            "layers_cached": s.layers_cached,
        },
    })))
}

fn image_json(i: &ResolvedImage) -> Value {
    json!({
        "reference": i.reference,
        "digest": i.digest,
        "manifest": i.manifest,
        "platform": i.platform,
        "config": i.config_digest,
    })
}

fn layer_json(l: &LayerLine) -> Value {
    json!({"digest": l.digest, "size": l.size, "history": l.history})
}

fn entry_json(e: &FileEntry) -> Value {
    json!({
        "type": e.kind.as_str(),
        "mode": format!("{:04o}", e.mode),
        "uid": e.uid,
        "gid": e.gid,
        "size": e.size,
        "sha256": e.sha256,
        "link": e.link,
    })
}

fn file_json(f: &FileDiff) -> Value {
    json!({
        "path": f.path,
        "change": f.change.as_str(),
        "from": f.from.as_ref().map(entry_json),
        "to": f.to.as_ref().map(entry_json),
    })
}
