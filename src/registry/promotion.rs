//! Promotion and the histories that explain it (rollback is in `rollback`).
//!
//! A promotion or rollback appends a release, moves the stage tag and writes
//! its audit row in one transaction, so the stage tag always equals the
//! newest release's digest.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::db::{releases::NewRelease, tags::TagChange, RepoId};
use crate::domain::{Actor, AuditAction, AuditEntry, Digest, MediaType, Reference, ReleaseReason, ReleaseRow, RepoName, Stage, Tag};
use crate::governance::gates::{self, GateFailure, ImageFacts, PromotionFacts};
use crate::governance::signatures::Verdict;
use crate::registry::manifests::{missing_content, parse};
use crate::registry::signatures::record_verdict;
use crate::registry::{audited_write, record, refuse, Outcome, Registry, RegistryError, Tx};

/// Image configs larger than this are not read for gate checks.
const MAX_CONFIG_BYTES: u64 = 8 * 1024 * 1024;
const MAX_VERSION_LEN: usize = 128;
const MAX_NOTE_LEN: usize = 4096;

pub struct PromotionRequest {
    pub reference: Reference,
    pub stage: String,
    pub version: Option<String>,
    pub note: Option<String>,
}

/// The outcome of a promotion: the stage's current release, and whether
/// this call made it.
#[derive(Debug, Clone)]
pub struct Promotion {
    pub release: ReleaseRow,
    /// The digest was already current in the stage: nothing was written (no
    /// release, no tag move, no audit row), so a retried promotion (a CI
    /// retry loop) is an idempotent success instead of a duplicate release.
    /// The retry's version and note are not applied; the existing release
    /// is returned as it is.
    pub unchanged: bool,
}

impl Registry {
    /// STAGE_UNKNOWN naming the configured stages, unless `stage` is one.
    pub(crate) fn check_stage(&self, stage: &str) -> Result<(), RegistryError> {
        if self.policy.is_stage(stage) {
            Ok(())
        } else {
            Err(RegistryError::StageUnknown { stage: stage.to_owned(), known: self.policy.stages().to_vec() })
        }
    }

