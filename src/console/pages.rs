//! The read-only pages: repositories, a repository's stages and tags, a
//! stage's release history, the audit log. Each reads one page of an
//! indexed query.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::view::{age, q, short, time, Nav};
use super::{ConsoleError, Viewer};
use crate::auth::Action;
use crate::domain::{now_ms, AuditAction, AuditFilter, ReleaseRow, RepoName};
use crate::registry::Registry;

/// Rows per page.
const PAGE: u32 = 50;
/// Repository names read per request at most while filtering by grants and
/// prefix, so one request cannot walk a huge catalog.
const MAX_SCANNED: usize = 20_000;

pub(super) fn html(body: String) -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").insert_header(("cache-control", "no-store")).body(body)
}

pub(super) fn repo_name(name: &str) -> Result<RepoName, ConsoleError> {
    RepoName::parse(name).map_err(|e| ConsoleError::NotFound(format!("no repository {name:?}: {e}")))
}

#[derive(Deserialize)]
pub struct RepositoriesQuery {
    #[serde(default)]
    q: String,
    last: Option<String>,
}

#[derive(Template)]
#[template(path = "repositories.html", config = "src/console/askama.toml")]
struct RepositoriesPage {
    nav: Nav,
    q: String,
    rows: Vec<RepositoryRow>,
    next: Option<String>,
}

/// One line of the repositories page.
struct RepositoryRow {
    name: String,
    tags: u64,
    manifests: u64,
}

/// The names after which a prefix search starts: just below `prefix`, so
/// the indexed `name > last` scan begins at the first match. Repository
/// names use only `[a-z0-9._/-]`, all below `~`.
fn search_start(prefix: &str) -> Option<String> {
    let mut bytes = prefix.as_bytes().to_vec();
    let last = bytes.pop()?;
    if !last.is_ascii_graphic() || last == b'!' {
        return Some(prefix[..prefix.len() - 1].to_owned());
    }
    bytes.push(last - 1);
    bytes.push(b'~');
    String::from_utf8(bytes).ok()
}

/// `GET /ui/repositories?q=&last=`: the repositories the viewer may pull,
/// by name, filtered by prefix.
pub async fn repositories(
    req: HttpRequest,
    query: web::Query<RepositoriesQuery>,
    registry: web::Data<Registry>,
) -> Result<HttpResponse, ConsoleError> {
    let viewer = Viewer::of(&req).await?;
    let prefix = query.q.trim().to_owned();
    let mut cursor = match &query.last {
        Some(last) => Some(last.clone()),
        None => search_start(&prefix),
    };
    let (mut names, mut scanned, mut next) = (Vec::new(), 0usize, None);
    'scan: while scanned < MAX_SCANNED {
        let page = registry.catalog(cursor.clone(), 500).await?;
        scanned += page.items.len();
        for name in page.items {
            if !name.starts_with(&prefix) {
                if name.as_str() > prefix.as_str() {
                    break 'scan;
                }
                cursor = Some(name);
                continue;
            }
            if viewer.may(&Action::Pull, Some(&name)) {
                if names.len() == PAGE as usize {
                    next = names.last().cloned();
                    break 'scan;
                }
                names.push(name.clone());
            }
            cursor = Some(name);
        }
        if !page.has_more {
            break;
        }
    }
    // One query for the whole page's counts; a repository deleted since the
    // scan is left out.
    let parsed = names.iter().filter_map(|n| RepoName::parse(n).ok()).collect();
    let rows = registry
        .repository_counts(parsed)
        .await?
        .into_iter()
        .map(|c| RepositoryRow { name: c.name.to_string(), tags: c.tags, manifests: c.manifests })
        .collect();
    let page = RepositoriesPage { nav: Nav::new(&viewer), q: prefix, rows, next };
    Ok(html(page.render()?))
}

/// One stage's column on a repository page.
struct StageColumn {
    stage: String,
    current: Option<ReleaseView>,
    /// The previous stage's current release, when it differs from this one.
    waiting: Option<ReleaseView>,
    can_promote: bool,
}

pub(super) struct ReleaseView {
    sequence: i64,
    digest: String,
    short: String,
    version: String,
    actor: String,
    when: String,
    soak: String,
    reason: String,
}

impl ReleaseView {
    fn new(r: &ReleaseRow, now: i64) -> Self {
        Self {
            sequence: r.sequence,
            digest: r.digest.to_string(),
            short: short(&r.digest.to_string()),
            version: r.version.clone().unwrap_or_default(),
            actor: r.actor.clone(),
            when: time(r.created_at),
            soak: age(r.created_at, now),
            reason: r.reason.as_str().to_owned(),
        }
    }
}

#[derive(Template)]
#[template(path = "repository.html", config = "src/console/askama.toml")]
struct RepositoryPage {
    nav: Nav,
    name: String,
    name_q: String,
    columns: Vec<StageColumn>,
    first_stage: String,
    can_promote_first: bool,
    tags: Vec<TagRow>,
    next_tag: Option<String>,
    manifests: Vec<VerdictRow>,
    manifests_total: usize,
    next_manifests: Option<usize>,
}

