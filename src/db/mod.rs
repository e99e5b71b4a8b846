//! Metadata: the source of truth for repositories, blobs, manifests, tags,
//! releases, upload sessions, accounts and audit.
//!
//! Layering: `db` is called by the use-cases; it calls only `domain`, never
//! up into `registry`, `governance` or `api`, and knows nothing about object
//! keys or HTTP. No database-engine type leaves this module.
//!
//! The seam: [`Tx`] is everything a use-case may ask of the database inside
//! one transaction. It is the sum of small per-aggregate traits
//! ([`Repositories`], [`Blobs`], [`Manifests`], [`Tags`], [`Uploads`],
//! [`Releases`], [`Audit`], [`Accounts`], [`Gc`], [`LayerIndex`],
//! [`Backups`], [`SigningKeys`], [`JobLeases`], [`LoginFailures`]), each in
//! its file here with the rows it returns, which carry domain types
//! (`Digest`, `RepoName`, `Tag`, `Stage`, `UploadId`) rather than strings.
//! Why traits and `&dyn Tx` rather than one struct: a second engine
//! (PostgreSQL through the synchronous `postgres` crate) plugs in by
//! implementing the same traits over its own transaction, and the contract
//! suite (`tests/db_contract/`) holds both to the same behaviour. Why several
//! small traits: a reader finds "what can I ask about tags" in one short
//! file, and no 100-method provider trait grows. Methods take `&self` so a
//! use-case can pass `&dyn Tx` down freely; an engine whose transaction
//! needs `&mut` (postgres) keeps it in a `RefCell`, which is sound because a
//! transaction runs on one thread.
//!
//! Where SQLite's single writer is what makes a read-then-write correct (the
//! audit chain head, a stage's release sequence, an upload's part sequence,
//! creating a repository, moving a tag, GC taking a blob vs a manifest PUT
//! claiming it), the trait documents the guarantee and the SQLite file says
//! it relies on the one writer; another engine must lock to keep it.
//!
//! SQLite runs in WAL mode with one writer connection owned by one thread
//! and a small pool of reader threads (`sqlite/engine.rs`), apart from
//! tokio's blocking pool, so slow blob streams cannot starve metadata writes
//! and actix workers never wait on the disk. `synchronous = FULL`: every
//! commit fsyncs the WAL, so a change acknowledged to a client (a blob's row,
//! a release) survives a crash of the machine, not only of the process
//! (NORMAL would lose the last commits on power loss).

pub mod accounts;
pub mod audit;
pub mod backup;
pub mod blobs;
pub mod console_sessions;
pub mod events;
pub mod gc;
pub mod job_leases;
pub mod layer_index;
pub mod login_failures;
pub mod manifests;
pub mod migrate;
pub mod releases;
pub mod repositories;
pub mod signatures;
pub mod signing_keys;
pub mod tags;
pub mod uploads;

mod group;
mod postgres;
mod queue_metrics;
mod sqlite;

pub use accounts::Accounts;
pub use audit::Audit;
pub use backup::Backups;
pub use blobs::Blobs;
pub use console_sessions::ConsoleSessions;
pub use events::Events;
pub use gc::Gc;
pub use job_leases::JobLeases;
pub use layer_index::LayerIndex;
pub use login_failures::LoginFailures;
pub use manifests::Manifests;
pub use releases::Releases;
pub use repositories::{RepoId, Repositories};
pub use signatures::Signatures;
pub use signing_keys::SigningKeys;
pub use tags::Tags;
pub use uploads::Uploads;

/// Every query a use-case may run in one transaction (see the module doc).
pub trait Tx:
    Repositories
    + Blobs
    + Manifests
    + Tags
    + Uploads
    + Releases
    + Audit
    + Accounts
    + Gc
    + LayerIndex
    + Backups
    + Signatures
    + Events
    + SigningKeys
    + ConsoleSessions
    + JobLeases
    + LoginFailures
{
}

impl<T> Tx for T where
    T: Repositories
        + Blobs
        + Manifests
        + Tags
        + Uploads
        + Releases
        + Audit
        + Accounts
        + Gc
        + LayerIndex
        + Backups
        + Signatures
        + Events
        + SigningKeys
        + ConsoleSessions
        + JobLeases
        + LoginFailures
{
}

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database migration: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("database: {0}")]
    Postgres(#[from] ::postgres::Error),
    #[error("database.url is not a valid PostgreSQL URL: {0}")]
    PgUrl(::postgres::Error),
    #[error("cannot connect to the PostgreSQL database at {0}: {1}")]
    PgConnect(String, ::postgres::Error),
    #[error("database migration {0}: {1}")]
    PgMigration(&'static str, ::postgres::Error),
    #[error("database job panicked: {0}")]
    Panicked(String),
    /// The commit of a group of writes (see either engine) failed; each
    /// write in the group hears it.
    #[error("database commit: {0}")]
    GroupCommit(std::sync::Arc<DbError>),
    #[error("database threads have stopped")]
    Closed,
    #[error("the PostgreSQL server accepts no writes (a standby in recovery)")]
    ReadOnly,
    #[error("database thread: {0}")]
    Thread(std::io::Error),
    #[error("database snapshot: {0}")]
    Snapshot(String),
    #[error("database: corrupt value in {0}")]
    Corrupt(&'static str),
    #[error("database file {0}: {1}")]
    Create(String, std::io::Error),
    #[error(
        "no Wharf database at {0}; nothing was created. Check --data-dir or --config, or create one with `wharf migrate --data-dir DIR` (or `wharf serve`)"
    )]
    Missing(String),
}

