//! Factories: a fresh, empty, migrated database per test.

use std::sync::atomic::{AtomicU64, Ordering};

use wharf::db::Db;
use wharf::domain::{Actor, Algorithm, Digest, RepoName, Tag};

/// A database and whatever must live as long as it (its directory, or its
/// PostgreSQL database, dropped after the handle).
pub struct Engine {
    pub db: Db,
    _dir: Option<tempfile::TempDir>,
    _database: Option<crate::pg::TestDatabase>,
}

pub fn sqlite() -> Option<Engine> {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::open(&dir.path().join("wharf.db"), 2).expect("open sqlite");
    Some(Engine { db, _dir: Some(dir), _database: None })
}

/// A fresh database on the test PostgreSQL server; `None` (after a loud
/// note) when none is configured outside CI, a failure in CI.
pub fn postgres() -> Option<Engine> {
    let server = crate::pg::postgres_url()?;
    let database = crate::pg::TestDatabase::create(&server);
    let db = Db::open_postgres(&database.url, 2).expect("open postgres");
    Some(Engine { db, _dir: None, _database: Some(database) })
}

/// A distinct valid digest per call.
pub fn digest() -> Digest {
    static N: AtomicU64 = AtomicU64::new(0);
    Digest::of(Algorithm::Sha256, &N.fetch_add(1, Ordering::Relaxed).to_le_bytes())
}

pub fn name(s: &str) -> RepoName {
    RepoName::parse(s).expect("repository name")
}

pub fn tag(s: &str) -> Tag {
    Tag::parse(s).expect("tag")
}

pub fn actor(name: &str) -> Actor {
    Actor { name: name.into(), source: "127.0.0.1".into() }
}

/// The errors contract tests return: the database's.
pub type R<T> = Result<T, wharf::db::DbError>;
