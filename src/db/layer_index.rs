//! `layer_index`: each layer's file index, stored once per digest by image
//! diff. The encoding of `entries` belongs to the caller; this table only
//! keeps the bytes.

use rusqlite::{params, Connection, OptionalExtension};

use super::{now_ms, DbError};

/// The stored (encoded) entries of a layer, if it was indexed.
pub fn get(conn: &Connection, digest: &str) -> Result<Option<Vec<u8>>, DbError> {
    let mut stmt = conn.prepare_cached("SELECT entries FROM layer_index WHERE digest = ?1")?;
    Ok(stmt.query_row([digest], |r| r.get(0)).optional()?)
}

/// Records a layer's index; a concurrent diff that indexed the same layer
/// first wins (both computed the same thing).
pub fn insert(conn: &Connection, digest: &str, entry_count: u64, total_size: u64, entries: &[u8]) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO layer_index (digest, entry_count, total_size, entries, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (digest) DO NOTHING",
        params![digest, entry_count, total_size, entries, now_ms()],
    )?;
    Ok(())
}

/// How many layers have an index (for tests and operators).
pub fn count(conn: &Connection) -> Result<u64, DbError> {
    Ok(conn.query_row("SELECT count(*) FROM layer_index", [], |r| r.get(0))?)
}

// ---- The engine-neutral seam (the free functions above go once every caller uses it).

use crate::domain::Digest;

/// Each layer's file index, stored once per digest (image diff).
pub trait LayerIndex {
    fn layer_index(&self, digest: &Digest) -> Result<Option<Vec<u8>>, DbError>;
    /// Records a layer's index; the first of concurrent writers wins.
    fn insert_layer_index(&self, digest: &Digest, entry_count: u64, total_size: u64, entries: &[u8]) -> Result<(), DbError>;
    fn layer_index_count(&self) -> Result<u64, DbError>;
}

#[cfg(test)]
mod tests {
    #[test]
    fn stores_once_per_digest() {
        let conn = crate::db::test_connection();
        super::insert(&conn, "sha256:a", 2, 10, b"first").unwrap();
        super::insert(&conn, "sha256:a", 2, 10, b"second").unwrap();
        assert_eq!(super::get(&conn, "sha256:a").unwrap().as_deref(), Some(&b"first"[..]));
        assert_eq!(super::get(&conn, "sha256:b").unwrap(), None);
        assert_eq!(super::count(&conn).unwrap(), 1);
    }
}
