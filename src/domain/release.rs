//! A release: one entry of a stage's append-only history.

use std::fmt;

use super::{Digest, Stage};

/// Why a release was appended: a promotion of a digest into the stage, or a
/// rollback that made an earlier release's digest current again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReleaseReason {
    Promote,
    Rollback,
}

impl ReleaseReason {
    /// The stored and shown word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Promote => "promote",
            Self::Rollback => "rollback",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Promote, Self::Rollback].into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for ReleaseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored release of a digest to a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRow {
    pub stage: Stage,
    pub sequence: i64,
    pub digest: Digest,
    pub version: Option<String>,
    pub note: Option<String>,
    pub actor: String,
    pub created_at: i64,
    pub reason: ReleaseReason,
    pub rolled_back_from: Option<i64>,
    pub restored_sequence: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::ReleaseReason;

    #[test]
    fn reasons_round_trip_through_their_words() {
        for r in [ReleaseReason::Promote, ReleaseReason::Rollback] {
            assert_eq!(ReleaseReason::parse(r.as_str()), Some(r));
        }
        assert_eq!(ReleaseReason::parse("Promote"), None);
    }
}
