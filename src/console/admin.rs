//! `GET /ui/admin`: for administrators, this node's health (what `/readyz`
//! answers) and, on request, a retention plan and a GC dry run: what each
//! would delete now, deleting nothing.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::pages::html;
use super::view::{short, Nav};
use super::{ConsoleError, Viewer};
use crate::auth::Action;
use crate::observability::Health;
use crate::registry::Registry;

/// Deletions listed on the page; the totals count them all.
const LISTED: usize = 200;

#[derive(Deserialize)]
pub struct AdminQuery {
    #[serde(default)]
    retention: Option<String>,
    #[serde(default)]
    gc: Option<String>,
}

struct Deletion {
    repository: String,
    what: String,
    reason: String,
}

struct RetentionSummary {
    repositories: usize,
    manifests: u64,
    tags: u64,
    listed: Vec<Deletion>,
}

struct GcSummary {
    blobs: u64,
    bytes: u64,
    uploads: u64,
}

#[derive(Template)]
#[template(path = "admin.html", config = "src/console/askama.toml")]
struct AdminPage {
    nav: Nav,
    status: String,
    checks: Vec<(&'static str, &'static str)>,
    retention: Option<RetentionSummary>,
    gc: Option<GcSummary>,
}

pub async fn admin(
    req: HttpRequest,
    query: web::Query<AdminQuery>,
    registry: web::Data<Registry>,
    health: web::Data<Health>,
) -> Result<HttpResponse, ConsoleError> {
    let viewer = Viewer::of(&req).await?;
    let actor = viewer.require(&req, Action::Admin, None).await?;
    let readiness = health.readiness().await;
    let retention = match query.retention {
        Some(_) => {
            let report = registry.run_retention(&actor, true).await?;
            let mut listed = Vec::new();
            for p in &report.repositories {
                let tags = p.deleted_tags().map(|t| (format!("tag {}", t.tag), t.decision.reason.to_string()));
                let manifests = p.deleted_manifests().map(|m| (format!("manifest {}", short(&m.digest)), m.decision.reason.to_string()));
                for (what, reason) in tags.chain(manifests).take(LISTED.saturating_sub(listed.len())) {
                    listed.push(Deletion { repository: p.repository.clone(), what, reason });
                }
            }
            Some(RetentionSummary {
                repositories: report.repositories.len(),
                manifests: report.manifests_deleted,
                tags: report.tags_deleted,
                listed,
            })
        }
        None => None,
    };
    let gc = match query.gc {
        Some(_) => {
            let r = registry.run_gc(&actor, true).await?;
            Some(GcSummary {
                blobs: r.blobs_deleted + r.strays_deleted,
                bytes: r.bytes_freed + r.stray_bytes_freed,
                uploads: r.uploads_deleted,
            })
        }
        None => None,
    };
    let page = AdminPage {
        nav: Nav::new(&viewer),
        status: readiness.status().to_owned(),
        checks: readiness.parts().iter().map(|(part, check)| (*part, check.as_str())).collect(),
        retention,
        gc,
    };
    Ok(html(page.render()?))
}
