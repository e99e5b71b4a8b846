//! `blob_claims` and `gc_pending`: how garbage collection and uploads agree
//! on a digest without a global lock. Every decision is re-checked inside
//! the single-writer transaction that acts on it.

use rusqlite::{params, Connection, OptionalExtension};

use super::{now_ms, DbError};

/// Claims `digest` for an upload about to place its bytes. False while GC is
/// deleting that digest's bytes: the caller waits and tries again.
pub fn claim(conn: &Connection, claim_id: &str, digest: &str) -> Result<bool, DbError> {
    if is_pending(conn, digest)? {
        return Ok(false);
    }
    conn.execute("INSERT INTO blob_claims (claim_id, digest, created_at) VALUES (?1, ?2, ?3)", params![claim_id, digest, now_ms()])?;
    Ok(true)
}

pub fn release_claim(conn: &Connection, claim_id: &str) -> Result<(), DbError> {
    conn.execute("DELETE FROM blob_claims WHERE claim_id = ?1", [claim_id])?;
    Ok(())
}

pub fn is_pending(conn: &Connection, digest: &str) -> Result<bool, DbError> {
    Ok(conn.query_row("SELECT 1 FROM gc_pending WHERE digest = ?1", [digest], |_| Ok(())).optional()?.is_some())
}

/// Marks a blob as just pushed, so the grace period starts again.
pub fn touch_blob(conn: &Connection, digest: &str) -> Result<(), DbError> {
    conn.execute("UPDATE blobs SET created_at = ?2 WHERE digest = ?1", params![digest, now_ms()])?;
    Ok(())
}

/// The one rule for a collectable blob `b`, shared by the candidate scan and
/// the re-check that acts on it: pushed before `?2` (the grace cutoff), no
/// manifest references it, and no upload claim newer than `?3` holds it.
macro_rules! collectable {
    () => {
        "b.created_at < ?2
         AND NOT EXISTS (SELECT 1 FROM manifest_references r WHERE r.target_digest = b.digest)
         AND NOT EXISTS (SELECT 1 FROM blob_claims c WHERE c.digest = b.digest AND c.created_at >= ?3)"
    };
}

