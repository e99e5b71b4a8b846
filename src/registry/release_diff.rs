//! The diff summary each promotion keeps against the release it replaced.
//!
//! The promotion's transaction records the summary as pending (in
//! `release_diff`, never in `releases` or the audit chain, which do not
//! change after the fact); once it commits, a background task computes the
//! diff, one at a time across the server and within
//! `diff.release_summary_time`, and records it as ready or unavailable with
//! the reason. Summaries still pending at start-up (a server stopped
//! mid-way) are computed again.

use serde_json::json;

use super::diff::{DiffError, DiffRequest, DiffSummary};
use super::{Registry, RegistryError, Tx};
use crate::db::layer_index::{ReleaseDiffRow, ReleaseDiffState};
use crate::db::RepoId;
use crate::domain::{now_ms, ImageRef, Platform, ReleaseRow, RepoName, Stage};

/// Why a release has no summary, when it never had one to compute.
pub const FIRST_RELEASE: &str = "first release of the stage: nothing replaced";
pub const DISABLED: &str = "release summaries are off (diff.release_summaries)";

/// Inside the promotion's transaction, after the release is appended.
pub(super) fn record_pending(tx: &dyn Tx, repo: RepoId, release: &ReleaseRow, enabled: bool) -> Result<(), RegistryError> {
    let stage = &release.stage;
    let previous = if release.sequence > 1 { tx.release(repo, stage, release.sequence - 1)? } else { None };
    let (state, reason) = match (&previous, enabled) {
        (None, _) => (ReleaseDiffState::Unavailable, Some(FIRST_RELEASE.to_owned())),
        (Some(_), false) => (ReleaseDiffState::Unavailable, Some(DISABLED.to_owned())),
        (Some(_), true) => (ReleaseDiffState::Pending, None),
    };
    let row = ReleaseDiffRow {
        sequence: release.sequence,
        state,
        from_digest: previous.map(|p| p.digest),
        summary: None,
        reason,
        updated_at: now_ms(),
    };
    tx.set_release_diff(repo, stage, &row)?;
    Ok(())
}

impl Registry {
    /// Computes a pending release summary in the background.
    pub(super) fn spawn_release_diff(&self, repo: RepoName, stage: String, sequence: i64) {
        if !self.diff.config.release_summaries {
            return;
        }
        let registry = self.clone();
        tokio::spawn(async move { registry.compute_release_diff(repo, stage, sequence).await });
    }

    /// Starts every summary left pending by a server that stopped mid-way.
    pub fn resume_release_diffs(&self) {
        if !self.diff.config.release_summaries {
            return;
        }
        let registry = self.clone();
        tokio::spawn(async move {
            let pending = match registry.db.read(|tx| tx.pending_release_diffs()).await {
                Ok(p) => p,
                Err(e) => return tracing::warn!(error = %e, "reading pending release summaries"),
            };
            for p in pending {
                registry.compute_release_diff(p.repo, p.stage.to_string(), p.sequence).await;
            }
        });
    }

    async fn compute_release_diff(&self, repo: RepoName, stage: String, sequence: i64) {
        // One at a time: a burst of promotions must not index many images at once.
        let Ok(_permit) = self.diff.background.acquire().await else { return };
        // Only a pending summary is computed (a first release has none to compute).
        let (name, stage_text) = (repo.clone(), stage.clone());
        let pending = self
            .db
            .read(move |tx| -> Result<bool, RegistryError> {
                let Some(repo_id) = tx.repository_id(&name)? else { return Ok(false) };
                let rows = tx.release_diffs(repo_id, &Stage::parse(&stage_text)?, &[sequence])?;
                Ok(rows.first().is_some_and(|r| r.state == ReleaseDiffState::Pending))
            })
            .await;
        if !matches!(pending, Ok(true)) {
            return;
        }
        let started = std::time::Instant::now();
        let limit = self.diff.config.release_summary_time;
        let outcome = match tokio::time::timeout(limit, self.release_summary(&repo, &stage, sequence)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("not computed within {} (diff.release_summary_time)", humantime::format_duration(limit))),
        };
        let (state, summary, reason) = match outcome {
            Ok(summary) => (ReleaseDiffState::Ready, Some(summary.to_string()), None),
            Err(reason) => (ReleaseDiffState::Unavailable, None, Some(reason)),
        };
        metrics::counter!("wharf_diff_release_summaries_total", "state" => state.as_str()).increment(1);
        let (name, stage_text) = (repo.clone(), stage.clone());
        let written = self
            .db
            .write(move |tx| -> Result<(), RegistryError> {
                let repo_id = tx.repository_id(&name)?.ok_or_else(|| RegistryError::NameUnknown(name.to_string()))?;
                let stage = Stage::parse(&stage_text)?;
                let from_digest = tx.release_diffs(repo_id, &stage, &[sequence])?.into_iter().next().and_then(|r| r.from_digest);
                let row = ReleaseDiffRow { sequence, state, from_digest, summary, reason, updated_at: now_ms() };
                Ok(tx.set_release_diff(repo_id, &stage, &row)?)
            })
            .await;
        match written {
            Ok(()) => {
                tracing::info!(repository = %repo, stage, sequence, state = state.as_str(), elapsed_ms = started.elapsed().as_millis() as u64, "release diff summary")
            }
            Err(e) => tracing::warn!(repository = %repo, stage, sequence, error = %e, "recording a release diff summary"),
        }
    }

    /// The summary JSON of release `sequence` against the one before it.
    async fn release_summary(&self, repo: &RepoName, stage: &str, sequence: i64) -> Result<serde_json::Value, String> {
        let stage_tag = crate::domain::Tag::parse(stage).map_err(|e| e.to_string())?;
        let from = ImageRef::Release { stage: stage_tag.clone(), sequence: sequence - 1 };
        let to = ImageRef::Release { stage: stage_tag, sequence };
        let request = |platform: Option<Platform>| DiffRequest { from: from.clone(), to: to.clone(), platform, after: None, limit: 0 };
        let report = match self.diff(repo, request(None)).await {
            // An index: the summary is of its first platform.
            Err(DiffError::PlatformRequired { available, .. }) => {
                let first = available.split(", ").next().and_then(|p| Platform::parse(p).ok());
                self.diff(repo, request(first)).await
            }
            other => other,
        }
        .map_err(|e| e.to_string())?;
        Ok(summary_json(&report.to.platform, &report.summary, report.added.iter().map(|l| l.size).sum()))
    }
}

/// What the history shows of a ready summary.
fn summary_json(platform: &Option<String>, s: &DiffSummary, layers_added_bytes: u64) -> serde_json::Value {
    json!({
        "platform": platform,
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
        "layers_added_bytes": layers_added_bytes,
        "packages_added": s.packages_added,
        "packages_removed": s.packages_removed,
        "packages_changed": s.packages_changed,
    })
}

impl Registry {
    /// The recorded summaries of these releases of a stage.
    pub async fn release_diffs(&self, repo: &RepoName, stage: &str, sequences: Vec<i64>) -> Result<Vec<ReleaseDiffRow>, RegistryError> {
        let (name, stage) = (repo.clone(), Stage::parse(stage)?);
        self.db
            .read(move |tx| -> Result<_, RegistryError> {
                let repo_id = tx.repository_id(&name)?.ok_or_else(|| RegistryError::NameUnknown(name.to_string()))?;
                Ok(tx.release_diffs(repo_id, &stage, &sequences)?)
            })
            .await
    }
}
