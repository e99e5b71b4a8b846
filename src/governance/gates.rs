//! Promotion gates: pure checks of the facts about a digest against a
//! stage's configured gates. Every failed gate is named, so a refused
//! promotion says everything that is missing at once.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::config::GateConfig;

/// What the gates look at in one image (one per platform of an index).
#[derive(Debug, Clone, Default)]
pub struct ImageFacts {
    /// `os/arch` of an index child, or `image` for a single manifest.
    pub platform: String,
    pub labels: BTreeMap<String, String>,
    /// The config's `User`, if set.
    pub user: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PromotionFacts {
    /// When the digest first entered the previous stage (unix ms), if it did.
    pub entered_previous_at: Option<i64>,
    pub now: i64,
    pub images: Vec<ImageFacts>,
    pub pushed_by: Option<String>,
    pub promoter: String,
}

/// A user runs as root when unset, `root`, or uid 0 (with or without a group).
fn runs_as_root(user: Option<&str>) -> bool {
    let user = user.unwrap_or("").trim();
    let name = user.split(':').next().unwrap_or("");
    name.is_empty() || name == "root" || name == "0"
}

/// Why a promotion is refused: one failed gate (or precondition), named by
/// [`GateFailure::gate`] and explained by `Display` (`gate: sentence`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateFailure {
    /// The manifest's content is not all in the registry (`missing` names what).
    Incomplete {
        missing: String,
    },
    /// `subject` was never released to `previous`, the stage before `stage`.
    Order {
        subject: String,
        previous: String,
        stage: String,
    },
    MinSoak {
        soaked: Duration,
        needs: Duration,
    },
    /// Reported by `failures` for completeness; the order rule says it better.
    NeverSoaked,
    MissingLabel {
        platform: String,
        label: String,
    },
    RunsAsRoot {
        platform: String,
    },
    SameActor {
        promoter: String,
    },
    /// No signature of `subject` verified with a trusted key; `rejected`
    /// quotes why the first few examined ones did not count.
    NoTrustedSignature {
        subject: String,
        examined: usize,
        rejected: Vec<String>,
    },
    /// Fewer distinct trusted keys than `min_signers` signed `subject`.
    TooFewSigners {
        subject: String,
        signers: Vec<String>,
        needs: u32,
    },
    /// A signature by `key` whose payload names another digest (a
    /// signature copied from another image).
    SignatureForOtherDigest {
        key: String,
        claimed: String,
    },
    /// A signature by `key` whose payload names another repository.
    SignatureForOtherRepository {
        key: String,
        claimed: String,
    },
    /// A signature by `key` lacks a required annotation (`name=value`).
    SignatureAnnotation {
        key: String,
        annotation: String,
    },
    /// A signature verifies with `key` but does not count (revoked, outside
    /// its validity window, unreadable payload).
    SignatureNotCounted {
        key: String,
        reason: String,
    },
    /// No SPDX or CycloneDX SBOM referrer is attached to `subject`.
    SbomMissing {
        subject: String,
    },
}

impl GateFailure {
    /// The gate's name, as configured (`min_soak`, `non_root`, ...).
    pub fn gate(&self) -> &'static str {
        match self {
            GateFailure::Incomplete { .. } => "complete",
            GateFailure::Order { .. } => "order",
            GateFailure::MinSoak { .. } | GateFailure::NeverSoaked => "min_soak",
            GateFailure::MissingLabel { .. } => "required_labels",
            GateFailure::RunsAsRoot { .. } => "non_root",
            GateFailure::SameActor { .. } => "separation_of_duties",
            GateFailure::NoTrustedSignature { .. }
            | GateFailure::TooFewSigners { .. }
            | GateFailure::SignatureForOtherDigest { .. }
            | GateFailure::SignatureForOtherRepository { .. }
            | GateFailure::SignatureAnnotation { .. }
            | GateFailure::SignatureNotCounted { .. } => "require_signature",
            GateFailure::SbomMissing { .. } => "require_sbom",
        }
    }
}

impl fmt::Display for GateFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.gate())?;
        match self {
            GateFailure::Incomplete { missing } => write!(f, "{missing}; push the image again"),
            GateFailure::Order { subject, previous, stage } => {
                write!(f, "{subject} was never released to {previous}, the stage before {stage}; promote it to {previous} first")
            }
            GateFailure::MinSoak { soaked, needs } => write!(
                f,
                "soaked {} in the previous stage, needs {}",
                humantime::format_duration(Duration::from_secs(soaked.as_secs())),
                humantime::format_duration(*needs)
            ),
            GateFailure::NeverSoaked => f.write_str("the digest was never released to the previous stage"),
            GateFailure::MissingLabel { platform, label } => write!(f, "{platform} lacks label {label}"),
            GateFailure::RunsAsRoot { platform } => write!(f, "{platform} runs as root"),
            GateFailure::SameActor { promoter } => write!(f, "{promoter} pushed this image and cannot promote it"),
            GateFailure::NoTrustedSignature { subject, examined, rejected } => {
                write!(f, "no signature by a trusted key for {subject} ({examined} examined")?;
                if !rejected.is_empty() {
                    write!(f, ": {}", rejected.join("; "))?;
                }
                f.write_str(")")
            }
            GateFailure::TooFewSigners { subject, signers, needs } => {
                write!(f, "{subject} is signed by {} trusted key(s) ({}), needs {needs}", signers.len(), signers.join(", "))
            }
            GateFailure::SignatureForOtherDigest { key, claimed } => write!(f, "signature by key {key} is for another digest ({claimed})"),
            GateFailure::SignatureForOtherRepository { key, claimed } => {
                write!(f, "signature by key {key}: payload claims repository {claimed:?}")
            }
            GateFailure::SignatureAnnotation { key, annotation } => write!(f, "signature by key {key} lacks annotation {annotation}"),
            GateFailure::SignatureNotCounted { key, reason } => write!(f, "signature by key {key} does not count: {reason}"),
            GateFailure::SbomMissing { subject } => write!(f, "no SPDX or CycloneDX SBOM is attached to {subject}"),
        }
    }
}

