//! `release_verdicts`: the signature gate's verdict recorded with a release.
//!
//! The verdict is stored as the JSON text the use-case gives (its shape is
//! `governance::signatures::Verdict`, which this layer does not know).

use super::{DbError, RepoId};
use crate::domain::Stage;

pub trait Signatures {
    /// Records the verdict of the release `sequence` of `stage` (once).
    fn record_verdict(&self, repo: RepoId, stage: &Stage, sequence: i64, verdict: &str) -> Result<(), DbError>;
    /// The verdict recorded with a release, if any.
    fn verdict(&self, repo: RepoId, stage: &Stage, sequence: i64) -> Result<Option<String>, DbError>;
    /// The verdicts of every stage's current release, in every repository.
    fn current_verdicts(&self) -> Result<Vec<String>, DbError>;
}
