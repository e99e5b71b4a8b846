//! The registry's and governance's series: GC and retention runs with what
//! they freed, promotions and rollbacks per stage, gate refusals by gate.
//! Each use-case keeps its body where it was; the public entry point here
//! runs it and records the outcome, so every caller (API, CLI, schedule)
//! is counted the same way. Labels are the configured stages and the fixed
//! gate names of [`GateFailure::gate`](crate::governance::GateFailure::gate).

use serde_json::json;

use crate::domain::{Actor, AuditAction, ReleaseRow, RepoName};
use crate::registry::gc::GcReport;
use crate::registry::promotion::{Promotion, PromotionRequest};
use crate::registry::retention::RetentionReport;
use crate::registry::{Registry, RegistryError, RunTrigger};

fn outcome<T>(result: &Result<T, RegistryError>) -> &'static str {
    if result.is_ok() {
        "ok"
    } else {
        "error"
    }
}

fn mode(dry_run: bool) -> &'static str {
    if dry_run {
        "dry_run"
    } else {
        "run"
    }
}

fn now_seconds() -> f64 {
    crate::domain::now_ms() as f64 / 1000.0
}

impl Registry {
    /// `POST /api/v1/gc/runs`, `wharf gc`, and the schedule. A run that is
    /// no dry run ends with its `gc.run` audit row.
    pub async fn run_gc(&self, actor: &Actor, trigger: RunTrigger, dry_run: bool) -> Result<GcReport, RegistryError> {
        let started_at = crate::domain::now_ms();
        let mut result = self.collect_garbage(actor, dry_run).await;
        if let Some(r) = result.as_ref().ok().filter(|_| !dry_run) {
            let counts = json!({
                "blobs_deleted": r.blobs_deleted,
                "bytes_freed": r.bytes_freed,
                "uploads_deleted": r.uploads_deleted,
                "resumed": r.resumed,
                "strays_deleted": r.strays_deleted,
                "stray_bytes_freed": r.stray_bytes_freed,
            });
            if let Err(e) = self.record_run(actor, AuditAction::GcRun, trigger, started_at, counts).await {
                result = Err(e);
            }
        }
        metrics::counter!("wharf_gc_runs_total", "outcome" => outcome(&result), "mode" => mode(dry_run)).increment(1);
        if let Some(report) = result.as_ref().ok().filter(|_| !dry_run) {
            metrics::counter!("wharf_gc_blobs_deleted_total").increment(report.blobs_deleted + report.resumed + report.strays_deleted);
            metrics::counter!("wharf_gc_bytes_freed_total").increment(report.bytes_freed + report.stray_bytes_freed);
            metrics::counter!("wharf_gc_uploads_deleted_total").increment(report.uploads_deleted);
            metrics::gauge!("wharf_gc_last_success_timestamp_seconds").set(now_seconds());
        }
        result
    }

    /// `GET /api/v1/retention/plan` (dry run), `POST /api/v1/retention/runs`,
    /// `wharf retention`, and the schedule.
    /// A run that is no dry run ends with its `retention.run` audit row.
    pub async fn run_retention(&self, actor: &Actor, trigger: RunTrigger, dry_run: bool) -> Result<RetentionReport, RegistryError> {
        let started_at = crate::domain::now_ms();
        let mut result = self.apply_retention(actor, dry_run).await;
        if let Some(r) = result.as_ref().ok().filter(|_| !dry_run) {
            let counts = json!({
                "manifests_deleted": r.manifests_deleted,
                "tags_deleted": r.tags_deleted,
                "repositories": r.repositories.len(),
            });
            if let Err(e) = self.record_run(actor, AuditAction::RetentionRun, trigger, started_at, counts).await {
                result = Err(e);
            }
        }
        metrics::counter!("wharf_retention_runs_total", "outcome" => outcome(&result), "mode" => mode(dry_run)).increment(1);
        if let Some(report) = result.as_ref().ok().filter(|_| !dry_run) {
            metrics::counter!("wharf_retention_manifests_deleted_total").increment(report.manifests_deleted);
            metrics::counter!("wharf_retention_tags_deleted_total").increment(report.tags_deleted);
            metrics::gauge!("wharf_retention_last_success_timestamp_seconds").set(now_seconds());
        }
        result
    }

    /// `POST /api/v1/repositories/<name>/promotions`.
    pub async fn promote(&self, actor: &Actor, repo: &RepoName, req: PromotionRequest) -> Result<Promotion, RegistryError> {
        let result = self.promote_gated(actor, repo, req).await;
        match &result {
            Ok(p) if !p.unchanged => metrics::counter!("wharf_promotions_total", "stage" => p.release.stage.to_string()).increment(1),
            Err(RegistryError::PromotionDenied { stage, failed, .. }) => {
                metrics::counter!("wharf_promotions_refused_total", "stage" => stage.clone()).increment(1);
                for gate in failed {
                    metrics::counter!("wharf_gate_refusals_total", "stage" => stage.clone(), "gate" => gate.gate()).increment(1);
                }
            }
            _ => {}
        }
        result
    }

    /// `POST /api/v1/repositories/<name>/stages/<stage>/rollback`.
    pub async fn rollback(
        &self,
        actor: &Actor,
        repo: &RepoName,
        stage: &str,
        to_sequence: Option<i64>,
    ) -> Result<ReleaseRow, RegistryError> {
        let result = self.roll_back(actor, repo, stage, to_sequence).await;
        match &result {
            Ok(release) => metrics::counter!("wharf_rollbacks_total", "stage" => release.stage.to_string()).increment(1),
            // Only a configured stage gets this far, so the label stays bounded.
            Err(RegistryError::RollbackDenied(_)) => {
                metrics::counter!("wharf_rollbacks_refused_total", "stage" => stage.to_owned()).increment(1)
            }
            Err(_) => {}
        }
        result
    }
}
