//! `wharf db migrate --to postgres://...`: copies an embedded (SQLite)
//! install's metadata into an empty PostgreSQL database, in one transaction.
//!
//! Generic on purpose: the tables and columns come from both engines'
//! schemas (SQLite's `sqlite_master` / `table_info`, PostgreSQL's
//! `information_schema`), so a table a later migration adds is copied without
//! a change here; a table or column one engine has and the other lacks stops
//! the copy with its name instead of being dropped silently. Values move
//! unchanged (text as text, integers as integers, bytes as bytes), so the
//! audit chain's hashes still verify on the target.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use postgres::types::ToSql;
use rusqlite::{Connection, OpenFlags};

use super::postgres::engine::{connect, describe, migrate, parse_url};
use super::DbError;

/// Tables not copied, and why: both engines have them, but they describe
/// the source install's backups (a fence of a backup under way, the runs
/// of the embedded engine's snapshots), its running nodes (job leases) or
/// are transient, not registry metadata.
const NOT_COPIED: &[(&str, &str)] = &[
    ("backup_fences", "backups of the source install"),
    ("backup_runs", "backups of the source install"),
    // Transient: held by the source's running nodes, which are stopped for
    // the copy; each scheduled job takes its lease again on its next tick.
    ("job_leases", "scheduled-job leases of the source install's nodes"),
    ("login_failures", "failed-login counters: transient, they expire within auth.lockout"),
];

/// The PostgreSQL engine's own bookkeeping, not metadata.
const POSTGRES_ONLY: &[&str] = &["wharf_migrations"];

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database: {0}")]
    Postgres(#[from] postgres::Error),
    #[error("the target database {target} is not empty (table {table} has {rows} rows); migrate into an empty database")]
    NotEmpty { target: String, table: String, rows: i64 },
    #[error("the two engines' schemas differ: {0}; nothing was copied")]
    Schema(String),
    #[error("column {table}.{column} has PostgreSQL type {ty}, which the copy does not know; nothing was copied")]
    UnsupportedType { table: String, column: String, ty: String },
    #[error("after the copy, table {table} has {target} rows on PostgreSQL but {source_rows} in SQLite; nothing was committed")]
    Count { table: String, source_rows: i64, target: i64 },
}

/// One copied table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCopy {
    pub table: String,
    pub rows: i64,
}

/// What [`copy_sqlite_to_postgres`] did.
#[derive(Debug, Clone)]
pub struct MigrateSummary {
    /// Where the metadata went, without the password.
    pub target: String,
    /// In the order they were copied (referenced tables first).
    pub tables: Vec<TableCopy>,
    /// SQLite-only tables left behind, with why.
    pub skipped: Vec<(&'static str, &'static str)>,
}