/// Where `pg_dump` and `pg_restore` are (`backup.pg_dump`, `backup.pg_restore`);
/// none: on PATH, else Debian's `/usr/lib/postgresql/<version>/bin`.
#[derive(Debug, Clone, Default)]
pub struct PgTools {
    pub pg_dump: Option<PathBuf>,
    pub pg_restore: Option<PathBuf>,
}

/// `pg_restore --list` of a PostgreSQL backup's dump: empty when the archive
/// reads whole, else what the tool said (blocking: a child process).
pub fn pg_dump_problems(file: &Path, tools: &PgTools) -> Result<Vec<String>, DbError> {
    postgres::dump::dump_problems(file, tools)
}

/// Whether the PostgreSQL database at `url` holds no table yet.
pub fn pg_database_is_empty(url: &str) -> Result<bool, DbError> {
    postgres::dump::is_empty(url)
}

/// Restores a PostgreSQL backup's dump into the database at `url`, in one
/// transaction (blocking: a child process).
pub fn pg_restore_dump(url: &str, file: &Path, tools: &PgTools) -> Result<(), DbError> {
    postgres::dump::restore_dump(url, file, tools)
}

/// Unix time in milliseconds, the unit of every timestamp column.
pub use crate::domain::now_ms;

/// When a write's commit must be on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sync {
    /// Before the write returns.
    Now,
    /// With the next write that syncs (or a checkpoint).
    Deferred,
}

/// A handle on the database: cheap to clone, shared by every request.
/// Dropping the last clone ends the engine's threads.
///
/// Use-cases see only [`Db::read`] / [`Db::write`] ([`Db::write_deferred`]) and `&dyn Tx`; which
/// engine runs them is chosen once, when the handle is opened. A second
/// engine is one more [`Engine`] variant with the same two entry points.
#[derive(Clone)]
pub struct Db {
    engine: Engine,
    /// Write transactions finished through this handle (see [`Db::writes`]).
    writes: Arc<AtomicU64>,
}

#[derive(Clone)]
enum Engine {
    Sqlite(Arc<sqlite::engine::Engine>),
    Postgres(Arc<postgres::engine::PgEngine>),
}

impl Db {
    fn with(engine: Engine) -> Self {
        Self { engine, writes: Arc::new(AtomicU64::new(0)) }
    }

