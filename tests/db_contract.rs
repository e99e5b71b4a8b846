//! The database contract: what every engine behind `wharf::db::Tx` must do,
//! checked through the public API only. Each test is an `async fn(Db)` in a
//! module under `db_contract/`; `db_contract_suite!` instantiates all of them
//! for one engine, given its factory. A second engine is one more line at
//! the bottom (its factory in `db_contract/engines.rs`).
//!
//! Besides every query, the suite runs the read-then-write steps that are
//! correct on SQLite only because it has one writer (audit chain head,
//! release sequence, upload part sequence, repository creation, tag move,
//! GC taking a blob against a manifest PUT that references it) from many
//! tasks at once, so an engine with concurrent writers must lock to pass.

#[path = "db_contract/accounts.rs"]
mod accounts;
#[path = "db_contract/audit.rs"]
mod audit;
#[path = "db_contract/backup.rs"]
mod backup;
#[path = "db_contract/blobs.rs"]
mod blobs;
#[path = "db_contract/console_sessions.rs"]
mod console_sessions;
#[path = "db_contract/engines.rs"]
mod engines;
#[path = "db_contract/events.rs"]
mod events;
#[path = "db_contract/gc.rs"]
mod gc;
#[path = "db_contract/job_leases.rs"]
mod job_leases;
#[path = "db_contract/login_failures.rs"]
mod login_failures;
#[path = "db_contract/manifests.rs"]
mod manifests;
#[path = "common/pg.rs"]
mod pg;
#[path = "db_contract/releases.rs"]
mod releases;
#[path = "db_contract/repositories.rs"]
mod repositories;
#[path = "db_contract/signatures.rs"]
mod signatures;
#[path = "db_contract/signing_keys.rs"]
mod signing_keys;
#[path = "db_contract/tags.rs"]
mod tags;
#[path = "db_contract/uploads.rs"]
mod uploads;
#[path = "db_contract/writer.rs"]
mod writer;

/// One `#[tokio::test]` per contract test, in a module named after the engine.
macro_rules! db_contract_suite {
    ($engine:ident, $factory:path) => {
        mod $engine {
            db_contract_suite!(@tests $factory;
                repositories::ensure_creates_once_and_finds_by_name,
                repositories::list_pages_in_name_order,
                repositories::concurrent_creation_makes_one_row,
                repositories::counts_tags_and_manifests_of_the_named_repositories,
                blobs::blob_rows_and_links,
                manifests::insert_get_head_and_delete,
                manifests::references_children_and_facts,
                manifests::referrers_by_subject,
                tags::set_move_list_and_delete,
                tags::history_is_newest_first_and_pages,
                tags::concurrent_moves_return_each_previous_target_once,
                uploads::session_parts_and_conditional_append,
                uploads::concurrent_appends_keep_one_gap_free_part_sequence,
                releases::append_current_get_and_list,
                releases::concurrent_promotions_get_distinct_gap_free_sequences,
                signatures::verdicts_are_recorded_and_current,
                signing_keys::signing_keys_add_list_and_delete,
                signing_keys::concurrent_first_key_creation_makes_one,
                audit::append_chains_and_filters,
                audit::concurrent_appends_form_one_verifiable_chain,
                events::outbox_cursors_and_deliveries,
                accounts::accounts_and_grants,
                console_sessions::console_sessions_expire_and_end,
                login_failures::concurrent_failures_are_each_counted,
                login_failures::a_window_expires_and_starts_again,
                login_failures::clearing_by_key_and_by_account,
                login_failures::the_table_is_pruned_and_capped,
                gc::claims_candidates_take_and_finish,
                gc::stale_uploads_and_strays,
                gc::layer_index_stores_once,
                gc::release_diffs_upsert_and_list,
                gc::take_against_manifest_put_has_one_winner,
                writer::a_failed_or_panicking_write_rolls_back_and_the_writer_goes_on,
                writer::queued_writes_fail_or_commit_each_on_its_own,
                backup::a_backup_fence_stops_every_take,
                backup::a_fence_is_renewed_by_taking_it_again,
                job_leases::take_renew_expire_and_release,
                job_leases::concurrent_takers_have_one_winner,
            );
        }
    };
    (@tests $factory:path; $($module:ident :: $test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                let Some(engine) = $factory() else { return };
                crate::$module::$test(engine.db.clone()).await;
            }
        )*
    };
}

db_contract_suite!(sqlite, crate::engines::sqlite);
db_contract_suite!(postgres, crate::engines::postgres);

/// The snapshot opened as a SQLite file is SQLite's own (PostgreSQL's is a
/// pg_dump archive, checked black-box in tests/backup.rs).
mod sqlite_backup {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn snapshot_matches_its_view() {
        let engine = crate::engines::sqlite().expect("sqlite");
        crate::backup::snapshot_matches_its_view(engine.db.clone()).await;
    }
}
