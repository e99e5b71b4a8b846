//! Rollback: an earlier release of a stage made current again, as a new release.

use serde_json::json;

use super::promotion::move_stage_tag;
use crate::db::{releases::NewRelease, RepoId};
use crate::domain::{Actor, AuditAction, AuditEntry, Digest, ReleaseReason, ReleaseRow, RepoName, Stage};
use crate::registry::manifests::missing_content;
use crate::registry::signatures::{read_verdict, record_verdict};
use crate::registry::{audited_write, refuse, Outcome, Registry, RegistryError, Tx};

impl Registry {
    /// `POST /api/v1/repositories/<name>/stages/<stage>/rollback`: makes an
    /// earlier release of the stage current again, as a new release.
    pub(super) async fn roll_back(
        &self,
        actor: &Actor,
        repo: &RepoName,
        stage: &str,
        to_sequence: Option<i64>,
    ) -> Result<ReleaseRow, RegistryError> {
        self.check_stage(stage)?;
        let (name, actor, stage) = (repo.to_string(), actor.clone(), stage.to_owned());
        let (repo_name, stage_id) = (repo.clone(), Stage::parse(&stage)?);
        let signature_gated = self.policy.gates(&stage).is_some_and(|g| g.require_signature.is_some());
        let release = audited_write(&self.db, move |tx| {
            let repo_id = tx.repository_id(&repo_name)?.ok_or_else(|| RegistryError::NameUnknown(name.clone()))?;
            // A refusal commits its audit row, like a refused promotion.
            let refuse = |why: String, digest: Option<&Digest>| {
                let entry = AuditEntry::new(&actor, AuditAction::RollbackDenied)
                    .repository(&name)
                    .reference(&stage)
                    .digest(digest)
                    .details(json!({ "reason": why, "to": to_sequence }));
                refuse(tx, entry, RegistryError::RollbackDenied(why))
            };
            let Some(current) = tx.current_release(repo_id, &stage_id)? else {
                return refuse(format!("{stage} has no release"), None);
            };
            let target = match to_sequence {
                Some(seq) => tx.release(repo_id, &stage_id, seq)?,
                None => default_rollback_target(tx, repo_id, &stage_id, &current)?,
            };
            let Some(target) = target else {
                return refuse(
                    match to_sequence {
                        Some(seq) => format!("{stage} has no release #{seq}"),
                        None => format!("{stage} has no earlier release to roll back to"),
                    },
                    None,
                );
            };
            if target.sequence == current.sequence {
                return refuse(format!("release #{} is already current", target.sequence), Some(&target.digest));
            }
            let target_digest = &target.digest;
            if tx.manifest_head(repo_id, target_digest)?.is_none() {
                return refuse(format!("the manifest of release #{} is gone", target.sequence), Some(&target.digest));
            }
            if let Some(missing) = missing_content(tx, repo_id, target_digest)? {
                return refuse(format!("release #{} no longer pulls completely: {missing}", target.sequence), Some(&target.digest));
            }
            // The verdict recorded when the target was promoted is re-used:
            // no re-verification, so a key rotated out since does not block
            // the way back. A gated stage refuses a target never verified.
            let verdict = read_verdict(tx, repo_id, &stage_id, target.sequence)?.map(|mut v| {
                v.reused_from_sequence = Some(v.reused_from_sequence.unwrap_or(target.sequence));
                v
            });
            if signature_gated && verdict.is_none() {
                return refuse(
                    format!("release #{} has no recorded signature verdict and {stage} requires signatures", target.sequence),
                    Some(&target.digest),
                );
            }
            let release = tx.append_release(
                repo_id,
                NewRelease {
                    stage: &stage_id,
                    digest: &target.digest,
                    version: target.version.as_deref(),
                    note: None,
                    actor: &actor.name,
                    reason: ReleaseReason::Rollback,
                    rolled_back_from: Some(current.sequence),
                    restored_sequence: Some(target.sequence),
                },
            )?;
            if let Some(v) = &verdict {
                record_verdict(tx, repo_id, &stage_id, release.sequence, v)?;
            }
            move_stage_tag(tx, repo_id, &actor, &name, &release, AuditAction::Rollback, verdict.as_ref())?;
            Ok(Outcome::Done(release))
        })
        .await?;
        tracing::info!(repository = %repo, stage = %release.stage, sequence = release.sequence, digest = %release.digest, "rolled back");
        if signature_gated {
            self.refresh_revoked_gauge().await?;
        }
        Ok(release)
    }
}

/// The release a plain rollback restores: the newest one before the current
/// position whose digest differs from the current digest. After a rollback
/// the position is the release it restored, so rolling back twice goes two
/// steps back instead of undoing the first rollback.
fn default_rollback_target(tx: &dyn Tx, repo_id: RepoId, stage: &Stage, current: &ReleaseRow) -> Result<Option<ReleaseRow>, RegistryError> {
    let mut before = Some(current.restored_sequence.unwrap_or(current.sequence));
    loop {
        let batch = tx.list_releases(repo_id, stage, before, 100)?;
        if batch.is_empty() {
            return Ok(None);
        }
        if let Some(found) = batch.iter().find(|r| r.digest != current.digest) {
            return Ok(Some(found.clone()));
        }
        before = batch.last().map(|r| r.sequence);
    }
}
