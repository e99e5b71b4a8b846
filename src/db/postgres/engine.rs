//! The threads that own PostgreSQL connections, and the migrations.
//!
//! As for SQLite (`../sqlite/engine.rs`), queries run on threads of our own
//! fed by bounded channels, never on actix workers or tokio's blocking pool:
//! one writer connection (every write transaction in the cluster queues on
//! one advisory lock anyway, see the module doc) and `read_connections` read
//! connections. A connection the server dropped is opened again before the
//! next job. Dropping the last `Db` handle drops the senders, which ends
//! every thread.
//!
//! Group commit, as on SQLite (`../group.rs`): write jobs queued together
//! share one transaction, one lock and one commit, each in a savepoint of
//! its own when there are several. The lock changes hands and the WAL is
//! flushed once per group instead of once per write: a small push's writes
//! were 13 lock hand-offs and 13 commits per image.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use postgres::config::Host;
use postgres::{Client, Config, IsolationLevel, NoTls};
use tokio::sync::{mpsc, oneshot};

use super::{PgTx, Statements};
use crate::db::group::{self, GroupedWrite};
use crate::db::queue_metrics::{record_depth, timed};
use crate::db::sqlite::engine::panic_message;
use crate::db::{DbError, Sync};

/// The advisory lock every write transaction takes first (see the module
/// doc); its value spells "wharfW".
pub(crate) const WRITER_LOCK: i64 = 0x7768_6172_6657;
/// Held while migrations run, so nodes starting together apply each once.
const MIGRATION_LOCK: i64 = 0x7768_6172_664d;

/// Every migration, in order, each applied once; never edited once landed.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_core", include_str!("../../../migrations/postgres/0001_core.sql")),
    ("0002_governance", include_str!("../../../migrations/postgres/0002_governance.sql")),
    ("0003_access_control", include_str!("../../../migrations/postgres/0003_access_control.sql")),
    ("0004_gc", include_str!("../../../migrations/postgres/0004_gc.sql")),
    ("0005_account_lifecycle", include_str!("../../../migrations/postgres/0005_account_lifecycle.sql")),
    ("0006_layer_index", include_str!("../../../migrations/postgres/0006_layer_index.sql")),
    ("0007_release_diff", include_str!("../../../migrations/postgres/0007_release_diff.sql")),
    ("0008_release_verdicts", include_str!("../../../migrations/postgres/0008_release_verdicts.sql")),
    ("0009_backup", include_str!("../../../migrations/postgres/0009_backup.sql")),
    ("0010_events", include_str!("../../../migrations/postgres/0010_events.sql")),
    ("0011_nodes", include_str!("../../../migrations/postgres/0011_nodes.sql")),
    ("0012_console_sessions", include_str!("../../../migrations/postgres/0012_console_sessions.sql")),
    ("0013_job_leases", include_str!("../../../migrations/postgres/0013_job_leases.sql")),
    ("0014_login_failures", include_str!("../../../migrations/postgres/0014_login_failures.sql")),
];

const WRITE_QUEUE: usize = 256;
const READ_QUEUE: usize = 1024;
/// A connection idle longer than this is checked before its next job (one
/// round trip, only when idle: busy connections are never checked).
const IDLE_CHECK: Duration = Duration::from_millis(250);
const IDLE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// A read job gets its thread's connection and the statements prepared on
/// it, or why there is none.
type Job = Box<dyn FnOnce(Result<(&mut Client, &Statements), DbError>) + Send>;
/// A job for the writer thread: it runs inside the group's transaction,
/// then hears whether that transaction committed.
type WriteJob = Box<dyn for<'c> GroupedWrite<PgTx<'c>>>;

/// A thread's connection, opened again when the server dropped it, and the
/// statements prepared on it.
struct Connection {
    config: Arc<Config>,
    client: Option<Client>,
    last_used: Instant,
    statements: Statements,
}

impl Connection {
    fn new(config: Arc<Config>, client: Client) -> Self {
        Self { config, client: Some(client), last_used: Instant::now(), statements: Statements::default() }
    }

    /// Runs `job` on the connection, or tells it why there is none. The
    /// synchronous client notices a connection the server ended (a restart,
    /// a failover, an administrator) only when it next uses it: one idle
    /// since its last job ended is checked first, so the job of a client
    /// request does not fail on it.
    fn run<R>(&mut self, job: impl FnOnce(Result<(&mut Client, &Statements), DbError>) -> R) -> R {
        let idle = self.last_used.elapsed() > IDLE_CHECK;
        let stale = |c: &mut Client| c.is_closed() || (idle && c.is_valid(IDLE_CHECK_TIMEOUT).is_err());
        if self.client.as_mut().is_none_or(stale) {
            self.statements.clear();
            self.client = connect(&self.config).inspect_err(|e| tracing::warn!("{e}")).ok();
        }
        let outcome = job(self.client.as_mut().map(|c| (c, &self.statements)).ok_or(DbError::Closed));
        self.last_used = Instant::now();
        outcome
    }
}

