//! Audit-log use-cases: recording the policy at start-up, queries, and
//! chain verification (the rule itself is `governance::audit`).

use crate::domain::{Actor, AuditAction, AuditEntry, AuditFilter, StoredAudit};
use crate::governance::audit::{ChainVerifier, VerifyReport};
use crate::registry::{record, Registry, RegistryError, Tx};

const VERIFY_BATCH: u32 = 1000;

/// What [`Registry::record_policy`] did at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyRecord {
    /// The first start on this database: the policy is recorded as the
    /// baseline later changes are compared with (an audit row with no
    /// `previous`), but nothing "changed".
    First,
    /// The policy differs from the one last recorded; recorded.
    Changed,
    Unchanged,
}

impl Registry {
    /// Records the governance policy in the audit log when it differs from
    /// the one last recorded (or none was), so every change of rules made
    /// through the configuration is on the record.
    pub async fn record_policy(&self, policy: serde_json::Value) -> Result<PolicyRecord, RegistryError> {
        self.db
            .write(move |tx| -> Result<PolicyRecord, RegistryError> {
                let previous = tx.latest_audit_details(AuditAction::PolicyChange)?;
                if previous.as_ref().map(|p| &p["policy"]) == Some(&policy) {
                    return Ok(PolicyRecord::Unchanged);
                }
                let outcome = if previous.is_some() { PolicyRecord::Changed } else { PolicyRecord::First };
                let details = serde_json::json!({ "policy": policy, "previous": previous.map(|p| p["policy"].clone()) });
                record(tx, &AuditEntry::new(&Actor::system(), AuditAction::PolicyChange).details(details))?;
                Ok(outcome)
            })
            .await
    }

    /// Recomputes the whole chain and names the first broken row.
    pub async fn verify_audit(&self) -> Result<VerifyReport, RegistryError> {
        self.db.read(|conn| Ok(verify_chain(conn)?)).await
    }

    /// Audit rows matching `filter`, newest first.
    pub async fn audit_log(&self, filter: AuditFilter, n: u32) -> Result<Vec<StoredAudit>, RegistryError> {
        self.db.read(move |conn| Ok(conn.list_audit(&filter, n)?)).await
    }

    /// Rows after `after_id`, oldest first (for export in batches).
    pub async fn audit_batch(&self, after_id: i64, n: u32) -> Result<Vec<StoredAudit>, RegistryError> {
        self.db.read(move |conn| Ok(conn.audit_batch_after(after_id, n)?)).await
    }
}

/// Walks the whole chain in batches inside one read (also used on a
/// backup's metadata snapshot).
pub(crate) fn verify_chain(conn: &dyn Tx) -> Result<VerifyReport, crate::db::DbError> {
    let mut verifier = ChainVerifier::default();
    loop {
        let batch = conn.audit_batch_after(verifier.last_id(), VERIFY_BATCH)?;
        if batch.is_empty() {
            return Ok(verifier.report(None));
        }
        if let Some(broken) = verifier.check(&batch) {
            return Ok(verifier.report(Some(broken)));
        }
    }
}
