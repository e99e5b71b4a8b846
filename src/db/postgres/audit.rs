use postgres::Row;

use super::PgTx;
use crate::db::audit::{AuditFilter, StoredAudit};
use crate::db::{now_ms, Audit, DbError};
use crate::domain::{AuditAction, AuditEntry, AuditRecord};

const COLUMNS: &str = "id, created_at, actor, source, action, repository, reference, digest, details, hash";

pub(super) fn from_row(r: &Row) -> Result<StoredAudit, DbError> {
    let details: String = r.try_get(8)?;
    Ok(StoredAudit {
        record: AuditRecord {
            id: r.try_get(0)?,
            created_at: r.try_get(1)?,
            actor: r.try_get(2)?,
            source: r.try_get(3)?,
            action: r.try_get(4)?,
            repository: r.try_get(5)?,
            reference: r.try_get(6)?,
            digest: r.try_get(7)?,
            details: AuditRecord::details_from_stored(details),
        },
        hash: r.try_get(9)?,
    })
}

impl Audit for PgTx<'_> {
    // Read the head then insert: the writer lock keeps the chain linear.
    fn append_audit(&self, entry: &AuditEntry) -> Result<i64, DbError> {
        let last = match self.query_opt("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1", &[])? {
            Some(r) => Some((r.try_get::<_, i64>(0)?, r.try_get::<_, String>(1)?)),
            None => None,
        };
        let StoredAudit { record, hash } = AuditRecord::chained(entry, last, now_ms());
        self.execute(
            "INSERT INTO audit_log (id, created_at, actor, source, action, repository, reference, digest, details, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &record.id,
                &record.created_at,
                &record.actor,
                &record.source,
                &record.action,
                &record.repository,
                &record.reference,
                &record.digest,
                &record.details.to_string(),
                &hash,
            ],
        )?;
        Ok(record.id)
    }

    fn list_audit(&self, f: &AuditFilter, limit: u32) -> Result<Vec<StoredAudit>, DbError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_log
             WHERE ($1::TEXT IS NULL OR repository = $1) AND ($2::TEXT IS NULL OR action = $2) AND ($3::TEXT IS NULL OR actor = $3)
               AND ($4::BIGINT IS NULL OR created_at >= $4) AND ($5::BIGINT IS NULL OR created_at < $5)
               AND ($6::BIGINT IS NULL OR id < $6)
             ORDER BY id DESC LIMIT $7"
        );
        self.query(
            &sql,
            &[
                &f.repository.as_ref().map(|r| r.as_str()),
                &f.action.map(AuditAction::as_str),
                &f.actor,
                &f.since,
                &f.until,
                &f.before_id,
                &i64::from(limit),
            ],
        )?
        .iter()
        .map(from_row)
        .collect()
    }

    fn audit_batch_after(&self, after: i64, limit: u32) -> Result<Vec<StoredAudit>, DbError> {
        self.query(&format!("SELECT {COLUMNS} FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2"), &[&after, &i64::from(limit)])?
            .iter()
            .map(from_row)
            .collect()
    }

    fn latest_audit_details(&self, action: AuditAction) -> Result<Option<serde_json::Value>, DbError> {
        let row = self.query_opt("SELECT details FROM audit_log WHERE action = $1 ORDER BY id DESC LIMIT 1", &[&action.as_str()])?;
        let text: Option<String> = row.map(|r| r.try_get(0)).transpose()?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }
}
