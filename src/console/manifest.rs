//! `GET /ui/r/<name>/manifests/<reference>`: one manifest or index as people
//! read it: an index's platforms, an image's configuration and layers with
//! their history, its referrers (signatures, SBOMs), what retention decides
//! about it, and the pull command to copy.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::pages::{html, repo_name};
use super::view::{short, Nav};
use super::{ConsoleError, Viewer};
use crate::auth::Action;
use crate::domain::{Reference, RepoName};
use crate::registry::inspect::{ChildLine, ConfigSummary, LayerLine, ManifestBody, ReferrerLine};
use crate::registry::Registry;

#[derive(Template)]
#[template(path = "manifest.html", config = "src/console/askama.toml")]
struct ManifestPage {
    nav: Nav,
    name: String,
    reference: String,
    digest: String,
    media_type: String,
    size: u64,
    artifact_type: String,
    subject: String,
    pull: String,
    /// `index`, `image` or `other`.
    kind: &'static str,
    children: Vec<ChildLine>,
    config_digest: String,
    config: Option<ConfigSummary>,
    config_problem: String,
    layers: Vec<LayerLine>,
    total_layer_bytes: u64,
    referrers: Vec<ReferrerLine>,
    retention: String,
}

/// The pull command for this page's host: `docker pull host/name@digest`
/// (by tag when the page was opened by one).
pub(super) fn pull_command(req: &HttpRequest, repo: &RepoName, reference: &str) -> String {
    let host = req.connection_info().host().to_owned();
    let sep = if reference.contains(':') { '@' } else { ':' };
    format!("docker pull {host}/{repo}{sep}{reference}")
}

pub async fn manifest(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    registry: web::Data<Registry>,
) -> Result<HttpResponse, ConsoleError> {
    let viewer = Viewer::of(&req).await?;
    let (name, reference) = path.into_inner();
    let repo = repo_name(&name)?;
    viewer.require(&req, Action::Pull, Some(repo.as_str())).await?;
    let parsed = Reference::parse(&reference).map_err(|e| ConsoleError::NotFound(format!("no manifest {reference:?}: {e}")))?;
    let view = registry.inspect_manifest(&repo, &parsed).await?;
    let digest = view.digest.to_string();
    let retention = registry
        .retention_plan_of(&repo)
        .await?
        .and_then(|plan| plan.manifests.into_iter().find(|m| m.digest == digest))
        .map(|m| m.decision.reason.to_string())
        // Deleted or pushed between the two reads.
        .unwrap_or_else(|| "not planned yet; reload the page".into());
    let (kind, children, config_digest, config, config_problem, layers) = match view.body {
        ManifestBody::Index { children } => ("index", children, String::new(), None, String::new(), Vec::new()),
        ManifestBody::Image { config_digest, config, layers } => match config {
            Ok(c) => ("image", Vec::new(), config_digest, Some(*c), String::new(), layers),
            Err(problem) => ("image", Vec::new(), config_digest, None, problem, layers),
        },
        ManifestBody::Other => ("other", Vec::new(), String::new(), None, String::new(), Vec::new()),
    };
    let page = ManifestPage {
        nav: Nav::new(&viewer),
        pull: pull_command(&req, &repo, &reference),
        name: repo.to_string(),
        reference,
        media_type: view.media_type,
        size: view.size,
        artifact_type: view.artifact_type.unwrap_or_default(),
        subject: view.subject.unwrap_or_default(),
        kind,
        children,
        config_digest,
        config,
        config_problem,
        total_layer_bytes: layers.iter().map(|l| l.size).sum(),
        layers,
        referrers: view.referrers,
        retention,
        digest,
    };
    Ok(html(page.render()?))
}

impl ManifestPage {
    /// A digest cut to tell it apart (the template's layer column).
    fn short(&self, digest: &str) -> String {
        short(digest)
    }
}
