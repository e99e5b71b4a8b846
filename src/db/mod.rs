//! Metadata: the source of truth for repositories, blobs, manifests, tags and
//! upload sessions.
//!
//! Layering: `db` is called by the use-cases in `registry`; it never calls up
//! into `registry` or `api`, and knows nothing about object keys or HTTP.
//! Query functions take `&Connection` (a `Transaction` derefs to one) so a
//! use-case can compose several in one transaction.
//!
//! SQLite runs in WAL mode with one writer connection and a small pool of
//! readers; every call runs on tokio's blocking pool so actix workers never
//! wait on the disk. `synchronous = FULL`: every commit fsyncs the WAL, so a
//! change acknowledged to a client (a blob's row, a release) survives a
//! crash of the machine, not only of the process (NORMAL would lose the
//! last commits on power loss).

pub mod accounts;
pub mod audit;
pub mod blobs;
pub mod gc;
pub mod layer_index;
pub mod manifests;
pub mod releases;
pub mod repositories;
pub mod tag_history;
pub mod tags;
pub mod uploads;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use rusqlite_migration::{Migrations, M};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database migration: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("database task failed: {0}")]
    Task(String),
    #[error("database: corrupt value in {0}")]
    Corrupt(&'static str),
    #[error("database file {0}: {1}")]
    Create(String, std::io::Error),
    #[error(
        "no Wharf database at {0}; nothing was created. Check --data-dir or --config, or create one with `wharf migrate --data-dir DIR` (or `wharf serve`)"
    )]
    Missing(String),
}

/// Every migration, in order. Files are never edited once landed.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../../migrations/0001_core.sql")),
        M::up(include_str!("../../migrations/0002_governance.sql")),
        M::up(include_str!("../../migrations/0003_access_control.sql")),
        M::up(include_str!("../../migrations/0004_gc.sql")),
        M::up(include_str!("../../migrations/0005_account_lifecycle.sql")),
        M::up(include_str!("../../migrations/0006_layer_index.sql")),
    ])
}

/// Unix time in milliseconds, the unit of every timestamp column.
pub use crate::domain::now_ms;

#[derive(Clone)]
pub struct Db {
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    path: Arc<PathBuf>,
}

impl Db {
    /// Opens (creating if needed) the database and applies pending migrations.
    pub fn open(path: &Path, read_connections: usize) -> Result<Self, DbError> {
        create_private(path)?;
        let mut writer = open_connection(path)?;
        migrations().to_latest(&mut writer)?;
        let readers = (0..read_connections).map(|_| open_connection(path)).collect::<Result<Vec<_>, _>>()?;
        Ok(Self { writer: Arc::new(Mutex::new(writer)), readers: Arc::new(Mutex::new(readers)), path: Arc::new(path.to_owned()) })
    }

    /// Opens a database that must already exist: a maintenance command on a
    /// mistyped path must not leave an empty registry behind and report success.
    pub fn open_existing(path: &Path, read_connections: usize) -> Result<Self, DbError> {
        if !path.is_file() {
            return Err(DbError::Missing(path.display().to_string()));
        }
        Self::open(path, read_connections)
    }

    /// Runs `f` on a read connection.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = this.take_reader()?;
            let result = f(&conn);
            this.return_reader(conn);
            result
        })
        .await
        .map_err(|e| E::from(DbError::Task(e.to_string())))?
    }

    /// Runs `f` in one write transaction: committed if `f` returns `Ok`,
    /// rolled back otherwise.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Transaction) -> Result<T, E> + Send + 'static,
    {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            // A poisoned lock only means another write panicked; SQLite rolled it back.
            let mut conn = writer.lock().unwrap_or_else(|p| p.into_inner());
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(DbError::from)?;
            let value = f(&tx)?;
            tx.commit().map_err(DbError::from)?;
            Ok(value)
        })
        .await
        .map_err(|e| E::from(DbError::Task(e.to_string())))?
    }

    fn take_reader(&self) -> Result<Connection, DbError> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match pooled {
            Some(c) => Ok(c),
            None => open_connection(&self.path),
        }
    }

    fn return_reader(&self, conn: Connection) {
        let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < 16 {
            pool.push(conn);
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
fn create_private(path: &Path) -> Result<(), DbError> {
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

fn open_connection(path: &Path) -> Result<Connection, DbError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;",
    )?;
    Ok(conn)
}

/// An in-memory database with the schema applied, for unit tests.
#[cfg(test)]
pub fn test_connection() -> Connection {
    let mut conn = Connection::open_in_memory().expect("memory db");
    conn.execute_batch("PRAGMA foreign_keys = ON;").expect("pragma");
    migrations().to_latest(&mut conn).expect("migrate");
    conn
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        super::migrations().validate().expect("valid migrations");
    }

    #[test]
    fn files_name_the_wal_and_shm_beside_the_database() {
        let [db, wal, shm] = super::files(std::path::Path::new("/d/wharf.db"));
        assert_eq!((db.to_str(), wal.to_str(), shm.to_str()), (Some("/d/wharf.db"), Some("/d/wharf.db-wal"), Some("/d/wharf.db-shm")));
    }
}