    /// `POST /api/v1/repositories/<name>/promotions`.
    pub(super) async fn promote_gated(&self, actor: &Actor, repo: &RepoName, req: PromotionRequest) -> Result<Promotion, RegistryError> {
        self.check_stage(&req.stage)?;
        if req.version.as_ref().is_some_and(|v| v.len() > MAX_VERSION_LEN) {
            return Err(RegistryError::BadRequest(format!("version is longer than {MAX_VERSION_LEN} bytes")));
        }
        if req.note.as_ref().is_some_and(|n| n.len() > MAX_NOTE_LEN) {
            return Err(RegistryError::BadRequest(format!("note is longer than {MAX_NOTE_LEN} bytes")));
        }
        let manifest = self.get_manifest(repo, &req.reference).await?;
        let digest = manifest.digest.to_string();
        let gate = self.policy.gates(&req.stage).cloned();
        // Reading image configs touches storage, so it happens before the transaction.
        let images = match &gate {
            Some(g) if g.non_root || !g.required_labels.is_empty() => {
                self.image_facts(repo, &manifest.media_type, &manifest.content).await?
            }
            _ => vec![],
        };
        // Signatures and SBOMs are read from storage too, before the transaction.
        let signed = match &gate {
            Some(g) => self.signature_gates(repo, g, &manifest.digest, &manifest.media_type, &manifest.content).await?,
            None => None,
        };
        let previous_stage = self.policy.previous_stage(&req.stage).map(str::to_owned);
        let (name, actor, stage) = (repo.to_string(), actor.clone(), req.stage.clone());
        let (version, note) = (req.version, req.note);
        // What the user typed, so refusals name it: `repo:tag (digest)` or `repo@digest`.
        let (typed, subject) = match &req.reference {
            Reference::Tag(tag) => (tag.to_string(), format!("{repo}:{tag} ({digest})")),
            Reference::Digest(_) => (digest.clone(), format!("{repo}@{digest}")),
        };
        let (repo_name, digest_id) = (repo.clone(), manifest.digest.clone());
        let summaries = self.diff.config.release_summaries;
        let signature_gated = gate.as_ref().is_some_and(|g| g.require_signature.is_some());
        let promotion = audited_write(&self.db, move |tx| {
            let repo_id = tx.repository_id(&repo_name)?.ok_or_else(|| RegistryError::NameUnknown(name.clone()))?;
            let stage_id = Stage::parse(&stage)?;
            // Checked inside the write transaction, so two racing retries
            // cannot both append a release.
            if let Some(current) = tx.current_release(repo_id, &stage_id)?.filter(|c| c.digest == digest_id) {
                return Ok(Outcome::Done(Promotion { release: current, unchanged: true }));
            }
            let mut failed = Vec::new();
            if let Some(missing) = missing_content(tx, repo_id, &digest_id)? {
                failed.push(GateFailure::Incomplete { missing });
            }
            let mut entered_previous_at = None;
            if let Some(prev) = &previous_stage {
                match tx.first_release_of(repo_id, &Stage::parse(prev)?, &digest_id)? {
                    Some(r) => entered_previous_at = Some(r.created_at),
                    None => failed.push(GateFailure::Order { subject: typed.clone(), previous: prev.clone(), stage: stage.clone() }),
                }
            }
            if let Some(gate) = &gate {
                let facts = PromotionFacts {
                    entered_previous_at,
                    now: crate::domain::now_ms(),
                    images,
                    pushed_by: tx.manifest_pushed_by(repo_id, &digest_id)?,
                    promoter: actor.name.clone(),
                };
                // The order rule already covers "never in the previous stage".
                failed.extend(gates::failures(gate, &facts).into_iter().filter(|f| *f != GateFailure::NeverSoaked));
            }
            if let Some(Err(refused)) = &signed {
                failed.extend(refused.iter().cloned());
            }
            if !failed.is_empty() {
                let entry = AuditEntry::new(&actor, AuditAction::PromotionDenied)
                    .repository(&name)
                    .reference(&stage)
                    .digest(&digest)
                    .details(json!({ "failed_gates": failed }));
                return refuse(tx, entry, RegistryError::PromotionDenied { subject, stage, failed });
            }
            let release = tx.append_release(
                repo_id,
                NewRelease {
                    stage: &stage_id,
                    digest: &digest_id,
                    version: version.as_deref(),
                    note: note.as_deref(),
                    actor: &actor.name,
                    reason: ReleaseReason::Promote,
                    rolled_back_from: None,
                    restored_sequence: None,
                },
            )?;
            let verdict = signed.and_then(Result::ok);
            if let Some(v) = &verdict {
                record_verdict(tx, repo_id, &stage_id, release.sequence, v)?;
            }
            move_stage_tag(tx, repo_id, &actor, &name, &release, AuditAction::Promotion, verdict.as_ref())?;
            super::release_diff::record_pending(tx, repo_id, &release, summaries)?;
            Ok(Outcome::Done(Promotion { release, unchanged: false }))
        })
        .await?;
        let release = &promotion.release;
        if signature_gated && !promotion.unchanged {
            self.refresh_revoked_gauge().await?;
        }
        if promotion.unchanged {
            tracing::info!(repository = %repo, stage = %release.stage, sequence = release.sequence, digest = %release.digest, "already current; promotion unchanged");
        } else {
            tracing::info!(repository = %repo, stage = %release.stage, sequence = release.sequence, digest = %release.digest, "promoted");
            // The diff summary against the replaced release, once committed.
            self.spawn_release_diff(repo.clone(), release.stage.to_string(), release.sequence);
        }
        Ok(promotion)
    }

    /// The current release of every configured stage (in stage order).
    pub async fn stages(&self, repo: &RepoName) -> Result<Vec<(String, Option<ReleaseRow>)>, RegistryError> {
        let (name, stages) = (repo.clone(), self.policy.stages().to_vec());
        self.db
            .read(move |tx| -> Result<_, RegistryError> {
                let repo_id = tx.repository_id(&name)?.ok_or_else(|| RegistryError::NameUnknown(name.to_string()))?;
                stages.into_iter().map(|s| Ok((s.clone(), tx.current_release(repo_id, &Stage::parse(&s)?)?))).collect()
            })
            .await
    }

