//! Why the retention planner keeps or deletes a manifest or tag: typed
//! reasons, rendered once by `Display` (the dry-run output, the API's
//! `reason` field and the audit details all show the same sentence).

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::domain::TagPattern;
use crate::governance::protection::Protected;

/// One verdict. `keep` says whether `reason` is a [`Reason::Kept`]; it is
/// spelled out because the plan's JSON carries it beside the reason.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Decision {
    pub keep: bool,
    pub reason: Reason,
}

impl Decision {
    pub fn kept(reason: Kept) -> Self {
        Self { keep: true, reason: Reason::Kept(reason) }
    }
    pub fn deleted(reason: Deleted) -> Self {
        Self { keep: false, reason: Reason::Deleted(reason) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Kept(Kept),
    Deleted(Deleted),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Kept(k) => write!(f, "kept: {k}"),
            Reason::Deleted(d) => write!(f, "deleted: {d}"),
        }
    }
}

/// Reasons are read by people (and tests): serialized as their sentence.
impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    NoPolicyMatches {
        repository: String,
    },
    StageTag,
    ImmutableTag,
    NoPolicyExpiresTags,
    NewestTags {
        n: u32,
        policy: String,
    },
    MatchesPattern {
        pattern: TagPattern,
        policy: String,
    },
    PushedWithin {
        age: Duration,
        within: Duration,
        policy: String,
    },
    /// A tag whose manifest the protection rule keeps.
    PointsAtProtected(Protected),
    /// A manifest the protection rule keeps.
    Protected(Protected),
    Tagged {
        tags: Vec<String>,
    },
    ChildOfKeptIndex {
        index: String,
    },
    ReferrerOfKept {
        subject: String,
    },
    UntaggedWithin {
        age: Duration,
        limit: Duration,
    },
    NoRuleDeletes,
}

impl fmt::Display for Kept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kept::NoPolicyMatches { repository } => write!(f, "no retention policy matches {repository}"),
            Kept::StageTag => f.write_str("stage tag"),
            Kept::ImmutableTag => f.write_str("immutable tag"),
            Kept::NoPolicyExpiresTags => f.write_str("no policy expires tags"),
            Kept::NewestTags { n, policy } => write!(f, "newest {n} tags (policy {policy:?})"),
            Kept::MatchesPattern { pattern, policy } => write!(f, "matches {pattern} (policy {policy:?})"),
            Kept::PushedWithin { age, within, policy } => {
                write!(f, "pushed {} ago, within {} (policy {policy:?})", short(*age), short(*within))
            }
            Kept::PointsAtProtected(p) => write!(f, "points at a protected manifest: {p}"),
            Kept::Protected(p) => write!(f, "{p}"),
            Kept::Tagged { tags } => write!(f, "tagged {}", tags.join(", ")),
            Kept::ChildOfKeptIndex { index } => write!(f, "child of kept index {index}"),
            Kept::ReferrerOfKept { subject } => write!(f, "referrer of kept {subject}"),
            Kept::UntaggedWithin { age, limit } => write!(f, "untagged for {}, within {}", short(*age), short(*limit)),
            Kept::NoRuleDeletes => f.write_str("no rule deletes it"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    /// A tag no governing policy keeps: what each policy found missing.
    TagExpired {
        misses: Vec<PolicyMiss>,
    },
    AllTagsExpired {
        tags: Vec<String>,
    },
    UntaggedFor {
        age: Duration,
        limit: Duration,
    },
    SubjectDeleted {
        subject: String,
    },
    ChildOfDeletedIndex {
        index: String,
    },
}

impl fmt::Display for Deleted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Deleted::TagExpired { misses } => {
                for (i, miss) in misses.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{miss}")?;
                }
                Ok(())
            }
            Deleted::AllTagsExpired { tags } => write!(f, "all its tags expired ({})", tags.join(", ")),
            Deleted::UntaggedFor { age, limit } => write!(f, "untagged for {} > {}", short(*age), short(*limit)),
            Deleted::SubjectDeleted { subject } => write!(f, "subject {subject} is deleted"),
            Deleted::ChildOfDeletedIndex { index } => write!(f, "child of deleted index {index}"),
        }
    }
}

/// Why one policy that expires tags does not keep a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyMiss {
    pub policy: String,
    /// The policy keeps the newest N tags and this one is not among them.
    pub keep_last: Option<u32>,
    /// The policy keeps tags matching patterns and this one matches none.
    pub keep_tags: bool,
    /// The tag's age and the policy's keep_within it exceeds.
    pub keep_within: Option<(Duration, Duration)>,
}

impl fmt::Display for PolicyMiss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(n) = self.keep_last {
            parts.push(format!("not among the newest {n} tags"));
        }
        if self.keep_tags {
            parts.push("matches no keep pattern".to_owned());
        }
        if let Some((age, within)) = self.keep_within {
            parts.push(format!("pushed {} ago, older than {}", short(age), short(within)));
        }
        write!(f, "{} (policy {:?})", parts.join(", "), self.policy)
    }
}

/// Whole seconds, at most two units ("9days 3h"): reasons are read by people.
fn short(d: Duration) -> String {
    let full = humantime::format_duration(Duration::from_secs(d.as_secs())).to_string();
    full.split(' ').take(2).collect::<Vec<_>>().join(" ")
}
