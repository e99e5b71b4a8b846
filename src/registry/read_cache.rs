//! The manifest read path's memory: what `GET /v2/<name>/manifests/<ref>`
//! answered, so a repeated GET neither hops to a database thread nor reads
//! a row.
//!
//! Two caches, with different rules:
//! - manifest bytes and media type by digest. Content-addressed, so an entry
//!   is never wrong; it is only ever served after the second cache (or the
//!   database) said the repository holds that digest. Bounded by bytes.
//! - (repository, reference) → digest: what a tag points at, and that a
//!   digest is in a repository. This one can go stale (a tag moves, a
//!   manifest is deleted), so an answer is used only while **no write
//!   transaction has finished in this process since it was read**
//!   ([`Db::writes`](crate::db::Db::writes), counted before the read) and
//!   for at most [`RESOLVED_TTL`]. The first rule makes every change made
//!   through this server (push, delete, promotion, rollback, retention)
//!   visible to the next request; the second bounds what it cannot see:
//!   other nodes on a shared PostgreSQL database and the `wharf` maintenance
//!   commands writing the SQLite file of a running server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use quick_cache::Weighter;

use super::manifests::StoredManifest;
use crate::domain::{Digest, Reference, RepoName};

/// How long a tag → digest (or digest present) answer may be served without
/// asking the database, at most.
pub(crate) const RESOLVED_TTL: Duration = Duration::from_secs(1);
/// Manifest bytes kept in memory, at most.
const CONTENT_BYTES: u64 = 32 * 1024 * 1024;
/// (repository, reference) answers kept, at most.
const RESOLVED_ENTRIES: u64 = 64 * 1024;

type Key = (RepoName, String);

#[derive(Clone)]
struct Resolved {
    digest: Digest,
    /// [`Db::writes`](crate::db::Db::writes) before the read that found it.
    writes: u64,
    at: Instant,
}

#[derive(Clone)]
struct ByBytes;

impl Weighter<Digest, Arc<StoredManifest>> for ByBytes {
    fn weight(&self, _: &Digest, m: &Arc<StoredManifest>) -> u64 {
        // The bytes plus a rough allowance for the entry itself.
        (m.content.len() + m.media_type.len() + 128) as u64
    }
}

pub(crate) struct ReadCache {
    content: Cache<Digest, Arc<StoredManifest>, ByBytes>,
    resolved: Cache<Key, Resolved>,
}

impl Default for ReadCache {
    fn default() -> Self {
        Self { content: Cache::with_weighter(4096, CONTENT_BYTES, ByBytes), resolved: Cache::new(RESOLVED_ENTRIES as usize) }
    }
}

pub(crate) fn key(repo: &RepoName, reference: &Reference) -> (RepoName, String) {
    (repo.clone(), reference.to_string())
}

impl ReadCache {
    /// The manifest `key` names, if an answer read when the write count was
    /// `writes` (the count now) is still here and fresh.
    pub(crate) fn get(&self, key: &Key, writes: u64) -> Option<Arc<StoredManifest>> {
        let resolved = self.resolved.get(key)?;
        if resolved.writes != writes || resolved.at.elapsed() >= RESOLVED_TTL {
            return None;
        }
        self.content.get(&resolved.digest)
    }

    /// Keeps what the database answered for `key`; `writes` is the count
    /// taken before that read.
    pub(crate) fn put(&self, key: Key, manifest: Arc<StoredManifest>, writes: u64) {
        let digest = manifest.digest.clone();
        self.content.insert(digest.clone(), manifest);
        self.resolved.insert(key, Resolved { digest, writes, at: Instant::now() });
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::domain::{Algorithm, Tag};

    fn manifest(body: &'static [u8]) -> Arc<StoredManifest> {
        let digest = Digest::of(Algorithm::Sha256, body);
        Arc::new(StoredManifest { digest, media_type: "application/vnd.oci.image.manifest.v1+json".into(), content: Bytes::from(body) })
    }

    #[test]
    fn an_answer_lasts_only_until_the_next_write() {
        let cache = ReadCache::default();
        let repo = RepoName::parse("a/b").unwrap();
        let k = key(&repo, &Reference::Tag(Tag::parse("v1").unwrap()));
        cache.put(k.clone(), manifest(b"{}"), 7);
        assert_eq!(cache.get(&k, 7).map(|m| m.content.clone()), Some(Bytes::from_static(b"{}")));
        assert!(cache.get(&k, 8).is_none(), "a write finished since the read");
        let other = key(&RepoName::parse("a/c").unwrap(), &Reference::Tag(Tag::parse("v1").unwrap()));
        assert!(cache.get(&other, 7).is_none(), "another repository asks the database");
    }
}
