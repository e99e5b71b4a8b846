//! `audit_log`: append-only, each row chained to the previous by its hash.

use super::DbError;
use crate::domain::{AuditAction, AuditEntry};
pub use crate::domain::{AuditFilter, StoredAudit};

pub trait Audit {
    /// Appends one row chained to the newest; returns its id. Appends from
    /// concurrent transactions form one linear chain.
    fn append_audit(&self, entry: &AuditEntry) -> Result<i64, DbError>;
    /// Matching rows, newest first.
    fn list_audit(&self, filter: &AuditFilter, limit: u32) -> Result<Vec<StoredAudit>, DbError>;
    /// Rows with id > `after`, oldest first.
    fn audit_batch_after(&self, after: i64, limit: u32) -> Result<Vec<StoredAudit>, DbError>;
    /// The details of the newest row with this action, if any.
    fn latest_audit_details(&self, action: AuditAction) -> Result<Option<serde_json::Value>, DbError>;
}
