//! The PostgreSQL engine: connection threads, migrations, and one file of
//! queries per aggregate trait, the same statements as `../sqlite` in
//! PostgreSQL's dialect.
//!
//! Why every write transaction first takes one cluster-wide advisory lock
//! (`engine::WRITER_LOCK`): the read-then-write steps the SQLite files say
//! rely on the one writer (audit chain head, release sequence, upload part
//! sequence, repository creation, tag move, GC take vs claim and manifest
//! PUT) then keep exactly SQLite's guarantee across every node and
//! connection, under READ COMMITTED (each statement sees everything the
//! previous lock holder committed), with no retry: `Db::write` runs its
//! closure once. Finer locks per row were weighed and left out: nearly every
//! write appends to the audit chain in the middle of its transaction and
//! holds that head lock until commit, so row locks taken before it in one
//! transaction and after it in another deadlock (PostgreSQL then aborts one:
//! a 500 on a race) while buying little concurrency. Reads run in a
//! REPEATABLE READ, READ ONLY transaction on any of several connections and
//! never wait for the lock.

pub(crate) mod engine;

mod accounts;
mod audit;
mod backup;
mod blobs;
mod console_sessions;
pub(crate) mod dump;
mod events;
mod gc;
mod job_leases;
mod layer_index;
mod login_failures;
mod manifests;
mod releases;
mod repositories;
mod signatures;
mod signing_keys;
mod tags;
mod uploads;

use std::cell::RefCell;
use std::collections::HashMap;

use postgres::types::ToSql;
use postgres::{Row, Statement, Transaction};

use crate::db::{DbError, RepoId};
use crate::domain::{Digest, RepoName, Stage, Tag, UploadId};

/// The queries of every aggregate inside one PostgreSQL transaction. The
/// transaction needs `&mut` and the traits take `&self`: a `RefCell`, sound
/// because a transaction runs on one thread.
pub(crate) struct PgTx<'c> {
    tx: RefCell<Transaction<'c>>,
    statements: &'c Statements,
}

/// Statements prepared on one connection, by their SQL, at most this many.
const STATEMENT_CACHE: usize = 256;

/// The statements prepared on one connection: each is parsed and planned by
/// the server once, and a query is then one round trip instead of two
/// (prepare, then execute). On a small push the round trips, not the
/// queries, were the database's cost: every one is a sleep and a wake-up of
/// the connection's thread. Forgotten whenever a statement fails (another
/// node's migration may have changed what one returns) and with the
/// connection.
#[derive(Default)]
pub(crate) struct Statements(RefCell<HashMap<String, Statement>>);

impl Statements {
    pub(crate) fn clear(&self) {
        self.0.borrow_mut().clear();
    }
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl<'c> PgTx<'c> {
    /// `statements`: those prepared on the connection `tx` runs on.
    pub(crate) fn new(tx: Transaction<'c>, statements: &'c Statements) -> Self {
        Self { tx: RefCell::new(tx), statements }
    }

    pub(crate) fn into_inner(self) -> Transaction<'c> {
        self.tx.into_inner()
    }

    /// Runs `sql`, prepared once per connection, with `run`.
    fn prepared<T>(
        &self,
        sql: &str,
        run: impl FnOnce(&mut Transaction<'c>, &Statement) -> Result<T, postgres::Error>,
    ) -> Result<T, DbError> {
        let cached = self.statements.0.borrow().get(sql).cloned();
        let mut tx = self.tx.borrow_mut();
        let outcome = match cached {
            Some(statement) => run(&mut tx, &statement),
            None => tx.prepare(sql).and_then(|statement| {
                let mut statements = self.statements.0.borrow_mut();
                if statements.len() >= STATEMENT_CACHE {
                    statements.clear();
                }
                statements.insert(sql.to_owned(), statement.clone());
                drop(statements);
                run(&mut tx, &statement)
            }),
        };
        outcome.map_err(|e| {
            self.statements.clear();
            e.into()
        })
    }

    fn query(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, DbError> {
        self.prepared(sql, |tx, statement| tx.query(statement, params))
    }

    fn query_opt(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>, DbError> {
        self.prepared(sql, |tx, statement| tx.query_opt(statement, params))
    }

    fn query_one(&self, sql: &str, params: Params<'_>) -> Result<Row, DbError> {
        self.prepared(sql, |tx, statement| tx.query_one(statement, params))
    }

    fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64, DbError> {
        self.prepared(sql, |tx, statement| tx.execute(statement, params))
    }
}

/// A domain type stored as its text and read back through its parser, so a
/// value that does not parse surfaces as a corrupt row, not a bad value.
pub(crate) trait FromText: Sized {
    fn from_text(s: &str) -> Option<Self>;
}

macro_rules! from_text {
    ($($ty:ty),*) => {
        $(impl FromText for $ty {
            fn from_text(s: &str) -> Option<Self> {
                <$ty>::parse(s).ok()
            }
        })*
    };
}

from_text!(Digest, RepoName, Tag, Stage, UploadId);

/// Column `i` of `row` as a domain type.
fn text<T: FromText>(row: &Row, i: usize, what: &'static str) -> Result<T, DbError> {
    let s: &str = row.try_get(i)?;
    T::from_text(s).ok_or(DbError::Corrupt(what))
}

/// A nullable column `i` of `row` as a domain type.
fn opt_text<T: FromText>(row: &Row, i: usize, what: &'static str) -> Result<Option<T>, DbError> {
    let s: Option<&str> = row.try_get(i)?;
    s.map(|s| T::from_text(s).ok_or(DbError::Corrupt(what))).transpose()
}

/// A BIGINT column that holds a size or count.
fn unsigned(row: &Row, i: usize, what: &'static str) -> Result<u64, DbError> {
    let v: i64 = row.try_get(i)?;
    u64::try_from(v).map_err(|_| DbError::Corrupt(what))
}

fn repo_id(row: &Row, i: usize) -> Result<RepoId, DbError> {
    Ok(RepoId(row.try_get(i)?))
}

/// A size or count as BIGINT; nothing Wharf stores comes near 2^63.
fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
