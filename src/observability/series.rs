//! The recorder and the list of every series Wharf exports, with its help
//! text. A series recorded elsewhere but missing here still exports, only
//! without help; keep this list and the README's metrics table in step.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::config::MetricsConfig;

/// Latency buckets, in seconds: from a cached manifest read to a large blob.
const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();

/// Installs the recorder once per process.
pub(super) fn install(_config: &MetricsConfig) -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = match PrometheusBuilder::new().set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "metrics: bad histogram buckets; /metrics is off");
                    return None;
                }
            };
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    metrics::gauge!("wharf_build_info", "version" => env!("CARGO_PKG_VERSION"), "commit" => env!("WHARF_COMMIT")).set(1.0);
                    Some(handle)
                }
                Err(e) => {
                    tracing::error!(error = %e, "metrics: cannot install the recorder; /metrics is off");
                    None
                }
            }
        })
        .clone()
}

fn describe() {
    describe_gauge!("wharf_build_info", "Always 1; labels name the version and git commit of the running binary");

    describe_counter!("wharf_http_requests_total", "HTTP requests answered, by route pattern, method and status class");
    describe_histogram!(
        "wharf_http_request_duration_seconds",
        Unit::Seconds,
        "Time from request to response head, by route pattern and method (a body still streaming is not included)"
    );
    describe_gauge!("wharf_http_requests_in_flight", "Requests whose response has not been fully sent yet");
    describe_counter!("wharf_http_request_bytes_total", Unit::Bytes, "Request body bytes read, by route pattern");
    describe_counter!(
        "wharf_http_response_bytes_total",
        Unit::Bytes,
        "Response body bytes sent, by route pattern and transfer (stream: through actix; sendfile: zero-copy, counted as the kernel sends)"
    );
    describe_counter!(
        "wharf_http_repository_requests_total",
        "Registry API requests per repository (only with metrics.repository_labels; past metrics.max_repositories names: `other`)"
    );

    describe_histogram!("wharf_storage_operation_duration_seconds", Unit::Seconds, "Object store operations, by backend and operation");
    describe_counter!("wharf_storage_operation_errors_total", "Object store operations that failed, by backend and operation");
    describe_histogram!(
        "wharf_db_queue_wait_seconds",
        Unit::Seconds,
        "Time a database job waited for a connection thread, by engine and queue (read or write)"
    );
    describe_histogram!("wharf_db_job_duration_seconds", Unit::Seconds, "Time a database job held its connection, by engine and queue");
    describe_histogram!("wharf_db_writes_per_commit", "Write jobs committed together by one transaction (group commit)");
    describe_gauge!("wharf_db_queue_depth", "Database jobs waiting for a connection thread, by engine and queue");

    describe_gauge!("wharf_registry_uploads_open", "Upload sessions open (refreshed in the background)");
    describe_counter!("wharf_registry_blobs_stored_total", "Blob uploads completed");
    describe_counter!("wharf_registry_blob_bytes_stored_total", Unit::Bytes, "Bytes of the blob uploads completed");
    describe_counter!("wharf_events_delivered_total", "Webhook deliveries an endpoint accepted (2xx), by endpoint");
    describe_counter!("wharf_events_failed_total", "Webhook delivery attempts that failed (error, timeout or non-2xx), by endpoint");
    describe_counter!("wharf_events_dead_lettered_total", "Events given up after an endpoint's max_attempts, by endpoint");
    describe_gauge!("wharf_events_backlog", "Webhook deliveries pending over all endpoints (refreshed by the dispatcher)");
    describe_counter!("wharf_gc_runs_total", "Garbage collection runs, by outcome (ok, error) and mode (run, dry_run)");
    describe_counter!("wharf_gc_blobs_deleted_total", "Blobs garbage collection deleted (resumed and stray objects included)");
    describe_counter!("wharf_gc_bytes_freed_total", Unit::Bytes, "Bytes garbage collection freed (stray objects included)");
    describe_counter!("wharf_gc_uploads_deleted_total", "Abandoned upload sessions garbage collection removed");
    describe_gauge!("wharf_gc_last_success_timestamp_seconds", Unit::Seconds, "Unix time the last successful GC run (not a dry run) ended");
    describe_counter!("wharf_retention_runs_total", "Retention runs, by outcome (ok, error) and mode (run, dry_run)");
    describe_counter!("wharf_retention_manifests_deleted_total", "Manifests retention deleted");
    describe_counter!("wharf_retention_tags_deleted_total", "Tags retention deleted");
    describe_gauge!(
        "wharf_retention_last_success_timestamp_seconds",
        Unit::Seconds,
        "Unix time the last successful retention run (not a dry run) ended"
    );

    describe_counter!("wharf_promotions_total", "Promotions that made a new release current, by stage");
    describe_counter!("wharf_promotions_refused_total", "Promotions refused by a gate, by stage");
    describe_counter!(
        "wharf_gate_refusals_total",
        "Gate failures behind refused promotions, by stage and gate (one refusal may fail several gates)"
    );
    describe_counter!("wharf_rollbacks_total", "Rollbacks, by stage");
    describe_counter!("wharf_rollbacks_refused_total", "Rollbacks refused, by stage");
    describe_gauge!(
        "wharf_stage_release_age_seconds",
        Unit::Seconds,
        "Age of the current releases of each stage across repositories: `newest` (the last release to the stage) and `oldest`"
    );
    describe_gauge!(
        "wharf_repository_release_age_seconds",
        Unit::Seconds,
        "Age of the current release per repository and stage (only with metrics.repository_labels, first metrics.max_repositories)"
    );
    describe_gauge!("wharf_audit_chain_height", "Rows in the audit chain (the newest row's id)");
    describe_gauge!(
        "wharf_audit_last_verification_timestamp_seconds",
        Unit::Seconds,
        "Unix time the background verification last found the whole audit chain intact"
    );
    describe_gauge!("wharf_audit_chain_valid", "1 if the last background verification found the chain intact, 0 if it found a broken row");
    describe_gauge!("wharf_backup_last_success_timestamp_seconds", Unit::Seconds, "Unix time the last successful backup finished");
    describe_counter!("wharf_backup_runs_total", "Backups run, by outcome (success, failure)");
    describe_counter!(
        "wharf_job_runs_total",
        "Ticks of a leased scheduled job (gc, retention, backup, events), by outcome: ok, error, skipped_not_holder (another node holds the lease), lease_error, lease_lost (stopped mid-run)"
    );
    describe_counter!("wharf_backup_blobs_copied_total", "Blobs copied to a backup destination (blobs already there are skipped)");
    describe_counter!("wharf_backup_bytes_copied_total", Unit::Bytes, "Bytes of blobs copied to a backup destination");
    describe_counter!("wharf_diff_layers_indexed_total", "Layers read to build their file index, by outcome (indexed, refused, error)");
    describe_histogram!("wharf_diff_layer_index_seconds", Unit::Seconds, "Time to read one layer and store its file index");
    describe_counter!("wharf_diff_release_summaries_total", "Diff summaries of promotions computed, by state (ready, unavailable)");
    describe_counter!("wharf_signature_checks_total", "Signature gate checks at promotion, by outcome (passed, refused)");
    describe_gauge!(
        "wharf_releases_signed_by_revoked_key",
        "Releases whose recorded verdict names a trusted key that has since been revoked"
    );
    describe_gauge!("wharf_metrics_refresh_timestamp_seconds", Unit::Seconds, "Unix time the database-backed gauges were last refreshed");

    describe_gauge!("wharf_ready", "1 if the last readiness check found the database and object store answering and the node not drained");
    describe_gauge!("wharf_draining", "1 while the node is drained (/readyz answers 503)");
}