pub(crate) struct PgEngine {
    writer: mpsc::Sender<WriteJob>,
    readers: mpsc::Sender<Job>,
    /// For a connection of its own (a backup's snapshot).
    config: Arc<Config>,
}

/// Parses a `postgres://` URL (or key=value string) without connecting.
pub(crate) fn parse_url(url: &str) -> Result<Config, DbError> {
    let mut config = Config::from_str(url).map_err(DbError::PgUrl)?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    config.application_name("wharf");
    Ok(config)
}

/// Where the URL points, without its password, for error messages.
pub(crate) fn describe(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let port = config.get_ports().get(i).or(config.get_ports().first()).copied().unwrap_or(5432);
            match h {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    format!("{}/{}", hosts.join(","), config.get_dbname().unwrap_or(config.get_user().unwrap_or("")))
}

pub(crate) fn connect(config: &Config) -> Result<Client, DbError> {
    config.connect(NoTls).map_err(|e| DbError::PgConnect(describe(config), e))
}

/// Applies pending migrations in one transaction under an advisory lock.
pub(crate) fn migrate(client: &mut Client) -> Result<(), DbError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS wharf_migrations (
             version    BIGINT PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at BIGINT NOT NULL
         )",
    )?;
    let applied: i64 = tx.query_one("SELECT coalesce(max(version), 0) FROM wharf_migrations", &[])?.try_get(0)?;
    for (version, (name, sql)) in (1i64..).zip(MIGRATIONS) {
        if version <= applied {
            continue;
        }
        tx.batch_execute(sql).map_err(|e| DbError::PgMigration(name, e))?;
        tx.execute(
            "INSERT INTO wharf_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[&version, name, &crate::db::now_ms()],
        )?;
        tracing::info!(migration = name, "applied PostgreSQL migration");
    }
    tx.commit()?;
    Ok(())
}

fn spawn_readers(config: &Arc<Config>, clients: Vec<Client>, queue: usize) -> Result<mpsc::Sender<Job>, DbError> {
    let (tx, rx) = mpsc::channel::<Job>(queue);
    let rx = Arc::new(Mutex::new(rx));
    for (n, client) in clients.into_iter().enumerate() {
        let rx = rx.clone();
        let mut connection = Connection::new(config.clone(), client);
        thread::Builder::new()
            .name(format!("wharf-pg-reader-{n}"))
            .spawn(move || loop {
                // The lock is held only while waiting for the next job.
                let next = rx.lock().unwrap_or_else(|p| p.into_inner()).blocking_recv();
                let Some(job) = next else { break };
                if catch_unwind(AssertUnwindSafe(|| connection.run(job))).is_err() {
                    tracing::error!("database job panicked outside its guard");
                }
            })
            .map_err(DbError::Thread)?;
    }
    Ok(tx)
}

fn spawn_writer(config: &Arc<Config>, client: Client) -> Result<mpsc::Sender<WriteJob>, DbError> {
    let (tx, mut rx) = mpsc::channel::<WriteJob>(WRITE_QUEUE);
    let mut connection = Connection::new(config.clone(), client);
    thread::Builder::new()
        .name("wharf-pg-writer".into())
        .spawn(move || {
            while let Some(group) = group::next_group(&mut rx) {
                // A job catches its own panic and reports it; this is the
                // last line that keeps the writer alive regardless.
                if catch_unwind(AssertUnwindSafe(|| commit_group(&mut connection, group))).is_err() {
                    tracing::error!("database write group panicked outside its guard");
                }
            }
        })
        .map_err(DbError::Thread)?;
    Ok(tx)
}

/// Runs `group` in one transaction under the writer lock and commits it
/// once; every job then hears the outcome.
fn commit_group(connection: &mut Connection, mut group: Vec<WriteJob>) {
    let sync = group::group_sync("postgres", group.iter().map(|job| job.sync()));
    let committed =
        connection.run(|conn| conn.and_then(|(client, statements)| run_group(client, statements, sync, &mut group))).map_err(Arc::new);
    for job in group {
        job.finish(committed.as_ref().map(|_| ()));
    }
}

fn run_group(client: &mut Client, statements: &Statements, sync: Sync, group: &mut [WriteJob]) -> Result<(), DbError> {
    let mut tx = client.build_transaction().isolation_level(IsolationLevel::ReadCommitted).start()?;
    // One round trip: the lock, and for deferred writes only a commit that
    // returns before its WAL record is flushed (the next synced commit
    // flushes it too).
    let lock = format!("SELECT pg_advisory_xact_lock({WRITER_LOCK})");
    tx.batch_execute(&match sync {
        Sync::Now => lock,
        Sync::Deferred => format!("{lock}; SET LOCAL synchronous_commit = off"),
    })?;
    if let [job] = group {
        // Alone: no savepoint (two round trips); a failure rolls back the
        // whole transaction, which is this write's alone.
        return run_one(job, tx, statements);
    }
    for job in group.iter_mut() {
        run_one(job, tx.transaction()?, statements)?;
    }
    Ok(tx.commit()?)
}

