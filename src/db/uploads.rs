//! `uploads` and `upload_parts`: resumable blob upload sessions.

use rusqlite::{params, Connection, OptionalExtension};

use super::{now_ms, DbError};

#[derive(Debug, Clone)]
pub struct UploadRow {
    pub id: String,
    pub repository_id: i64,
    pub size: u64,
    pub hasher_state: Vec<u8>,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct PartRow {
    pub object_key: String,
    pub size: u64,
}

pub fn create(conn: &Connection, id: &str, repository_id: i64, hasher_state: &[u8]) -> Result<(), DbError> {
    let now = now_ms();
    conn.execute(
        "INSERT INTO uploads (id, repository_id, size, hasher_state, created_at, updated_at) VALUES (?1, ?2, 0, ?3, ?4, ?4)",
        params![id, repository_id, hasher_state, now],
    )?;
    Ok(())
}

pub fn get(conn: &Connection, id: &str) -> Result<Option<UploadRow>, DbError> {
    Ok(conn
        .query_row("SELECT id, repository_id, size, hasher_state, created_at FROM uploads WHERE id = ?1", [id], |r| {
            Ok(UploadRow { id: r.get(0)?, repository_id: r.get(1)?, size: r.get(2)?, hasher_state: r.get(3)?, created_at: r.get(4)? })
        })
        .optional()?)
}

pub fn parts(conn: &Connection, id: &str) -> Result<Vec<PartRow>, DbError> {
    let mut stmt = conn.prepare_cached("SELECT object_key, size FROM upload_parts WHERE upload_id = ?1 ORDER BY seq")?;
    let rows = stmt.query_map([id], |r| Ok(PartRow { object_key: r.get(0)?, size: r.get(1)? }))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records a written part, but only if the upload is still at `expected_size`
/// (another request may have appended meanwhile). Returns whether it won.
pub fn append_part(conn: &Connection, id: &str, expected_size: u64, part: &PartRow, hasher_state: &[u8]) -> Result<bool, DbError> {
    let new_size = expected_size + part.size;
    let updated = conn.execute(
        "UPDATE uploads SET size = ?1, hasher_state = ?2, updated_at = ?3 WHERE id = ?4 AND size = ?5",
        params![new_size, hasher_state, now_ms(), id, expected_size],
    )?;
    if updated == 0 {
        return Ok(false);
    }
    conn.execute(
        "INSERT INTO upload_parts (upload_id, seq, object_key, size)
         VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM upload_parts WHERE upload_id = ?1), ?2, ?3)",
        params![id, part.object_key, part.size],
    )?;
    Ok(true)
}

pub fn delete(conn: &Connection, id: &str) -> Result<bool, DbError> {
    Ok(conn.execute("DELETE FROM uploads WHERE id = ?1", [id])? > 0)
}

// ---- The engine-neutral seam (the free functions above go once every caller uses it).

use super::RepoId;
use crate::domain::UploadId;

/// An upload session: how far it got and the hasher state at that point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub id: UploadId,
    pub repository: RepoId,
    pub size: u64,
    pub hasher_state: Vec<u8>,
    pub created_at: i64,
}

/// A part of an upload written to the object store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPart {
    pub object_key: String,
    pub size: u64,
}

pub trait Uploads {
    fn create_upload(&self, id: &UploadId, repo: RepoId, hasher_state: &[u8]) -> Result<(), DbError>;
    fn upload(&self, id: &UploadId) -> Result<Option<Upload>, DbError>;
    /// The upload's parts in the order they were appended.
    fn upload_parts(&self, id: &UploadId) -> Result<Vec<UploadPart>, DbError>;
    /// Records a written part, but only if the upload is still at
    /// `expected_size` (another request may have appended meanwhile); the
    /// part gets the next sequence number. Returns whether it won.
    fn append_upload_part(&self, id: &UploadId, expected_size: u64, part: &UploadPart, hasher_state: &[u8]) -> Result<bool, DbError>;
    /// Deletes the session and its parts' rows.
    fn delete_upload(&self, id: &UploadId) -> Result<bool, DbError>;
}