/// Copies every metadata table of the SQLite database at `sqlite` into the
/// PostgreSQL database at `url` (which gets the current schema first and
/// must hold no rows), then checks each table's row count, all in one
/// transaction: on any error nothing is committed. Blocking: run it off any
/// async runtime (the synchronous PostgreSQL client starts one of its own).
pub fn copy_sqlite_to_postgres(sqlite: &Path, url: &str) -> Result<MigrateSummary, MigrateError> {
    if !sqlite.is_file() {
        return Err(DbError::Missing(sqlite.display().to_string()).into());
    }
    let source = Connection::open_with_flags(sqlite, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    let config = parse_url(url)?;
    let target = describe(&config);
    let mut client = connect(&config)?;
    migrate(&mut client)?;

    let source_tables = sqlite_tables(&source)?;
    let mut tx = client.transaction()?;
    let target_tables: Vec<String> = postgres_tables(&mut tx)?.into_iter().filter(|t| !NOT_COPIED.iter().any(|(n, _)| n == t)).collect();
    let not_copied: BTreeSet<&str> = NOT_COPIED.iter().map(|(t, _)| *t).collect();
    let expected: BTreeSet<&str> = source_tables.keys().map(String::as_str).filter(|t| !not_copied.contains(t)).collect();
    let actual: BTreeSet<&str> = target_tables.iter().map(String::as_str).collect();
    if expected != actual {
        let only_sqlite: Vec<_> = expected.difference(&actual).collect();
        let only_pg: Vec<_> = actual.difference(&expected).collect();
        return Err(MigrateError::Schema(format!("tables only in SQLite: {only_sqlite:?}; only in PostgreSQL: {only_pg:?}")));
    }
    for table in &target_tables {
        let rows: i64 = tx.query_one(&format!("SELECT count(*) FROM \"{table}\""), &[])?.get(0);
        if rows > 0 {
            return Err(MigrateError::NotEmpty { target, table: table.clone(), rows });
        }
    }

    let order = referenced_first(&mut tx, &target_tables)?;
    let mut tables = Vec::new();
    for table in &order {
        let columns = postgres_columns(&mut tx, table)?;
        let source_columns = &source_tables[table];
        let names: BTreeSet<&str> = columns.iter().map(|(c, _)| c.as_str()).collect();
        let source_names: BTreeSet<&str> = source_columns.columns.iter().map(String::as_str).collect();
        if names != source_names {
            return Err(MigrateError::Schema(format!("table {table}: SQLite columns {source_names:?}, PostgreSQL columns {names:?}")));
        }
        let rows = copy_table(&source, &mut tx, table, &columns, &source_columns.primary_key)?;
        tables.push(TableCopy { table: table.clone(), rows });
    }
    restart_identities(&mut tx)?;
    // Counted again on the target, inside the transaction, before it commits.
    for copied in &tables {
        let target_rows: i64 = tx.query_one(&format!("SELECT count(*) FROM \"{}\"", copied.table), &[])?.get(0);
        if target_rows != copied.rows {
            return Err(MigrateError::Count { table: copied.table.clone(), source_rows: copied.rows, target: target_rows });
        }
    }
    tx.commit()?;
    let skipped = NOT_COPIED.iter().copied().filter(|(t, _)| source_tables.contains_key(*t)).collect();
    Ok(MigrateSummary { target, tables, skipped })
}

struct SqliteTable {
    columns: Vec<String>,
    /// Rows are read in key order, so a row that refers to an earlier row of
    /// its own table comes after it.
    primary_key: Vec<String>,
}

fn sqlite_tables(conn: &Connection) -> Result<BTreeMap<String, SqliteTable>, MigrateError> {
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut tables = BTreeMap::new();
    for name in names {
        let mut stmt = conn.prepare("SELECT name, pk FROM pragma_table_info(?1)")?;
        let cols: Vec<(String, i64)> = stmt.query_map([&name], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
        let mut key: Vec<(i64, String)> = cols.iter().filter(|(_, pk)| *pk > 0).map(|(c, pk)| (*pk, c.clone())).collect();
        key.sort();
        tables.insert(
            name,
            SqliteTable { columns: cols.into_iter().map(|(c, _)| c).collect(), primary_key: key.into_iter().map(|(_, c)| c).collect() },
        );
    }
    Ok(tables)
}

fn postgres_tables(tx: &mut postgres::Transaction<'_>) -> Result<Vec<String>, MigrateError> {
    let rows = tx.query(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name",
        &[],
    )?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).filter(|t| !POSTGRES_ONLY.contains(&t.as_str())).collect())
}

