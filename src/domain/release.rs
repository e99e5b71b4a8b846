//! A release: one entry of a stage's append-only history.

/// A stored release of a digest to a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRow {
    pub stage: String,
    pub sequence: i64,
    pub digest: String,
    pub version: Option<String>,
    pub note: Option<String>,
    pub actor: String,
    pub created_at: i64,
    pub reason: String,
    pub rolled_back_from: Option<i64>,
    pub restored_sequence: Option<i64>,
}