struct TagRow {
    tag: String,
    pull: String,
    retention: String,
}

/// A manifest and what retention decides about it.
struct VerdictRow {
    digest: String,
    short: String,
    keep: bool,
    reason: String,
}

#[derive(Deserialize)]
pub struct TagsQuery {
    last: Option<String>,
    /// Manifests skipped, newest first (the verdict list's paging).
    #[serde(default)]
    skip: usize,
}

/// `GET /ui/r/<name>`: one column per stage, then the tags.
pub async fn repository(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<TagsQuery>,
    registry: web::Data<Registry>,
) -> Result<HttpResponse, ConsoleError> {
    let viewer = Viewer::of(&req).await?;
    let repo = repo_name(&path)?;
    viewer.require(&req, Action::Pull, Some(repo.as_str())).await?;
    let now = now_ms();
    let stages = registry.stages(&repo).await?;
    let mut columns: Vec<StageColumn> = Vec::with_capacity(stages.len());
    let mut previous: Option<&ReleaseRow> = None;
    for (stage, current) in &stages {
        let waiting = previous.filter(|p| current.as_ref().is_none_or(|c| c.digest != p.digest)).map(|p| ReleaseView::new(p, now));
        columns.push(StageColumn {
            stage: stage.clone(),
            current: current.as_ref().map(|c| ReleaseView::new(c, now)),
            can_promote: waiting.is_some() && viewer.may(&Action::Promote(stage.clone()), Some(repo.as_str())),
            waiting,
        });
        previous = current.as_ref();
    }
    let first_stage = stages.first().map(|(s, _)| s.clone()).unwrap_or_default();
    let tags = registry.list_tags(&repo, query.last.clone(), PAGE).await?;
    let plan = registry.retention_plan_of(&repo).await?;
    let tag_verdicts: std::collections::HashMap<&str, String> =
        plan.iter().flat_map(|p| &p.tags).map(|t| (t.tag.as_str(), t.decision.reason.to_string())).collect();
    let tag_rows = tags
        .items
        .iter()
        .map(|t| TagRow {
            pull: super::manifest::pull_command(&req, &repo, t),
            retention: tag_verdicts.get(t.as_str()).cloned().unwrap_or_default(),
            tag: t.clone(),
        })
        .collect();
    // Newest first: the plan lists manifests oldest first.
    let all: Vec<VerdictRow> = plan
        .iter()
        .flat_map(|p| p.manifests.iter().rev())
        .map(|m| VerdictRow {
            short: short(&m.digest),
            digest: m.digest.clone(),
            keep: m.decision.keep,
            reason: m.decision.reason.to_string(),
        })
        .collect();
    let manifests_total = all.len();
    let manifests: Vec<VerdictRow> = all.into_iter().skip(query.skip).take(PAGE as usize).collect();
    let next_manifests = (query.skip + manifests.len() < manifests_total).then_some(query.skip + manifests.len());
    let page = RepositoryPage {
        nav: Nav::new(&viewer),
        name: repo.to_string(),
        name_q: q(repo.as_str()),
        can_promote_first: !first_stage.is_empty() && viewer.may(&Action::Promote(first_stage.clone()), Some(repo.as_str())),
        first_stage,
        columns,
        next_tag: if tags.has_more { tags.items.last().cloned() } else { None },
        tags: tag_rows,
        manifests,
        manifests_total,
        next_manifests,
    };
    Ok(html(page.render()?))
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    before: Option<i64>,
}

struct HistoryRow {
    release: ReleaseView,
    /// The digest of the release before it, to diff against.
    previous: String,
    restored: String,
    is_current: bool,
    can_roll_back: bool,
}

#[derive(Template)]
#[template(path = "stage.html", config = "src/console/askama.toml")]
struct StagePage {
    nav: Nav,
    name: String,
    stage: String,
    rows: Vec<HistoryRow>,
    next: Option<i64>,
}

/// `GET /ui/r/<name>/stages/<stage>`: the stage's releases, newest first,
/// with a roll-back button on each earlier release for those allowed to.
pub async fn stage(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<HistoryQuery>,
    registry: web::Data<Registry>,
) -> Result<HttpResponse, ConsoleError> {
    let viewer = Viewer::of(&req).await?;
    let (name, stage) = path.into_inner();
    let repo = repo_name(&name)?;
    viewer.require(&req, Action::Pull, Some(repo.as_str())).await?;
    let now = now_ms();
    let current = registry.releases(&repo, &stage, None, 1).await?.into_iter().next();
    let releases = registry.releases(&repo, &stage, query.before, PAGE).await?;
    let can_roll_back = viewer.may(&Action::Rollback(stage.clone()), Some(repo.as_str()));
    let next = (releases.len() == PAGE as usize).then(|| releases.last().map(|r| r.sequence)).flatten();
    let rows = releases
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let is_current = current.as_ref().is_some_and(|c| c.sequence == r.sequence);
            let same_digest = current.as_ref().is_some_and(|c| c.digest == r.digest);
            HistoryRow {
                release: ReleaseView::new(r, now),
                previous: releases.get(i + 1).map(|p| p.digest.to_string()).unwrap_or_default(),
                restored: r.restored_sequence.map(|s| format!("#{s}")).unwrap_or_default(),
                is_current,
                can_roll_back: can_roll_back && !is_current && !same_digest,
            }
        })
        .collect();
    let page = StagePage { nav: Nav::new(&viewer), name: repo.to_string(), stage, rows, next };
    Ok(html(page.render()?))
}

