//! The SQLite engine: connections, threads, and one file of queries per
//! aggregate trait. The statements are the ones Wharf has always run; this
//! module only binds them to the traits.

mod accounts;
mod audit;
mod backup;
mod blobs;
mod console_sessions;
pub(crate) mod engine;
mod events;
mod gc;
mod job_leases;
mod layer_index;
mod login_failures;
mod manifests;
mod migrations;
mod releases;
mod repositories;
mod signatures;
mod signing_keys;
mod tags;
mod types;
mod uploads;

use rusqlite::Connection;

/// The queries of every aggregate over one SQLite connection: inside the
/// writer's transaction for [`Db::write`](super::Db::write), on a
/// reader's connection for [`Db::read`](super::Db::read).
pub(crate) struct SqliteTx<'c> {
    conn: &'c Connection,
}

impl<'c> SqliteTx<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Self {
        Self { conn }
    }
}
