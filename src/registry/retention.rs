//! Applying retention: load each repository's facts, ask the pure planner
//! (`governance::retention`), and delete what it says — per repository in
//! one write transaction, so a promotion cannot slip between plan and
//! deletion, with one audit row per deleted tag and manifest. A run killed
//! midway leaves whole repositories done or untouched; the next run
//! finishes the rest. Blobs are freed later by garbage collection.

use serde::Serialize;
use serde_json::json;

use super::{record, Registry, RegistryError, Tx};
use crate::db::RepoId;
use crate::domain::{Actor, AuditAction, AuditEntry};
use crate::domain::{Digest, Tag};
use crate::governance::retention::{plan, ManifestFact, ReleaseFact, RepoFacts, RepoPlan, RetentionRules, TagFact};
use crate::governance::Policy;

const REPOSITORY_PAGE: u32 = 500;

#[derive(Debug, Default, Serialize)]
pub struct RetentionReport {
    pub dry_run: bool,
    pub manifests_deleted: u64,
    pub tags_deleted: u64,
    pub repositories: Vec<RepoPlan>,
}

fn facts(tx: &dyn Tx, repo_id: RepoId, name: &str) -> Result<RepoFacts, RegistryError> {
    let mut children = std::collections::HashMap::<String, Vec<String>>::new();
    for (parent, child) in tx.manifest_children(repo_id)? {
        children.entry(parent.to_string()).or_default().push(child.to_string());
    }
    let manifests = tx
        .manifest_facts(repo_id)?
        .into_iter()
        .map(|m| {
            let digest = m.digest.to_string();
            let children = children.remove(&digest).unwrap_or_default();
            ManifestFact { digest, pushed_at_ms: m.created_at, subject: m.subject.map(|s| s.to_string()), children }
        })
        .collect();
    let tags = tx
        .all_tags(repo_id)?
        .into_iter()
        .map(|t| TagFact { name: t.name.to_string(), digest: t.digest.to_string(), updated_at_ms: t.updated_at })
        .collect();
    let releases = tx
        .all_releases(repo_id)?
        .into_iter()
        .map(|r| ReleaseFact { stage: r.stage.to_string(), sequence: r.sequence, digest: r.digest.to_string() })
        .collect();
    Ok(RepoFacts { repository: name.to_owned(), manifests, tags, releases })
}

/// Deletes what the plan deletes, inside the caller's transaction.
fn apply(tx: &dyn Tx, actor: &Actor, repo_id: RepoId, p: &RepoPlan) -> Result<(u64, u64), RegistryError> {
    let (mut tags, mut manifests) = (0, 0);
    for t in p.deleted_tags() {
        let tag = Tag::parse(&t.tag)?;
        if tx.delete_tag(repo_id, &tag)? {
            tx.record_tag_change(repo_id, &tag, None, &actor.name)?;
            record(
                tx,
                &AuditEntry::new(actor, AuditAction::TagDelete)
                    .repository(&p.repository)
                    .reference(&t.tag)
                    .digest(&t.digest)
                    .details(json!({"by": "retention", "reason": t.decision.reason})),
            )?;
            tags += 1;
        }
    }
    for m in p.deleted_manifests() {
        // Tags the plan kept never point at a deleted manifest; any left are
        // ones it could not see, and go with their manifest.
        let digest = Digest::parse(&m.digest)?;
        for tag in tx.delete_tags_pointing_at(repo_id, &digest)? {
            tx.record_tag_change(repo_id, &tag, None, &actor.name)?;
            record(
                tx,
                &AuditEntry::new(actor, AuditAction::TagDelete)
                    .repository(&p.repository)
                    .reference(&tag)
                    .digest(&m.digest)
                    .details(json!({"by": "retention", "reason": m.decision.reason})),
            )?;
            tags += 1;
        }
        if tx.delete_manifest(repo_id, &digest)? {
            record(
                tx,
                &AuditEntry::new(actor, AuditAction::ManifestDelete)
                    .repository(&p.repository)
                    .digest(&m.digest)
                    .details(json!({"by": "retention", "reason": m.decision.reason})),
            )?;
            manifests += 1;
        }
    }
    Ok((tags, manifests))
}

impl Registry {
    /// `GET /api/v1/retention/plan` (dry run) and `POST /api/v1/retention/runs`.
    pub(super) async fn apply_retention(&self, actor: &Actor, dry_run: bool) -> Result<RetentionReport, RegistryError> {
        let rules = std::sync::Arc::new(RetentionRules::new(&self.maintenance.retention.policies));
        let mut report = RetentionReport { dry_run, ..Default::default() };
        let mut last: Option<String> = None;
        loop {
            let cursor = last.clone();
            let names = self.db.read(move |tx| tx.list_repositories(cursor.as_deref(), REPOSITORY_PAGE)).await?;
            let Some(tail) = names.last() else { break };
            last = Some(tail.to_string());
            for name in names.into_iter().filter(|n| rules.applies_to(n.as_str())) {
                let (rules, policy, actor): (_, std::sync::Arc<Policy>, Actor) = (rules.clone(), self.policy.clone(), actor.clone());
                let now = crate::domain::now_ms();
                let step = move |conn: &dyn Tx, apply_it: bool| -> Result<Option<(RepoPlan, u64, u64)>, RegistryError> {
                    let Some(repo_id) = conn.repository_id(&name)? else { return Ok(None) };
                    let p = plan(&facts(conn, repo_id, name.as_str())?, &rules, &policy, now);
                    let (tags, manifests) = if apply_it {
                        apply(conn, &actor, repo_id, &p)?
                    } else {
                        (p.deleted_tags().count() as u64, p.deleted_manifests().count() as u64)
                    };
                    Ok(Some((p, tags, manifests)))
                };
                let outcome =
                    if dry_run { self.db.read(move |c| step(c, false)).await? } else { self.db.write(move |tx| step(tx, true)).await? };
                if let Some((p, tags, manifests)) = outcome {
                    report.tags_deleted += tags;
                    report.manifests_deleted += manifests;
                    report.repositories.push(p);
                }
            }
        }
        tracing::info!(dry_run, manifests = report.manifests_deleted, tags = report.tags_deleted, "retention finished");
        Ok(report)
    }
}

impl Registry {
    /// One repository's retention verdicts as of now, deleting nothing (the
    /// console shows them per manifest); `None` when the repository does
    /// not exist. Reads the whole repository, as a run does.
    pub async fn retention_plan_of(&self, repo: &crate::domain::RepoName) -> Result<Option<RepoPlan>, RegistryError> {
        let rules = RetentionRules::new(&self.maintenance.retention.policies);
        let (policy, name, now) = (self.policy.clone(), repo.clone(), crate::domain::now_ms());
        self.db
            .read(move |tx| {
                let Some(repo_id) = tx.repository_id(&name)? else { return Ok(None) };
                Ok(Some(plan(&facts(tx, repo_id, name.as_str())?, &rules, &policy, now)))
            })
            .await
    }
}
