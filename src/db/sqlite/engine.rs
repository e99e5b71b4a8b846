//! The threads that own SQLite's connections: one writer, a few readers.
//!
//! Why threads of our own rather than tokio's blocking pool: that pool also
//! streams whole blobs to and from files, and 64 slow downloads can fill it,
//! so a manifest push would wait behind them for a thread. Here the writer
//! connection lives on one thread that runs write jobs in arrival order from
//! a bounded channel (a full channel makes callers wait asynchronously, not
//! block an actix worker), and reads run on a small fixed set of threads,
//! each with its own connection. Dropping the last `Db` handle drops the
//! senders, which ends every thread once the queued jobs are done.
//!
//! Group commit (`../group.rs`): write jobs queued together share one
//! immediate transaction and one commit, each in a savepoint of its own.
//!
//! A group of only [`Sync::Deferred`] writes commits without the fsync
//! (`synchronous = NORMAL`): visible at once, made durable by the next
//! synced commit, whose fsync of the write-ahead log covers every frame
//! before it. A group with any synced write commits with `FULL`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::migrations::migrations;
use super::SqliteTx;
use crate::db::group::{self, GroupedWrite};
use crate::db::queue_metrics::{record_depth, timed};
use crate::db::{DbError, Sync, Tx};

/// A job for the writer thread: it runs inside the group's transaction,
/// then hears whether that transaction committed.
type WriteJob = Box<dyn GroupedWrite<Connection>>;
/// A job for any reader thread.
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// Write jobs queued beyond the one running before callers wait for room.
const WRITE_QUEUE: usize = 256;
/// Read jobs queued before callers wait for room.
const READ_QUEUE: usize = 1024;
/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 256;

/// The sending ends; the threads hold the receiving ends and the connections.
pub(crate) struct Engine {
    writer: Queue<WriteJob>,
    readers: Queue<ReadJob>,
}

/// A job queue that records how long each job waited for its thread and how
/// long it ran (the `wharf_db_*` series).
struct Queue<J> {
    tx: mpsc::Sender<J>,
    name: &'static str,
    size: usize,
}

/// The threads have stopped.
#[derive(Debug)]
struct Closed;

impl<J> Queue<J> {
    fn new(tx: mpsc::Sender<J>, name: &'static str, size: usize) -> Self {
        Self { tx, name, size }
    }

    async fn enqueue(&self, job: J) -> Result<(), Closed> {
        let sent = self.tx.send(job).await.map_err(|_| Closed);
        self.record_depth();
        sent
    }

    fn record_depth(&self) {
        record_depth("sqlite", self.name, self.size, self.tx.capacity());
    }
}

impl Queue<ReadJob> {
    async fn send(&self, job: ReadJob) -> Result<(), Closed> {
        let (queued, name) = (Instant::now(), self.name);
        self.enqueue(Box::new(move |conn: &Connection| timed("sqlite", name, queued, || job(conn)))).await
    }
}

impl Engine {
    /// Opens the database at `path`, applies pending migrations on the
    /// writer connection, and starts the threads.
    pub(crate) fn open(path: &Path, readers: usize) -> Result<Self, DbError> {
        let mut writer = open_connection(path)?;
        migrations().to_latest(&mut writer)?;
        Self::start(path, writer, readers)
    }

