//! `audit_log`: append-only, each row chained to the previous by its hash.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{now_ms, DbError};
use crate::domain::{Actor, AuditAction, AuditRecord, GENESIS_HASH};
pub use crate::domain::{AuditFilter, StoredAudit};

/// What a use-case asks to record; id, time and hash are added here.
pub struct NewAuditEntry<'a> {
    pub actor: &'a Actor,
    pub action: AuditAction,
    pub repository: Option<&'a str>,
    pub reference: Option<&'a str>,
    pub digest: Option<&'a str>,
    pub details: serde_json::Value,
}

/// Appends one row. Runs inside the caller's write transaction, which is
/// what keeps the chain linear: SQLite has a single writer.
pub fn append(conn: &Connection, entry: NewAuditEntry<'_>) -> Result<i64, DbError> {
    let last: Option<(i64, String)> =
        conn.query_row("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
    let (id, previous) = match last {
        Some((id, hash)) => (id + 1, hash),
        None => (1, GENESIS_HASH.to_owned()),
    };
    let record = AuditRecord {
        id,
        created_at: now_ms(),
        actor: entry.actor.name.clone(),
        source: entry.actor.source.clone(),
        action: entry.action.as_str().to_owned(),
        repository: entry.repository.map(str::to_owned),
        reference: entry.reference.map(str::to_owned),
        digest: entry.digest.map(str::to_owned),
        details: entry.details,
    };
    let hash = record.chain_hash(&previous);
    conn.execute(
        "INSERT INTO audit_log (id, created_at, actor, source, action, repository, reference, digest, details, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            record.id,
            record.created_at,
            record.actor,
            record.source,
            record.action,
            record.repository,
            record.reference,
            record.digest,
            record.details.to_string(),
            hash
        ],
    )?;
    Ok(id)
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<StoredAudit> {
    let details: String = r.get(8)?;
    Ok(StoredAudit {
        record: AuditRecord {
            id: r.get(0)?,
            created_at: r.get(1)?,
            actor: r.get(2)?,
            source: r.get(3)?,
            action: r.get(4)?,
            repository: r.get(5)?,
            reference: r.get(6)?,
            digest: r.get(7)?,
            // A row whose details are not JSON was tampered with; hash it as a string so it fails.
            details: serde_json::from_str(&details).unwrap_or(serde_json::Value::String(details)),
        },
        hash: r.get(9)?,
    })
}

const COLUMNS: &str = "id, created_at, actor, source, action, repository, reference, digest, details, hash";

/// Matching rows, newest first.
pub fn list(conn: &Connection, f: &AuditFilter, limit: u32) -> Result<Vec<StoredAudit>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_log
         WHERE (?1 IS NULL OR repository = ?1) AND (?2 IS NULL OR action = ?2) AND (?3 IS NULL OR actor = ?3)
           AND (?4 IS NULL OR created_at >= ?4) AND (?5 IS NULL OR created_at < ?5) AND (?6 IS NULL OR id < ?6)
         ORDER BY id DESC LIMIT ?7"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![f.repository, f.action, f.actor, f.since, f.until, f.before_id, limit], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Rows with id > `after`, oldest first, for verification and export in batches.
pub fn batch_after(conn: &Connection, after: i64, limit: u32) -> Result<Vec<StoredAudit>, DbError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM audit_log WHERE id > ?1 ORDER BY id LIMIT ?2"))?;
    let rows = stmt.query_map(params![after, limit], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The details of the newest row with this action, if any.
pub fn latest_details(conn: &Connection, action: AuditAction) -> Result<Option<serde_json::Value>, DbError> {
    let text: Option<String> = conn
        .query_row("SELECT details FROM audit_log WHERE action = ?1 ORDER BY id DESC LIMIT 1", [action.as_str()], |r| r.get(0))
        .optional()?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}
