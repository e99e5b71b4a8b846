use rusqlite::{params, OptionalExtension, Row};

use super::SqliteTx;
use crate::db::audit::{AuditFilter, StoredAudit};
use crate::db::{now_ms, Audit, DbError};
use crate::domain::{AuditAction, AuditEntry, AuditRecord};

const COLUMNS: &str = "id, created_at, actor, source, action, repository, reference, digest, details, hash";

pub(super) fn from_row(r: &Row<'_>) -> rusqlite::Result<StoredAudit> {
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
            details: AuditRecord::details_from_stored(details),
        },
        hash: r.get(9)?,
    })
}

impl Audit for SqliteTx<'_> {
    // Read the head then insert: one writer at a time keeps the chain linear.
    fn append_audit(&self, entry: &AuditEntry) -> Result<i64, DbError> {
        let last: Option<(i64, String)> = self
            .conn
            .prepare_cached("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let StoredAudit { record, hash } = AuditRecord::chained(entry, last, now_ms());
        self.conn
            .prepare_cached(
                "INSERT INTO audit_log (id, created_at, actor, source, action, repository, reference, digest, details, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
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
            ])?;
        Ok(record.id)
    }

    fn list_audit(&self, f: &AuditFilter, limit: u32) -> Result<Vec<StoredAudit>, DbError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_log
             WHERE (?1 IS NULL OR repository = ?1) AND (?2 IS NULL OR action = ?2) AND (?3 IS NULL OR actor = ?3)
               AND (?4 IS NULL OR created_at >= ?4) AND (?5 IS NULL OR created_at < ?5) AND (?6 IS NULL OR id < ?6)
             ORDER BY id DESC LIMIT ?7"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map(params![f.repository, f.action.map(AuditAction::as_str), f.actor, f.since, f.until, f.before_id, limit], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn audit_batch_after(&self, after: i64, limit: u32) -> Result<Vec<StoredAudit>, DbError> {
        let mut stmt = self.conn.prepare_cached(&format!("SELECT {COLUMNS} FROM audit_log WHERE id > ?1 ORDER BY id LIMIT ?2"))?;
        let rows = stmt.query_map(params![after, limit], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn latest_audit_details(&self, action: AuditAction) -> Result<Option<serde_json::Value>, DbError> {
        let text: Option<String> = self
            .conn
            .prepare_cached("SELECT details FROM audit_log WHERE action = ?1 ORDER BY id DESC LIMIT 1")?
            .query_row([action.as_str()], |r| r.get(0))
            .optional()?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }
}
