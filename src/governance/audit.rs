//! Audit-chain verification: a pure walk over rows handed to it.

use serde::Serialize;

use crate::domain::{StoredAudit, GENESIS_HASH};

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
    rows_checked: u64,
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

    /// The id of the last row that verified (0 before any): the next batch starts after it.
    pub fn last_id(&self) -> i64 {
        self.previous_id
    }

    /// The report after the rows checked so far, with the break if one was found.
    pub fn report(self, first_broken: Option<BrokenRow>) -> VerifyReport {
        VerifyReport { rows_checked: self.rows_checked, valid: first_broken.is_none(), first_broken, head_hash: self.previous_hash }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AuditAction, AuditRecord};

    /// A correctly chained log of `n` rows, built in memory as the database would store it.
    fn log(n: i64) -> Vec<StoredAudit> {
        let mut previous = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|id| {
                let record = AuditRecord {
                    id,
                    created_at: 1_700_000_000_000 + id,
                    actor: "anonymous".into(),
                    source: "127.0.0.1".into(),
                    action: AuditAction::TagCreate.as_str().into(),
                    repository: Some("app".into()),
                    reference: Some("v1".into()),
                    digest: None,
                    details: serde_json::json!({ "i": id }),
                };
                let hash = record.chain_hash(&previous);
                previous = hash.clone();
                StoredAudit { record, hash }
            })
            .collect()
    }

    fn verify(rows: &[StoredAudit]) -> Option<BrokenRow> {
        ChainVerifier::default().check(rows)
    }

    #[test]
    fn untouched_log_verifies() {
        let rows = log(5);
        let mut verifier = ChainVerifier::default();
        assert_eq!(verifier.check(&rows), None);
        let report = verifier.report(None);
        assert!(report.valid);
        assert_eq!(report.rows_checked, 5);
        assert_eq!(report.head_hash, rows[4].hash);
    }

    #[test]
    fn batches_carry_the_chain() {
        let rows = log(5);
        let mut verifier = ChainVerifier::default();
        assert_eq!(verifier.check(&rows[..2]), None);
        assert_eq!(verifier.last_id(), 2);
        assert_eq!(verifier.check(&rows[2..]), None);
        assert_eq!(verifier.last_id(), 5);
    }

    #[test]
    fn edited_row_is_named() {
        let mut rows = log(5);
        rows[2].record.actor = "mallory".into();
        assert_eq!(verify(&rows).map(|b| b.id), Some(3));
    }

    #[test]
    fn deleted_row_is_named() {
        let mut rows = log(5);
        rows.remove(1);
        let broken = verify(&rows).unwrap();
        assert_eq!(broken.id, 3);
        assert!(broken.reason.contains("missing"));
    }

    #[test]
    fn rehashed_row_is_named() {
        let mut rows = log(5);
        // An attacker who edits a row and stores any other hash is caught at that row.
        rows[2].hash = "x".into();
        assert_eq!(verify(&rows).map(|b| b.id), Some(3));
    }

    #[test]
    fn edited_and_rehashed_row_breaks_the_next_one() {
        let mut rows = log(5);
        // Recomputing the edited row's own hash still breaks the link to row 4.
        rows[2].record.actor = "mallory".into();
        rows[2].hash = rows[2].record.chain_hash(&rows[1].hash);
        assert_eq!(verify(&rows).map(|b| b.id), Some(4));
    }
}