/// Runs `job` in `tx` (the group's transaction or a savepoint of it), then
/// commits `tx` if the job succeeded and rolls it back if not.
fn run_one(job: &mut WriteJob, tx: postgres::Transaction<'_>, statements: &Statements) -> Result<(), DbError> {
    let tx = PgTx::new(tx, statements);
    let succeeded = job.run(&tx);
    let tx = tx.into_inner();
    if succeeded {
        tx.commit()?;
    } else {
        tx.rollback()?;
    }
    Ok(())
}

impl PgEngine {
    /// Connects, applies pending migrations and starts the threads.
    pub(crate) fn start(url: &str, read_connections: usize) -> Result<Self, DbError> {
        let config = Arc::new(parse_url(url)?);
        // The synchronous client runs a runtime of its own, which may not
        // start on a thread already inside one (a caller on tokio): connect
        // on a plain thread and hand the connections to the pools.
        let c = config.clone();
        let connections = thread::Builder::new()
            .name("wharf-pg-connect".into())
            .spawn(move || -> Result<(Client, Vec<Client>), DbError> {
                let mut first = connect(&c)?;
                migrate(&mut first)?;
                let readers = (0..read_connections.max(1)).map(|_| connect(&c)).collect::<Result<Vec<_>, _>>()?;
                Ok((first, readers))
            })
            .map_err(DbError::Thread)?
            .join()
            .map_err(|p| DbError::Panicked(panic_message(p)))?;
        let (writer, readers) = connections?;
        Ok(Self { writer: spawn_writer(&config, writer)?, readers: spawn_readers(&config, readers, READ_QUEUE)?, config })
    }

    pub(crate) fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Readiness: a reader connection answers and the server takes writes
    /// (no standby in recovery). Not on the writer pool: its transactions
    /// queue on the cluster-wide writer lock, so one long write anywhere
    /// would turn every node unready at once.
    pub(crate) async fn probe(&self) -> Result<(), DbError> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |client| {
            let outcome = client.and_then(|(c, _)| {
                let in_recovery: bool = c.query_one("SELECT pg_is_in_recovery()", &[])?.try_get(0)?;
                if in_recovery {
                    Err(DbError::ReadOnly)
                } else {
                    Ok(())
                }
            });
            // The prober may have timed out and gone; nothing to tell.
            let _ = done.send(outcome);
        });
        self.readers.send(job).await.map_err(|_| DbError::Closed)?;
        result.await.map_err(|_| DbError::Closed)?
    }

    /// Runs `f` in a REPEATABLE READ, READ ONLY transaction on a reader.
    pub(crate) async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&PgTx<'_>) -> Result<T, E> + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let queued = Instant::now();
        let job: Job = Box::new(move |client| {
            let outcome = timed("postgres", "read", queued, || {
                let (client, statements) = client?;
                let tx = client
                    .build_transaction()
                    .isolation_level(IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .map_err(DbError::from)?;
                let tx = PgTx::new(tx, statements);
                // On an error or a panic `tx` is dropped unfinished, which rolls it back.
                let value =
                    catch_unwind(AssertUnwindSafe(|| f(&tx))).unwrap_or_else(|p| Err(DbError::Panicked(panic_message(p)).into()))?;
                tx.into_inner().commit().map_err(DbError::from)?;
                Ok(value)
            });
            // The caller may have gone (request cancelled); nothing to tell.
            let _ = done.send(outcome);
        });
        let sent = self.readers.send(job).await.map_err(|_| DbError::Closed);
        record_depth("postgres", "read", READ_QUEUE, self.readers.capacity());
        sent?;
        result.await.map_err(|_| DbError::Closed)?
    }

    /// Runs `f` in a READ COMMITTED transaction holding the writer lock,
    /// grouped with the writes queued beside it: committed if `f` returns
    /// `Ok` (and the group commits), rolled back otherwise or on a panic.
    pub(crate) async fn write<T, E, F>(&self, sync: Sync, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&PgTx<'_>) -> Result<T, E> + Send + 'static,
    {
        let (job, result) = group::write("postgres", sync, f);
        let sent = self.writer.send(Box::new(job)).await.map_err(|_| DbError::Closed);
        record_depth("postgres", "write", WRITE_QUEUE, self.writer.capacity());
        sent?;
        result.await.map_err(|_| DbError::Closed)?
    }
}