/// Blobs no manifest references, pushed before `cutoff`, without a live
/// claim; at most `limit`, in digest order after `after` (keyset paging, so
/// no listing of the whole store is ever held).
pub fn candidates(conn: &Connection, after: &str, cutoff: i64, claims_since: i64, limit: u32) -> Result<Vec<(String, u64)>, DbError> {
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT b.digest, b.size FROM blobs b WHERE b.digest > ?1 AND ",
        collectable!(),
        " ORDER BY b.digest LIMIT ?4"
    ))?;
    let rows = stmt.query_map(params![after, cutoff, claims_since, limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Re-checks a candidate inside the deleting transaction; if it still
/// qualifies, unlists it everywhere and records it as pending deletion.
/// A manifest PUT after this commit no longer finds the blob.
pub fn take(conn: &Connection, digest: &str, cutoff: i64, claims_since: i64) -> Result<Option<u64>, DbError> {
    let size: Option<u64> = conn
        .query_row(
            concat!("SELECT b.size FROM blobs b WHERE b.digest = ?1 AND ", collectable!()),
            params![digest, cutoff, claims_since],
            |r| r.get(0),
        )
        .optional()?;
    let Some(size) = size else { return Ok(None) };
    conn.execute("DELETE FROM repository_blobs WHERE digest = ?1", [digest])?;
    conn.execute("DELETE FROM blobs WHERE digest = ?1", [digest])?;
    conn.execute(
        "INSERT INTO gc_pending (digest, size, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        params![digest, size, now_ms()],
    )?;
    Ok(Some(size))
}

/// Blobs whose deletion is under way (or was cut short by a crash).
pub fn pending(conn: &Connection, limit: u32) -> Result<Vec<(String, u64)>, DbError> {
    let mut stmt = conn.prepare_cached("SELECT digest, size FROM gc_pending ORDER BY digest LIMIT ?1")?;
    let rows = stmt.query_map([limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn finish(conn: &Connection, digest: &str) -> Result<(), DbError> {
    conn.execute("DELETE FROM gc_pending WHERE digest = ?1", [digest])?;
    Ok(())
}

/// Claims older than `before` belong to uploads that died.
pub fn drop_stale_claims(conn: &Connection, before: i64) -> Result<usize, DbError> {
    Ok(conn.execute("DELETE FROM blob_claims WHERE created_at < ?1", [before])?)
}

/// Upload sessions idle since before `before`, with their part keys.
pub fn stale_uploads(conn: &Connection, before: i64, limit: u32) -> Result<Vec<(String, Vec<String>)>, DbError> {
    let mut stmt = conn.prepare_cached("SELECT id FROM uploads WHERE updated_at < ?1 ORDER BY updated_at LIMIT ?2")?;
    let ids: Vec<String> = stmt.query_map(params![before, limit], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let mut parts = conn.prepare_cached("SELECT object_key FROM upload_parts WHERE upload_id = ?1 ORDER BY seq")?;
    ids.into_iter()
        .map(|id| {
            let keys = parts.query_map([&id], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
            Ok((id, keys))
        })
        .collect()
}

/// Deletes an upload session if it is still idle since before `before`.
pub fn delete_stale_upload(conn: &Connection, id: &str, before: i64) -> Result<bool, DbError> {
    Ok(conn.execute("DELETE FROM uploads WHERE id = ?1 AND updated_at < ?2", params![id, before])? > 0)
}

/// Whether bytes found at `digest`'s address belong to something: a blob
/// row, a deletion under way, or an upload claim newer than `claims_since`
/// (an upload placing them right now).
pub fn stray_is_known(conn: &Connection, digest: &str, claims_since: i64) -> Result<bool, DbError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM blobs WHERE digest = ?1)
             OR EXISTS (SELECT 1 FROM gc_pending WHERE digest = ?1)
             OR EXISTS (SELECT 1 FROM blob_claims WHERE digest = ?1 AND created_at >= ?2)",
        params![digest, claims_since],
        |r| r.get(0),
    )?)
}

/// Re-checks stray bytes inside the deleting transaction and records them
/// as pending deletion, so an upload of the same digest waits until they
/// are gone instead of racing the delete. Returns whether they were taken.
pub fn take_stray(conn: &Connection, digest: &str, size: u64, claims_since: i64) -> Result<bool, DbError> {
    if stray_is_known(conn, digest, claims_since)? {
        return Ok(false);
    }
    conn.execute("INSERT INTO gc_pending (digest, size, created_at) VALUES (?1, ?2, ?3)", params![digest, size, now_ms()])?;
    Ok(true)
}

pub fn upload_exists(conn: &Connection, id: &str) -> Result<bool, DbError> {
    Ok(conn.query_row("SELECT 1 FROM uploads WHERE id = ?1", [id], |_| Ok(())).optional()?.is_some())
}

// ---- The engine-neutral seam (the free functions above go once every caller uses it).

use crate::domain::{Digest, UploadId};

/// Garbage collection's bookkeeping (`blob_claims`, `gc_pending`, and what
/// it reads of `blobs` and `uploads`). An engine with several writers must
/// keep `claim_blob` and `gc_take` exclusive of each other for one digest
/// (PostgreSQL: lock the `blobs` row), so that a manifest PUT referencing a
/// blob either sees it intact or finds it gone, never half-deleted.
pub trait Gc {
    /// Claims `digest` for an upload about to place its bytes. False while
    /// GC is deleting that digest's bytes: the caller waits and tries again.
    fn claim_blob(&self, claim_id: &str, digest: &Digest) -> Result<bool, DbError>;
    fn release_claim(&self, claim_id: &str) -> Result<(), DbError>;
    /// Whether the digest's bytes are being deleted.
    fn gc_is_pending(&self, digest: &Digest) -> Result<bool, DbError>;
    /// Marks a blob as just pushed, so the grace period starts again.
    fn touch_blob(&self, digest: &Digest) -> Result<(), DbError>;
    /// Blobs no manifest references, pushed before `cutoff`, without a claim
    /// newer than `claims_since`; at most `limit`, in digest order after `after`.
    fn gc_candidates(&self, after: &str, cutoff: i64, claims_since: i64, limit: u32) -> Result<Vec<(Digest, u64)>, DbError>;
    /// Re-checks a candidate; if it still qualifies, unlists it everywhere
    /// and records it as pending deletion. Returns its size if taken.
    fn gc_take(&self, digest: &Digest, cutoff: i64, claims_since: i64) -> Result<Option<u64>, DbError>;
    /// Blobs whose deletion is under way (or was cut short by a crash).
    fn gc_pending(&self, limit: u32) -> Result<Vec<(Digest, u64)>, DbError>;
    fn gc_finish(&self, digest: &Digest) -> Result<(), DbError>;
    /// Drops claims older than `before` (their uploads died); returns how many.
    fn drop_stale_claims(&self, before: i64) -> Result<usize, DbError>;
    /// Upload sessions idle since before `before`, with their part keys.
    fn stale_uploads(&self, before: i64, limit: u32) -> Result<Vec<(UploadId, Vec<String>)>, DbError>;
    /// Deletes an upload session if it is still idle since before `before`.
    fn delete_stale_upload(&self, id: &UploadId, before: i64) -> Result<bool, DbError>;
    /// Whether bytes at `digest`'s address belong to something: a blob row,
    /// a deletion under way, or a claim newer than `claims_since`.
    fn stray_is_known(&self, digest: &Digest, claims_since: i64) -> Result<bool, DbError>;
    /// Re-checks stray bytes and records them as pending deletion.
    fn take_stray(&self, digest: &Digest, size: u64, claims_since: i64) -> Result<bool, DbError>;
    fn upload_exists(&self, id: &UploadId) -> Result<bool, DbError>;
}