    /// Releases of a stage, newest first, below sequence `before`.
    pub async fn releases(&self, repo: &RepoName, stage: &str, before: Option<i64>, n: u32) -> Result<Vec<ReleaseRow>, RegistryError> {
        self.check_stage(stage)?;
        let (name, stage) = (repo.clone(), Stage::parse(stage)?);
        self.db
            .read(move |tx| -> Result<_, RegistryError> {
                let repo_id = tx.repository_id(&name)?.ok_or_else(|| RegistryError::NameUnknown(name.to_string()))?;
                Ok(tx.list_releases(repo_id, &stage, before, n)?)
            })
            .await
    }

    /// Every digest a tag pointed to, newest first, below event id `before`.
    pub async fn tag_history(&self, repo: &RepoName, tag: &Tag, before: Option<i64>, n: u32) -> Result<Vec<TagChange>, RegistryError> {
        let (name, tag) = (repo.clone(), tag.clone());
        self.db
            .read(move |tx| -> Result<_, RegistryError> {
                let repo_id = tx.repository_id(&name)?.ok_or_else(|| RegistryError::NameUnknown(name.to_string()))?;
                Ok(tx.tag_history(repo_id, &tag, before, n)?)
            })
            .await
    }

    /// Labels and user of the image, or of each platform of an index.
    async fn image_facts(&self, repo: &RepoName, media_type: &str, content: &[u8]) -> Result<Vec<ImageFacts>, RegistryError> {
        let manifest = parse(Some(media_type), content)?;
        if let Some(config) = &manifest.config {
            return Ok(vec![self.config_facts(repo, "image".into(), config).await?]);
        }
        let mut out = Vec::new();
        for child in &manifest.children {
            let stored = self.get_manifest(repo, &Reference::Digest(child.digest.clone())).await?;
            // Nested indexes and artifacts carry no runnable config.
            if !stored.media_type.parse::<MediaType>().is_ok_and(MediaType::is_image) {
                continue;
            }
            let Some(config) = parse(Some(&stored.media_type), &stored.content)?.config else { continue };
            let platform = child.platform.clone().unwrap_or_else(|| "unknown/unknown".into());
            out.push(self.config_facts(repo, platform, &config).await?);
        }
        Ok(out)
    }

    async fn config_facts(&self, repo: &RepoName, platform: String, digest: &Digest) -> Result<ImageFacts, RegistryError> {
        // The repository must hold it, not just the registry.
        self.stat_blob(repo, digest).await?;
        let bytes = self
            .read_small_blob(digest, MAX_CONFIG_BYTES)
            .await?
            .ok_or_else(|| RegistryError::BadRequest(format!("image config {digest} is larger than {MAX_CONFIG_BYTES} bytes")))?;
        let config: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let labels: BTreeMap<String, String> = config["config"]["Labels"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
            .unwrap_or_default();
        let user = config["config"]["User"].as_str().map(str::to_owned);
        Ok(ImageFacts { platform, labels, user })
    }
}

/// Points the stage tag at the release's digest, with tag history and audit.
pub(super) fn move_stage_tag(
    tx: &dyn Tx,
    repo_id: RepoId,
    actor: &Actor,
    repo: &str,
    release: &ReleaseRow,
    action: AuditAction,
    verdict: Option<&Verdict>,
) -> Result<(), RegistryError> {
    let (tag, digest) = (release.stage.tag(), &release.digest);
    let moved_from = tx.set_tag(repo_id, &tag, digest)?;
    tx.record_tag_change(repo_id, &tag, Some(digest), &actor.name)?;
    let mut details = json!({
            "sequence": release.sequence,
            "version": release.version,
            "previous_digest": moved_from.as_ref().map(Digest::as_str),
            "rolled_back_from": release.rolled_back_from,
            "restored_sequence": release.restored_sequence,
    });
    // Only gated releases carry the key: earlier audit rows keep their shape.
    if let (Some(v), Some(map)) = (verdict, details.as_object_mut()) {
        map.insert("signature".into(), json!(v));
    }
    record(tx, &AuditEntry::new(actor, action).repository(repo).reference(&release.stage).digest(&release.digest).details(details))
}