fn postgres_columns(tx: &mut postgres::Transaction<'_>, table: &str) -> Result<Vec<(String, String)>, MigrateError> {
    let rows = tx.query(
        "SELECT column_name::text, data_type::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        &[&table],
    )?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The tables ordered so that every table comes after the tables its
/// foreign keys point at (a reference to itself aside).
fn referenced_first(tx: &mut postgres::Transaction<'_>, tables: &[String]) -> Result<Vec<String>, MigrateError> {
    let edges = tx.query(
        "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c
         JOIN pg_namespace n ON n.oid = c.connamespace
         WHERE c.contype = 'f' AND n.nspname = current_schema()",
        &[],
    )?;
    let mut needs: BTreeMap<&str, BTreeSet<String>> = tables.iter().map(|t| (t.as_str(), BTreeSet::new())).collect();
    for e in &edges {
        let (from, to): (String, String) = (e.get(0), e.get(1));
        let (from, to) = (from.trim_matches('"').to_owned(), to.trim_matches('"').to_owned());
        if from != to {
            if let Some(n) = needs.get_mut(from.as_str()) {
                n.insert(to);
            }
        }
    }
    let mut order: Vec<String> = Vec::new();
    while order.len() < tables.len() {
        let ready: Vec<&str> =
            needs.iter().filter(|(t, n)| !order.iter().any(|o| o == *t) && n.iter().all(|d| order.contains(d))).map(|(t, _)| *t).collect();
        if ready.is_empty() {
            return Err(MigrateError::Schema("foreign keys form a cycle between tables".into()));
        }
        order.extend(ready.into_iter().map(str::to_owned));
    }
    Ok(order)
}

/// Copies one table's rows; returns how many.
fn copy_table(
    source: &Connection,
    tx: &mut postgres::Transaction<'_>,
    table: &str,
    columns: &[(String, String)],
    key: &[String],
) -> Result<i64, MigrateError> {
    let list = columns.iter().map(|(c, _)| format!("\"{c}\"")).collect::<Vec<_>>().join(", ");
    let order = if key.is_empty() {
        String::new()
    } else {
        format!(" ORDER BY {}", key.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", "))
    };
    let params = (1..=columns.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
    let insert = tx.prepare(&format!("INSERT INTO \"{table}\" ({list}) VALUES ({params})"))?;
    let mut select = source.prepare(&format!("SELECT {list} FROM \"{table}\"{order}"))?;
    let mut rows = select.query([])?;
    let mut n = 0i64;
    while let Some(row) = rows.next()? {
        let mut values: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(columns.len());
        for (i, (column, ty)) in columns.iter().enumerate() {
            // SQLite's types map one to one onto the PostgreSQL schema's
            // (migrations/postgres/0001_core.sql): INTEGER is 64-bit.
            let value: Box<dyn ToSql + Sync> = match ty.as_str() {
                "bigint" => Box::new(row.get::<_, Option<i64>>(i)?),
                "integer" => Box::new(
                    row.get::<_, Option<i64>>(i)?
                        .map(i32::try_from)
                        .transpose()
                        .map_err(|_| MigrateError::Schema(format!("{table}.{column}: a value does not fit PostgreSQL's integer")))?,
                ),
                "boolean" => Box::new(row.get::<_, Option<i64>>(i)?.map(|v| v != 0)),
                "bytea" => Box::new(row.get::<_, Option<Vec<u8>>>(i)?),
                "text" => Box::new(row.get::<_, Option<String>>(i)?),
                other => {
                    return Err(MigrateError::UnsupportedType { table: table.into(), column: column.clone(), ty: other.into() });
                }
            };
            values.push(value);
        }
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        tx.execute(&insert, &refs)?;
        n += 1;
    }
    Ok(n)
}

/// Identity columns continue after the copied ids, so the next account or
/// audit row gets a fresh id rather than a duplicate-key error.
fn restart_identities(tx: &mut postgres::Transaction<'_>) -> Result<(), MigrateError> {
    let identities = tx.query(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND is_identity = 'YES'",
        &[],
    )?;
    for r in &identities {
        let (table, column): (String, String) = (r.get(0), r.get(1));
        tx.query_one(
            &format!(
                "SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'), coalesce(max(\"{column}\"), 0) + 1, false) FROM \"{table}\""
            ),
            &[],
        )?;
    }
    Ok(())
}
