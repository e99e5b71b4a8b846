//! `GET /ui/r/<name>/diff?from=&to=`: what changed between two images or
//! releases (`prod@3`), from the image-diff use-case: configuration,
//! layers with sizes, and the first page of changed files.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::pages::{html, repo_name};
use super::view::{short, Nav};
use super::{ConsoleError, Viewer};
use crate::auth::Action;
use crate::domain::{ImageRef, Platform};
use crate::registry::diff::{DiffError, DiffRequest, LayerLine};
use crate::registry::Registry;

/// Changed files shown; the JSON API pages through the rest.
const FILES: usize = 200;

#[derive(Deserialize)]
pub struct DiffQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    platform: String,
}

struct Layer {
    digest: String,
    short: String,
    size: u64,
    history: String,
    side: &'static str,
}

struct ConfigLine {
    field: String,
    from: String,
    to: String,
}

struct FileLine {
    path: String,
    change: &'static str,
}

#[derive(Template)]
#[template(path = "diff.html", config = "src/console/askama.toml")]
struct DiffPage {
    nav: Nav,
    name: String,
    from: String,
    to: String,
    from_digest: String,
    to_digest: String,
    config: Vec<ConfigLine>,
    layers: Vec<Layer>,
    files: Vec<FileLine>,
    more_files: bool,
    summary: String,
}

impl From<DiffError> for ConsoleError {
    fn from(e: DiffError) -> Self {
        match e {
            DiffError::Registry(r) => r.into(),
            e if e.is_server_fault() => {
                tracing::error!(error = %e, "console diff failed");
                ConsoleError::Internal("the diff could not be computed; see the server log".into())
            }
            // The image itself cannot be diffed (no platform chosen, a layer
            // that is not a readable tar, a bad configuration): say why.
            e => ConsoleError::BadRequest(e.to_string()),
        }
    }
}

fn layers<'a>(lines: &'a [LayerLine], side: &'static str) -> impl Iterator<Item = Layer> + 'a {
    lines.iter().map(move |l| Layer {
        digest: l.digest.clone(),
        short: short(&l.digest),
        size: l.size,
        history: l.history.clone().unwrap_or_default(),
        side,
    })
}

pub async fn diff(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<DiffQuery>,
    registry: web::Data<Registry>,
) -> Result<HttpResponse, ConsoleError> {
    let viewer = Viewer::of(&req).await?;
    let repo = repo_name(&path)?;
    viewer.require(&req, Action::Pull, Some(repo.as_str())).await?;
    let parse = |field: &str, value: &str| ImageRef::parse(value.trim()).map_err(|e| ConsoleError::BadRequest(format!("{field}: {e}")));
    let (from, to) = (parse("from", &query.from)?, parse("to", &query.to)?);
    let platform = match query.platform.trim() {
        "" => None,
        p => Some(Platform::parse(p).map_err(|e| ConsoleError::BadRequest(format!("platform: {e}")))?),
    };
    let report = registry.diff(&repo, DiffRequest { from, to, platform, after: None, limit: FILES }).await?;
    let s = &report.summary;
    let summary = format!(
        "{} files added, {} removed, {} modified; {} layers shared, {} added, {} removed; {} configuration changes",
        s.files_added, s.files_removed, s.files_modified, s.layers_shared, s.layers_added, s.layers_removed, s.config_changes
    );
    let page = DiffPage {
        nav: Nav::new(&viewer),
        name: repo.to_string(),
        from: query.from.clone(),
        to: query.to.clone(),
        from_digest: report.from.digest.clone(),
        to_digest: report.to.digest.clone(),
        config: report
            .config
            .iter()
            .map(|c| ConfigLine { field: c.field.to_owned(), from: c.from.to_string(), to: c.to.to_string() })
            .collect(),
        layers: layers(&report.removed, "removed").chain(layers(&report.added, "added")).chain(layers(&report.shared, "shared")).collect(),
        files: report.files.iter().map(|f| FileLine { path: f.path.clone(), change: f.change.as_str() }).collect(),
        more_files: report.next.is_some(),
        summary,
    };
    Ok(html(page.render()?))
}
