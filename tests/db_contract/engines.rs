//! Factories: a fresh, empty, migrated database per test.

use std::sync::atomic::{AtomicU64, Ordering};

use wharf::db::Db;
use wharf::domain::{Actor, Algorithm, Digest, RepoName, Tag};

/// A database and whatever must live as long as it (its directory).
pub struct Engine {
    pub db: Db,
    _dir: tempfile::TempDir,
}

pub fn sqlite() -> Engine {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::open(&dir.path().join("wharf.db"), 2).expect("open sqlite");
    Engine { db, _dir: dir }
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
