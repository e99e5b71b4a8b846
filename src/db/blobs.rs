//! `blobs` (bytes in place) and `repository_blobs` (where they may be served).

use rusqlite::{params, Connection, OptionalExtension};

use super::{now_ms, DbError};

/// Size of a blob whose bytes are in storage, if any.
pub fn size_of(conn: &Connection, digest: &str) -> Result<Option<u64>, DbError> {
    Ok(conn.query_row("SELECT size FROM blobs WHERE digest = ?1", [digest], |r| r.get(0)).optional()?)
}

/// Records that the blob's bytes are at its content address.
pub fn insert(conn: &Connection, digest: &str, size: u64) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO blobs (digest, size, created_at) VALUES (?1, ?2, ?3) ON CONFLICT (digest) DO NOTHING",
        params![digest, size, now_ms()],
    )?;
    Ok(())
}

pub fn link(conn: &Connection, repository_id: i64, digest: &str) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
        params![repository_id, digest, now_ms()],
    )?;
    Ok(())
}

/// Size of the blob if the repository may serve it.
pub fn linked_size(conn: &Connection, repository_id: i64, digest: &str) -> Result<Option<u64>, DbError> {
    Ok(conn
        .query_row(
            "SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
             WHERE rb.repository_id = ?1 AND rb.digest = ?2",
            params![repository_id, digest],
            |r| r.get(0),
        )
        .optional()?)
}

/// Removes the repository's link; the bytes stay until garbage collection.
pub fn unlink(conn: &Connection, repository_id: i64, digest: &str) -> Result<bool, DbError> {
    let n = conn.execute("DELETE FROM repository_blobs WHERE repository_id = ?1 AND digest = ?2", params![repository_id, digest])?;
    Ok(n > 0)
}

/// Repositories that may serve the blob.
pub fn repositories_linking(conn: &Connection, digest: &str) -> Result<Vec<i64>, DbError> {
    let mut stmt = conn.prepare_cached("SELECT repository_id FROM repository_blobs WHERE digest = ?1 ORDER BY repository_id")?;
    let rows = stmt.query_map([digest], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

// ---- The engine-neutral seam (the free functions above go once every caller uses it).

use super::RepoId;
use crate::domain::Digest;

pub trait Blobs {
    /// Size of a blob whose bytes are in storage, if any.
    fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, DbError>;
    /// Records that the blob's bytes are at its content address (no-op if known).
    fn insert_blob(&self, digest: &Digest, size: u64) -> Result<(), DbError>;
    /// Lets the repository serve the blob (no-op if it already may).
    fn link_blob(&self, repo: RepoId, digest: &Digest) -> Result<(), DbError>;
    /// Size of the blob if the repository may serve it.
    fn linked_blob_size(&self, repo: RepoId, digest: &Digest) -> Result<Option<u64>, DbError>;
    /// Removes the repository's link; the bytes stay until garbage collection.
    fn unlink_blob(&self, repo: RepoId, digest: &Digest) -> Result<bool, DbError>;
    /// Repositories that may serve the blob, in id order.
    fn repositories_linking(&self, digest: &Digest) -> Result<Vec<RepoId>, DbError>;
}
