//! The gauges that need a database query, recomputed every
//! `metrics.refresh_interval`, and the audit chain re-verified every
//! `metrics.audit_verify_interval`. A scrape only reads what they left.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::db::DbError;
use crate::domain::{now_ms, AuditFilter, Stage};
use crate::registry::Registry;

/// Per repository, when each stage's current release was made (if any).
type ReleaseTimes = Vec<(String, Vec<Option<i64>>)>;

/// Repositories read per database job while ages are computed.
const REPOSITORY_PAGE: u32 = 200;
/// Upload sessions counted at most per refresh (the gauge then reads this).
const MAX_UPLOADS_COUNTED: u32 = 10_000;

pub(super) fn start(config: &Config, registry: &Registry, stop: CancellationToken) {
    let repository_labels = config.metrics.repository_labels.then_some(config.metrics.max_repositories);
    let (every, r, s) = (config.metrics.refresh_interval, registry.clone(), stop.clone());
    repeat(every, s, "metrics refresh", move || {
        let r = r.clone();
        async move { refresh(&r, repository_labels).await }
    });
    if let Some(every) = config.metrics.audit_verify_interval {
        let r = registry.clone();
        repeat(every, stop, "audit verification", move || {
            let r = r.clone();
            async move { verify_audit(&r).await }
        });
    }
}

/// Runs `job` now and then every `every` until `stop`.
fn repeat<F, Fut>(every: Duration, stop: CancellationToken, name: &'static str, job: F)
where
    F: Fn() -> Fut + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + 'static,
{
    actix_web::rt::spawn(async move {
        loop {
            if let Err(e) = job().await {
                tracing::warn!(job = name, error = %e, "background metrics job failed; the next run retries");
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
    });
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

async fn refresh(registry: &Registry, repository_labels: Option<usize>) -> Result<(), String> {
    let db = registry.db();
    let height = db
        .read(|tx| tx.list_audit(&AuditFilter::default(), 1))
        .await
        .map_err(|e: DbError| e.to_string())?
        .first()
        .map_or(0, |row| row.record.id);
    metrics::gauge!("wharf_audit_chain_height").set(height as f64);

    // Every session last touched before "later than now" is every session.
    let uploads = db.read(|tx| tx.stale_uploads(i64::MAX, MAX_UPLOADS_COUNTED)).await.map_err(|e: DbError| e.to_string())?.len();
    metrics::gauge!("wharf_registry_uploads_open").set(uploads as f64);

    let stages: Vec<String> = registry.policy().stages().to_vec();
    let mut newest: Vec<Option<i64>> = vec![None; stages.len()];
    let mut oldest: Vec<Option<i64>> = vec![None; stages.len()];
    let mut labelled = 0usize;
    let mut last: Option<String> = None;
    let now = now_ms();
    loop {
        let (cursor, st) = (last.clone(), stages.clone());
        // One job per page: (repository, per stage the current release's time).
        let page = db
            .read(move |tx| -> Result<ReleaseTimes, DbError> {
                let names = tx.list_repositories(cursor.as_deref(), REPOSITORY_PAGE)?;
                let mut out = Vec::with_capacity(names.len());
                for name in names {
                    let Some(id) = tx.repository_id(&name)? else { continue };
                    let mut times = Vec::with_capacity(st.len());
                    for stage in &st {
                        let current = match Stage::parse(stage) {
                            Ok(stage) => tx.current_release(id, &stage)?,
                            Err(_) => None,
                        };
                        times.push(current.map(|r| r.created_at));
                    }
                    out.push((name.to_string(), times));
                }
                Ok(out)
            })
            .await
            .map_err(|e| e.to_string())?;
        let Some((tail, _)) = page.last() else { break };
        last = Some(tail.clone());
        let full = page.len() as u32 == REPOSITORY_PAGE;
        for (name, times) in page {
            let label = repository_labels.is_some_and(|cap| labelled < cap);
            if label && times.iter().any(Option::is_some) {
                labelled += 1;
            }
            for (i, at) in times.into_iter().enumerate() {
                let Some(at) = at else { continue };
                newest[i] = Some(newest[i].map_or(at, |n| n.max(at)));
                oldest[i] = Some(oldest[i].map_or(at, |o| o.min(at)));
                if label {
                    metrics::gauge!("wharf_repository_release_age_seconds", "repository" => name.clone(), "stage" => stages[i].clone())
                        .set(seconds(now - at));
                }
            }
        }
        if !full {
            break;
        }
    }
    for (i, stage) in stages.iter().enumerate() {
        if let (Some(n), Some(o)) = (newest[i], oldest[i]) {
            metrics::gauge!("wharf_stage_release_age_seconds", "stage" => stage.clone(), "release" => "newest").set(seconds(now - n));
            metrics::gauge!("wharf_stage_release_age_seconds", "stage" => stage.clone(), "release" => "oldest").set(seconds(now - o));
        }
    }
    metrics::gauge!("wharf_metrics_refresh_timestamp_seconds").set(seconds(now_ms()));
    Ok(())
}

async fn verify_audit(registry: &Registry) -> Result<(), String> {
    let report = registry.verify_audit().await.map_err(|e| e.to_string())?;
    metrics::gauge!("wharf_audit_chain_valid").set(if report.valid { 1.0 } else { 0.0 });
    if report.valid {
        metrics::gauge!("wharf_audit_last_verification_timestamp_seconds").set(seconds(now_ms()));
    } else {
        tracing::error!(first_broken = ?report.first_broken, "background verification: the audit chain is broken");
    }
    Ok(())
}
