//! Audit log queries and chain verification.

use serde::Serialize;

use crate::db::{
    self,
    audit::{AuditFilter, NewAuditEntry, StoredAudit},
};
use crate::domain::{Actor, AuditAction, GENESIS_HASH};
use crate::registry::{Registry, RegistryError};

const VERIFY_BATCH: u32 = 1000;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BrokenRow {
    pub id: i64,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub rows_checked: u64,
    pub valid: bool,
    pub first_broken: Option<BrokenRow>,
    /// Hash of the newest row: keep it elsewhere to detect truncation later.
    pub head_hash: String,
}

/// Walks the chain in id order. State is carried between batches so the
/// whole log never has to be in memory.
pub struct ChainVerifier {
    previous_hash: String,
    previous_id: i64,
    pub rows_checked: u64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self { previous_hash: GENESIS_HASH.to_owned(), previous_id: 0, rows_checked: 0 }
    }
}

impl ChainVerifier {
    /// Checks the next rows; returns the first broken one, if any.
    pub fn check(&mut self, rows: &[StoredAudit]) -> Option<BrokenRow> {
        for row in rows {
            let id = row.record.id;
            if id != self.previous_id + 1 {
                return Some(BrokenRow { id, reason: format!("rows {} to {} are missing", self.previous_id + 1, id - 1) });
            }
            let expected = row.record.chain_hash(&self.previous_hash);
            if expected != row.hash {
                return Some(BrokenRow { id, reason: "hash does not match the row's content and the previous hash".into() });
            }
            self.previous_hash = row.hash.clone();
            self.previous_id = id;
            self.rows_checked += 1;
        }
        None
    }
}

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
                let previous = db::audit::latest_details(tx, AuditAction::PolicyChange)?;
                if previous.as_ref().map(|p| &p["policy"]) == Some(&policy) {
                    return Ok(PolicyRecord::Unchanged);
                }
                let outcome = if previous.is_some() { PolicyRecord::Changed } else { PolicyRecord::First };
                let details = serde_json::json!({ "policy": policy, "previous": previous.map(|p| p["policy"].clone()) });
                db::audit::append(
                    tx,
                    NewAuditEntry {
                        actor: &Actor::system(),
                        action: AuditAction::PolicyChange,
                        repository: None,
                        reference: None,
                        digest: None,
                        details,
                    },
                )?;
                Ok(outcome)
            })
            .await
    }

    /// Recomputes the whole chain and names the first broken row.
    pub async fn verify_audit(&self) -> Result<VerifyReport, RegistryError> {
        self.db
            .read(|conn| -> Result<VerifyReport, RegistryError> {
                let mut verifier = ChainVerifier::default();
                loop {
                    let batch = db::audit::batch_after(conn, verifier.previous_id, VERIFY_BATCH)?;
                    if batch.is_empty() {
                        break;
                    }
                    if let Some(broken) = verifier.check(&batch) {
                        return Ok(VerifyReport {
                            rows_checked: verifier.rows_checked,
                            valid: false,
                            first_broken: Some(broken),
                            head_hash: verifier.previous_hash,
                        });
                    }
                }
                Ok(VerifyReport { rows_checked: verifier.rows_checked, valid: true, first_broken: None, head_hash: verifier.previous_hash })
            })
            .await
    }

    /// Audit rows matching `filter`, newest first.
    pub async fn audit_log(&self, filter: AuditFilter, n: u32) -> Result<Vec<StoredAudit>, RegistryError> {
        self.db.read(move |conn| Ok(db::audit::list(conn, &filter, n)?)).await
    }

    /// Rows after `after_id`, oldest first (for export in batches).
    pub async fn audit_batch(&self, after_id: i64, n: u32) -> Result<Vec<StoredAudit>, RegistryError> {
        self.db.read(move |conn| Ok(db::audit::batch_after(conn, after_id, n)?)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::audit::{append, NewAuditEntry};
    use crate::domain::{Actor, AuditAction};

    fn log(n: usize) -> rusqlite::Connection {
        let conn = crate::db::test_connection();
        let actor = Actor::anonymous("127.0.0.1");
        for i in 0..n {
            append(
                &conn,
                NewAuditEntry {
                    actor: &actor,
                    action: AuditAction::TagCreate,
                    repository: Some("app"),
                    reference: Some("v1"),
                    digest: None,
                    details: serde_json::json!({ "i": i }),
                },
            )
            .unwrap();
        }
        conn
    }

    fn verify(conn: &rusqlite::Connection) -> Option<BrokenRow> {
        let rows = db::audit::batch_after(conn, 0, 1000).unwrap();
        ChainVerifier::default().check(&rows)
    }

    #[test]
    fn untouched_log_verifies() {
        assert_eq!(verify(&log(5)), None);
    }

    #[test]
    fn edited_row_is_named() {
        let conn = log(5);
        conn.execute("UPDATE audit_log SET actor = 'mallory' WHERE id = 3", []).unwrap();
        assert_eq!(verify(&conn).map(|b| b.id), Some(3));
    }

    #[test]
    fn deleted_row_is_named() {
        let conn = log(5);
        conn.execute("DELETE FROM audit_log WHERE id = 2", []).unwrap();
        let broken = verify(&conn).unwrap();
        assert_eq!(broken.id, 3);
        assert!(broken.reason.contains("missing"));
    }

    #[test]
    fn rehashed_row_breaks_the_next_one() {
        let conn = log(5);
        // An attacker who edits a row and recomputes its hash still breaks row 4.
        conn.execute("UPDATE audit_log SET hash = 'x' WHERE id = 3", []).unwrap();
        assert_eq!(verify(&conn).map(|b| b.id), Some(3));
    }
}