    /// How many write transactions have finished (committed or not) through
    /// this handle and its clones. A cache of what a read returned keeps it
    /// only while this count is the one taken *before* the read: any write
    /// of this process since then may have changed the answer.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Acquire)
    }

    /// PostgreSQL: other nodes write the same database, so [`Db::writes`]
    /// does not see every change.
    pub fn is_shared(&self) -> bool {
        matches!(self.engine, Engine::Postgres(_))
    }

    /// Opens (creating if needed) the embedded SQLite database and applies
    /// pending migrations.
    pub fn open(path: &Path, read_connections: usize) -> Result<Self, DbError> {
        create_private(path)?;
        Ok(Self::with(Engine::Sqlite(Arc::new(sqlite::engine::Engine::open(path, read_connections.max(1))?))))
    }

    /// Connects to PostgreSQL at `url` (`postgres://...`) and applies
    /// pending migrations (`migrations/postgres/`) under an advisory lock.
    pub fn open_postgres(url: &str, read_connections: usize) -> Result<Self, DbError> {
        Ok(Self::with(Engine::Postgres(Arc::new(postgres::engine::PgEngine::start(url, read_connections)?))))
    }

    /// Opens a database that must already exist: a maintenance command on a
    /// mistyped path must not leave an empty registry behind and report success.
    pub fn open_existing(path: &Path, read_connections: usize) -> Result<Self, DbError> {
        if !path.is_file() {
            return Err(DbError::Missing(path.display().to_string()));
        }
        Self::open(path, read_connections)
    }

    /// Runs `f` with the queries of every aggregate, outside any write
    /// transaction (SQLite: on a reader thread).
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&dyn Tx) -> Result<T, E> + Send + 'static,
    {
        match &self.engine {
            Engine::Sqlite(engine) => engine.read(f).await,
            Engine::Postgres(engine) => engine.read(move |tx| f(tx)).await,
        }
    }

    /// Runs `f` in one write transaction: committed if `f` returns `Ok`,
    /// rolled back otherwise (also when it panics, which comes back as
    /// [`DbError::Panicked`] and leaves the engine running). Returns once
    /// the commit is on disk.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&dyn Tx) -> Result<T, E> + Send + 'static,
    {
        self.write_with(Sync::Now, f).await
    }

    /// [`Db::write`] for a change whose loss in a power failure breaks no
    /// promise (an upload session just opened, a claim an upload holds for
    /// a moment): committed and visible at once, without waiting for the
    /// disk; the next [`Db::write`] makes it durable with its own.
    pub async fn write_deferred<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&dyn Tx) -> Result<T, E> + Send + 'static,
    {
        self.write_with(Sync::Deferred, f).await
    }

    async fn write_with<T, E, F>(&self, sync: Sync, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&dyn Tx) -> Result<T, E> + Send + 'static,
    {
        let result = match &self.engine {
            Engine::Sqlite(engine) => engine.write(sync, f).await,
            Engine::Postgres(engine) => engine.write(sync, move |tx| f(tx)).await,
        };
        // After the commit, so a reader that counted before it never keeps the old answer.
        self.writes.fetch_add(1, Ordering::Release);
        result
    }

    /// Writes a consistent copy of the whole database to the new file
    /// `dest` while writers carry on, and runs `view` on the same
    /// snapshot: what `view` reads is exactly what the copy holds. SQLite:
    /// the online backup API inside one read transaction of a reader
    /// connection (WAL lets the writer continue). Another engine keeps the
    /// same contract with its own tool (PostgreSQL: `pg_dump --snapshot` of
    /// an exported REPEATABLE READ snapshot that `view` also reads).
    pub async fn snapshot_into<T, E, F>(&self, dest: PathBuf, view: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&dyn Tx) -> Result<T, E> + Send + 'static,
    {
        self.snapshot_into_with(dest, PgTools::default(), view).await
    }

    /// [`Db::snapshot_into`] with the PostgreSQL tools to use (the file is
    /// then a `pg_dump --format=custom` archive).
    pub async fn snapshot_into_with<T, E, F>(&self, dest: PathBuf, tools: PgTools, view: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&dyn Tx) -> Result<T, E> + Send + 'static,
    {
        match &self.engine {
            Engine::Sqlite(engine) => engine.snapshot_into(dest, view).await,
            Engine::Postgres(engine) => engine.snapshot_into(dest, tools, view).await,
        }
    }

    /// Readiness of the database for this node. SQLite: a reader answers and
    /// the writer thread commits an empty transaction. PostgreSQL: see
    /// `PgEngine::probe` (never the cluster-wide writer lock).
    pub async fn probe(&self) -> Result<(), DbError> {
        match &self.engine {
            Engine::Sqlite(_) => {
                self.read(|_| Ok::<_, DbError>(())).await?;
                self.write(|_| Ok::<_, DbError>(())).await
            }
            Engine::Postgres(engine) => engine.probe().await,
        }
    }

    /// The engine that holds the metadata: `sqlite` or `postgres`.
    pub fn engine_name(&self) -> &'static str {
        match &self.engine {
            Engine::Sqlite(_) => "sqlite",
            Engine::Postgres(_) => "postgres",
        }
    }

    /// The engine's own consistency check: empty when the database is sound,
    /// else what is wrong (SQLite: `PRAGMA integrity_check`).
    pub async fn integrity_problems(&self) -> Result<Vec<String>, DbError> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.integrity_problems().await,
            // Its dump is checked by `pg_restore --list` and a restore instead.
            Engine::Postgres(_) => Ok(Vec::new()),
        }
    }
}

/// The database file and the `-wal` and `-shm` files SQLite keeps beside it
/// in WAL mode: all three hold the same secrets.
pub fn files(path: &Path) -> [PathBuf; 3] {
    let with_suffix = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [path.to_owned(), with_suffix("-wal"), with_suffix("-shm")]
}

/// Creates a missing database file as `0600` before SQLite opens it: SQLite
/// would create it `0644` (less the umask), and it gives its `-wal` and
/// `-shm` files the database file's mode, so this one mode covers all three.
pub(crate) fn create_private(path: &Path) -> Result<(), DbError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|e| DbError::Create(path.display().to_string(), e))
}

#[cfg(test)]
mod tests {
    #[test]
    fn files_name_the_wal_and_shm_beside_the_database() {
        let [db, wal, shm] = super::files(std::path::Path::new("/d/wharf.db"));
        assert_eq!((db.to_str(), wal.to_str(), shm.to_str()), (Some("/d/wharf.db"), Some("/d/wharf.db-wal"), Some("/d/wharf.db-shm")));
    }
}
