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

use postgres::types::ToSql;
use postgres::{Row, Transaction};

use crate::db::{DbError, RepoId};
use crate::domain::{Digest, RepoName, Stage, Tag, UploadId};

/// The queries of every aggregate inside one PostgreSQL transaction. The
/// transaction needs `&mut` and the traits take `&self`: a `RefCell`, sound
/// because a transaction runs on one thread.
pub(crate) struct PgTx<'c> {
    tx: RefCell<Transaction<'c>>,
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl<'c> PgTx<'c> {
    pub(crate) fn new(tx: Transaction<'c>) -> Self {
        Self { tx: RefCell::new(tx) }
    }

    pub(crate) fn into_inner(self) -> Transaction<'c> {
        self.tx.into_inner()
    }

    fn query(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, DbError> {
        Ok(self.tx.borrow_mut().query(sql, params)?)
    }

    fn query_opt(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>, DbError> {
        Ok(self.tx.borrow_mut().query_opt(sql, params)?)
    }

    fn query_one(&self, sql: &str, params: Params<'_>) -> Result<Row, DbError> {
        Ok(self.tx.borrow_mut().query_one(sql, params)?)
    }

    fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64, DbError> {
        Ok(self.tx.borrow_mut().execute(sql, params)?)
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