    /// Runs `f` on a reader thread; see [`Db::read`](crate::db::Db::read).
    pub(crate) async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&dyn Tx) -> Result<T, E> + Send + 'static,
    {
        self.run_read(move |conn| f(&SqliteTx::new(conn))).await
    }

    /// Runs `f` in an immediate transaction on the writer thread; see
    /// [`Db::write`](crate::db::Db::write).
    pub(crate) async fn write<T, E, F>(&self, sync: Sync, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&dyn Tx) -> Result<T, E> + Send + 'static,
    {
        self.run_write(sync, move |conn| f(&SqliteTx::new(conn))).await
    }

    pub(super) async fn run_read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let outcome = catch_unwind(AssertUnwindSafe(|| f(conn))).unwrap_or_else(|p| Err(DbError::Panicked(panic_message(p)).into()));
            // The caller may have gone (request cancelled); nothing to tell.
            let _ = done.send(outcome);
        });
        self.readers.send(job).await.map_err(|_| DbError::Closed)?;
        result.await.map_err(|_| DbError::Closed)?
    }

    async fn run_write<T, E, F>(&self, sync: Sync, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let (job, result) = group::write("sqlite", sync, f);
        self.writer.enqueue(Box::new(job)).await.map_err(|_| DbError::Closed)?;
        result.await.map_err(|_| DbError::Closed)?
    }

    /// Starts the writer thread on `writer` and `readers` reader threads,
    /// each on a new connection to `path`.
    fn start(path: &Path, writer: Connection, readers: usize) -> Result<Self, DbError> {
        let read_connections = (0..readers).map(|_| open_connection(path)).collect::<Result<Vec<_>, _>>()?;
        let (write_tx, mut write_rx) = mpsc::channel::<WriteJob>(WRITE_QUEUE);
        let mut conn = writer;
        thread::Builder::new()
            .name("wharf-db-writer".into())
            .spawn(move || {
                let mut synchronous = Sync::Now;
                while let Some(group) = group::next_group(&mut write_rx) {
                    // A job catches its own panic and reports it; this is the
                    // last line that keeps the one writer alive regardless.
                    if catch_unwind(AssertUnwindSafe(|| commit_group(&mut conn, &mut synchronous, group))).is_err() {
                        tracing::error!("database write group panicked outside its guard");
                    }
                }
            })
            .map_err(DbError::Thread)?;
        let (read_tx, read_rx) = mpsc::channel::<ReadJob>(READ_QUEUE);
        let read_rx = Arc::new(Mutex::new(read_rx));
        for (n, conn) in read_connections.into_iter().enumerate() {
            let rx = read_rx.clone();
            thread::Builder::new()
                .name(format!("wharf-db-reader-{n}"))
                .spawn(move || loop {
                    // The lock is held only while waiting for the next job, so
                    // idle readers queue up on it and busy ones do not block it.
                    let next = rx.lock().unwrap_or_else(|p| p.into_inner()).blocking_recv();
                    let Some(job) = next else { break };
                    if catch_unwind(AssertUnwindSafe(|| job(&conn))).is_err() {
                        tracing::error!("database read job panicked outside its guard");
                    }
                })
                .map_err(DbError::Thread)?;
        }
        Ok(Self { writer: Queue::new(write_tx, "write", WRITE_QUEUE), readers: Queue::new(read_tx, "read", READ_QUEUE) })
    }
}

/// Runs `group` in one immediate transaction and commits it once; every
/// job then hears the outcome. `synchronous` is the connection's setting,
/// switched to what the group needs.
fn commit_group(conn: &mut Connection, synchronous: &mut Sync, mut group: Vec<WriteJob>) {
    let needed = group::group_sync("sqlite", group.iter().map(|job| job.sync()));
    let switched = if needed == *synchronous {
        Ok(())
    } else {
        let value = match needed {
            Sync::Now => "FULL",
            Sync::Deferred => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", value).map(|()| *synchronous = needed)
    };
    let committed = switched
        .and_then(|()| {
            let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for job in &mut group {
                // A savepoint dropped unreleased rolls back this write alone.
                let savepoint = tx.savepoint()?;
                if job.run(&savepoint) {
                    savepoint.commit()?;
                }
            }
            tx.commit()
        })
        .map_err(|e| Arc::new(DbError::from(e)));
    for job in group {
        job.finish(committed.as_ref().map(|_| ()));
    }
}

/// Turns a caught panic's payload into a message for [`DbError::Panicked`].
pub(crate) fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned())
}

fn open_connection(path: &Path) -> Result<Connection, DbError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // Every statement Wharf runs is prepared once per connection and kept
    // (parsing was 8 % of the server's CPU on small pushes); the default
    // cache of 16 is smaller than the set a push and a pull touch.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;",
    )?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synchronous(conn: &Connection) -> Result<i64, DbError> {
        Ok(conn.pragma_query_value(None, "synchronous", |r| r.get(0))?)
    }

    const NORMAL: i64 = 1;
    const FULL: i64 = 2;

    /// A deferred write alone commits without the fsync; any write that
    /// syncs, alone or queued in one group with deferred ones, commits the
    /// whole group with it.
    #[tokio::test]
    async fn a_group_syncs_unless_every_write_in_it_defers() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(Engine::open(&dir.path().join("wharf.db"), 1).unwrap());
        assert_eq!(engine.run_write(Sync::Deferred, synchronous).await.unwrap(), NORMAL);
        assert_eq!(engine.run_write(Sync::Now, synchronous).await.unwrap(), FULL);
        assert_eq!(engine.run_write(Sync::Deferred, synchronous).await.unwrap(), NORMAL);

        // Hold the writer in a group of its own, queue both kinds behind it.
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let busy = {
            let engine = engine.clone();
            tokio::spawn(async move { engine.run_write(Sync::Deferred, move |_| Ok::<_, DbError>(wait.recv().is_ok())).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let queued: Vec<_> = [Sync::Deferred, Sync::Now, Sync::Deferred]
            .into_iter()
            .map(|sync| {
                let engine = engine.clone();
                tokio::spawn(async move { engine.run_write(sync, synchronous).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        release.send(()).unwrap();
        assert!(busy.await.unwrap().unwrap());
        for write in queued {
            assert_eq!(write.await.unwrap().unwrap(), FULL, "a write grouped with a synced one committed without the sync");
        }
    }
}
