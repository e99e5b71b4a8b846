//! The metadata snapshot of a backup on PostgreSQL, and putting it back:
//! `pg_dump` / `pg_restore` (custom format), run as child processes.
//!
//! Consistency while clients write: a REPEATABLE READ transaction exports
//! its snapshot (`pg_export_snapshot()`), the backup's own reads (blob list,
//! counts, audit head) run in that transaction, and `pg_dump --snapshot`
//! dumps exactly that snapshot while the transaction stays open.
//!
//! The connection reaches the tools through the libpq environment (PGHOST,
//! PGPORT, PGUSER, PGDATABASE, PGPASSWORD), never the command line, where
//! any local user could read the password.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use postgres::config::Host;
use postgres::{Config, IsolationLevel, NoTls};

use super::engine::{describe, parse_url};
use super::{PgTx, Statements};
use crate::db::{DbError, PgTools, Tx};

/// Where Debian's client packages put the tools when they are not on PATH.
const DEBIAN_DIRS: &str = "/usr/lib/postgresql";

/// The tool `name`: the configured path, else on PATH, else the newest
/// `/usr/lib/postgresql/<version>/bin/<name>`.
fn tool(name: &str, configured: Option<&Path>) -> Result<PathBuf, DbError> {
    if let Some(path) = configured {
        return Ok(path.to_owned());
    }
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).map(|d| d.join(name));
    if let Some(found) = on_path.into_iter().find(|p| p.is_file()) {
        return Ok(found);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(DEBIAN_DIRS)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin").join(name))))
        .filter(|(_, p)| p.is_file())
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p).ok_or_else(|| {
        DbError::Snapshot(format!(
            "{name} not found on PATH nor in {DEBIAN_DIRS}/*/bin; install the PostgreSQL client or set backup.{name}"
        ))
    })
}

/// The libpq environment for `config` (first host only).
fn libpq_env(config: &Config) -> Vec<(&'static str, String)> {
    let mut env = vec![("PGAPPNAME", "wharf-backup".to_owned())];
    match config.get_hosts().first() {
        Some(Host::Tcp(name)) => env.push(("PGHOST", name.clone())),
        Some(Host::Unix(path)) => env.push(("PGHOST", path.display().to_string())),
        None => {}
    }
    if let Some(port) = config.get_ports().first() {
        env.push(("PGPORT", port.to_string()));
    }
    if let Some(user) = config.get_user() {
        env.push(("PGUSER", user.to_owned()));
    }
    if let Some(db) = config.get_dbname() {
        env.push(("PGDATABASE", db.to_owned()));
    }
    if let Some(password) = config.get_password() {
        env.push(("PGPASSWORD", String::from_utf8_lossy(password).into_owned()));
    }
    env
}

/// Runs `cmd` with the connection in its environment; its stderr on failure.
fn run(mut cmd: Command, config: Option<&Config>, what: &str) -> Result<Vec<u8>, String> {
    for var in ["PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGSERVICE", "PGOPTIONS"] {
        cmd.env_remove(var);
    }
    if let Some(config) = config {
        cmd.envs(libpq_env(config));
    }
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("{what}: cannot run: {e}"))?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(format!("{what} failed ({}): {}", out.status, stderr.trim()))
}

impl super::engine::PgEngine {
    /// See [`Db::snapshot_into`](crate::db::Db::snapshot_into). On a
    /// connection of its own: the dump may take long, and must not hold a
    /// pool's reader meanwhile.
    pub(crate) async fn snapshot_into<T, E, F>(&self, dest: PathBuf, tools: PgTools, view: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&dyn Tx) -> Result<T, E> + Send + 'static,
    {
        let config = self.config().clone();
        tokio::task::spawn_blocking(move || -> Result<T, E> {
            let pg_dump = tool("pg_dump", tools.pg_dump.as_deref())?;
            let mut client = config.connect(NoTls).map_err(|e| DbError::PgConnect(describe(&config), e))?;
            let mut tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .map_err(DbError::from)?;
            let snapshot: String =
                tx.query_one("SELECT pg_export_snapshot()", &[]).map_err(DbError::from)?.try_get(0).map_err(DbError::from)?;
            let statements = Statements::default();
            let tx = PgTx::new(tx, &statements);
            let value = view(&tx)?;
            crate::db::create_private(&dest)?;
            let mut cmd = Command::new(&pg_dump);
            cmd.arg("--format=custom").arg(format!("--snapshot={snapshot}")).arg("--no-password").arg("--file").arg(&dest);
            run(cmd, Some(&config), "pg_dump").map_err(DbError::Snapshot)?;
            // Read only: the end of the transaction only releases the snapshot.
            tx.into_inner().commit().map_err(DbError::from)?;
            Ok(value)
        })
        .await
        .map_err(|e| DbError::Panicked(e.to_string()))?
    }
}

/// What is wrong with a dump, if anything: `pg_restore --list` reads its
/// table of contents, then a restore to /dev/null reads every data block
/// (a truncated archive may still list, since the table of contents comes
/// first, but its data ends early or fails to decompress).
pub(crate) fn dump_problems(file: &Path, tools: &PgTools) -> Result<Vec<String>, DbError> {
    let pg_restore = tool("pg_restore", tools.pg_restore.as_deref())?;
    let mut list = Command::new(&pg_restore);
    list.arg("--list").arg(file);
    if let Err(e) = run(list, None, "pg_restore --list") {
        return Ok(vec![e]);
    }
    let mut read = Command::new(&pg_restore);
    read.arg("--file=/dev/null").arg(file);
    Ok(run(read, None, "pg_restore (reading every block)").err().into_iter().collect())
}

/// Whether the database at `url` holds no table of its own (a target a
/// restore may fill without --force).
pub(crate) fn is_empty(url: &str) -> Result<bool, DbError> {
    let config = parse_url(url)?;
    std::thread::spawn(move || -> Result<bool, DbError> {
        let mut client = config.connect(NoTls).map_err(|e| DbError::PgConnect(describe(&config), e))?;
        let row = client.query_one(
            "SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema'))",
            &[],
        )?;
        Ok(row.try_get(0)?)
    })
    .join()
    .map_err(|p| DbError::Panicked(crate::db::sqlite::engine::panic_message(p)))?
}

/// Restores the dump `file` into the database at `url` in one transaction,
/// replacing the objects the dump holds (`--clean --if-exists`): on any
/// error nothing changes. Objects and grants come out owned by the
/// connecting role (`--no-owner --no-privileges`).
pub(crate) fn restore_dump(url: &str, file: &Path, tools: &PgTools) -> Result<(), DbError> {
    let config = parse_url(url)?;
    let pg_restore = tool("pg_restore", tools.pg_restore.as_deref())?;
    let mut cmd = Command::new(pg_restore);
    cmd.args(["--single-transaction", "--clean", "--if-exists", "--no-owner", "--no-privileges", "--exit-on-error", "--no-password"]);
    // The database comes from PGDATABASE; `--dbname` would put the URL on the command line.
    cmd.arg("--dbname").arg(config.get_dbname().unwrap_or("postgres")).arg(file);
    run(cmd, Some(&config), "pg_restore").map(drop).map_err(DbError::Snapshot)
}