/// The API's `failed_gates` and the audit details list the sentences.
impl serde::Serialize for GateFailure {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The failed gates; empty means "passes".
pub fn failures(gate: &GateConfig, facts: &PromotionFacts) -> Vec<GateFailure> {
    let mut failed = Vec::new();
    if let Some(needs) = gate.min_soak {
        match facts.entered_previous_at {
            Some(at) => {
                let soaked = Duration::from_millis(facts.now.saturating_sub(at).max(0) as u64);
                if soaked < needs {
                    failed.push(GateFailure::MinSoak { soaked, needs });
                }
            }
            None => failed.push(GateFailure::NeverSoaked),
        }
    }
    for image in &facts.images {
        for label in &gate.required_labels {
            if image.labels.get(label).is_none_or(|v| v.is_empty()) {
                failed.push(GateFailure::MissingLabel { platform: image.platform.clone(), label: label.clone() });
            }
        }
        if gate.non_root && runs_as_root(image.user.as_deref()) {
            failed.push(GateFailure::RunsAsRoot { platform: image.platform.clone() });
        }
    }
    if gate.separation_of_duties && facts.pushed_by.as_deref() == Some(facts.promoter.as_str()) {
        failed.push(GateFailure::SameActor { promoter: facts.promoter.clone() });
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> PromotionFacts {
        PromotionFacts {
            entered_previous_at: Some(0),
            now: 3_600_000,
            images: vec![ImageFacts { platform: "linux/amd64".into(), labels: BTreeMap::new(), user: None }],
            pushed_by: Some("alice".into()),
            promoter: "alice".into(),
        }
    }

    #[test]
    fn no_gates_pass() {
        assert!(failures(&GateConfig::default(), &facts()).is_empty());
    }

    #[test]
    fn every_failed_gate_is_named() {
        let gate = GateConfig {
            min_soak: Some(Duration::from_secs(7200)),
            required_labels: vec!["org.opencontainers.image.revision".into()],
            non_root: true,
            separation_of_duties: true,
            ..Default::default()
        };
        let f = failures(&gate, &facts());
        assert_eq!(f.len(), 4, "{f:?}");
        assert_eq!(f[0].to_string(), "min_soak: soaked 1h in the previous stage, needs 2h");
        assert_eq!(f[1].to_string(), "required_labels: linux/amd64 lacks label org.opencontainers.image.revision");
        assert_eq!(f[2], GateFailure::RunsAsRoot { platform: "linux/amd64".into() });
        assert_eq!(f[3].to_string(), "separation_of_duties: alice pushed this image and cannot promote it");
        assert_eq!(
            f.iter().map(GateFailure::gate).collect::<Vec<_>>(),
            ["min_soak", "required_labels", "non_root", "separation_of_duties"]
        );
        assert_eq!(serde_json::to_value(&f[2]).expect("serializes"), "non_root: linux/amd64 runs as root");
    }

    #[test]
    fn gates_pass_when_satisfied() {
        let gate = GateConfig {
            min_soak: Some(Duration::from_secs(1800)),
            required_labels: vec!["rev".into()],
            non_root: true,
            separation_of_duties: true,
            ..Default::default()
        };
        let mut f = facts();
        f.images[0].labels.insert("rev".into(), "abc".into());
        f.images[0].user = Some("1000:1000".into());
        f.promoter = "bob".into();
        assert!(failures(&gate, &f).is_empty());
    }

    #[test]
    fn root_users() {
        for root in [None, Some(""), Some("root"), Some("0"), Some("0:0"), Some("root:wheel")] {
            assert!(runs_as_root(root), "{root:?}");
        }
        for user in [Some("app"), Some("1000"), Some("nobody:nogroup")] {
            assert!(!runs_as_root(user), "{user:?}");
        }
    }

    #[test]
    fn each_platform_is_checked() {
        let gate = GateConfig { non_root: true, ..Default::default() };
        let mut f = facts();
        f.images[0].user = Some("app".into());
        f.images.push(ImageFacts { platform: "linux/arm64".into(), ..Default::default() });
        assert_eq!(failures(&gate, &f), vec![GateFailure::RunsAsRoot { platform: "linux/arm64".into() }]);
    }
}