#[derive(Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    repository: String,
    #[serde(default)]
    action: String,
    /// RFC 3339, inclusive.
    #[serde(default)]
    since: String,
    /// RFC 3339, exclusive.
    #[serde(default)]
    until: String,
    before: Option<i64>,
    #[serde(default)]
    verify: Option<String>,
}

struct AuditRow {
    id: i64,
    when: String,
    actor: String,
    source: String,
    action: String,
    repository: String,
    reference: String,
    digest: String,
}

struct Verification {
    valid: bool,
    rows_checked: u64,
    detail: String,
}

#[derive(Template)]
#[template(path = "audit.html", config = "src/console/askama.toml")]
struct AuditPage {
    nav: Nav,
    actor: String,
    repository: String,
    action: String,
    since: String,
    until: String,
    actions: Vec<&'static str>,
    rows: Vec<AuditRow>,
    next: Option<String>,
    verification: Option<Verification>,
}

fn parse_time(field: &str, value: &str) -> Result<Option<i64>, ConsoleError> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    chrono::DateTime::parse_from_rfc3339(value.trim())
        .map(|t| Some(t.timestamp_millis()))
        .map_err(|e| ConsoleError::BadRequest(format!("{field}: {value:?} is not an RFC 3339 time ({e})")))
}

/// `GET /ui/audit`: the audit log, newest first, filtered; `verify=1`
/// recomputes the hash chain (a full scan, so only on request).
pub async fn audit(req: HttpRequest, query: web::Query<AuditQuery>, registry: web::Data<Registry>) -> Result<HttpResponse, ConsoleError> {
    let viewer = Viewer::of(&req).await?;
    viewer.require(&req, Action::ReadAudit, None).await?;
    let query = query.into_inner();
    let repository = match query.repository.trim() {
        "" => None,
        r => Some(RepoName::parse(r).map_err(|e| ConsoleError::BadRequest(format!("repository: {e}")))?),
    };
    let action = match query.action.trim() {
        "" => None,
        a => Some(AuditAction::parse(a).ok_or_else(|| ConsoleError::BadRequest(format!("unknown action {a:?}")))?),
    };
    let filter = AuditFilter {
        repository,
        action,
        actor: Some(query.actor.trim().to_owned()).filter(|a| !a.is_empty()),
        since: parse_time("since", &query.since)?,
        until: parse_time("until", &query.until)?,
        before_id: query.before,
    };
    let rows = registry.audit_log(filter, PAGE).await?;
    let next = (rows.len() == PAGE as usize).then(|| rows.last().map(|r| r.record.id)).flatten().map(|before| {
        format!(
            "actor={}&repository={}&action={}&since={}&until={}&before={before}",
            q(&query.actor),
            q(&query.repository),
            q(&query.action),
            q(&query.since),
            q(&query.until)
        )
    });
    let rows = rows
        .into_iter()
        .map(|r| {
            let r = r.record;
            AuditRow {
                id: r.id,
                when: time(r.created_at),
                actor: r.actor,
                source: r.source,
                action: r.action,
                repository: r.repository.unwrap_or_default(),
                reference: r.reference.unwrap_or_default(),
                digest: r.digest.unwrap_or_default(),
            }
        })
        .collect();
    let verification = match query.verify {
        Some(_) => {
            let report = registry.verify_audit().await?;
            let detail = match &report.first_broken {
                Some(b) => format!("first broken row: {b:?}"),
                None => format!("head hash {}", report.head_hash),
            };
            Some(Verification { valid: report.valid, rows_checked: report.rows_checked, detail })
        }
        None => None,
    };
    let page = AuditPage {
        nav: Nav::new(&viewer),
        actor: query.actor,
        repository: query.repository,
        action: query.action,
        since: query.since,
        until: query.until,
        actions: AuditAction::ALL.iter().map(|a| a.as_str()).collect(),
        rows,
        next,
        verification,
    };
    Ok(html(page.render()?))
}

#[cfg(test)]
mod tests {
    use super::search_start;

    #[test]
    fn a_prefix_search_starts_just_below_the_prefix() {
        assert_eq!(search_start(""), None);
        assert_eq!(search_start("b").as_deref(), Some("a~"));
        assert_eq!(search_start("team/a").as_deref(), Some("team/`~"));
        assert!(search_start("team/a").is_some_and(|s| s.as_str() < "team/a" && s.as_str() > "team/"));
    }
}
