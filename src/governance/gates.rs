//! Promotion gates: pure checks of the facts about a digest against a
//! stage's configured gates. Every failed gate is named, so a refused
//! promotion says everything that is missing at once.

use std::collections::BTreeMap;
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

/// The failed gates, each as a readable sentence; empty means "passes".
pub fn failures(gate: &GateConfig, facts: &PromotionFacts) -> Vec<String> {
    let mut failed = Vec::new();
    if let Some(min) = gate.min_soak {
        match facts.entered_previous_at {
            Some(at) => {
                let soaked = Duration::from_millis(facts.now.saturating_sub(at).max(0) as u64);
                if soaked < min {
                    failed.push(format!(
                        "min_soak: soaked {} in the previous stage, needs {}",
                        humantime::format_duration(Duration::from_secs(soaked.as_secs())),
                        humantime::format_duration(min)
                    ));
                }
            }
            None => failed.push("min_soak: the digest was never released to the previous stage".into()),
        }
    }
    for image in &facts.images {
        for label in &gate.required_labels {
            if image.labels.get(label).is_none_or(|v| v.is_empty()) {
                failed.push(format!("required_labels: {} lacks label {label}", image.platform));
            }
        }
        if gate.non_root && runs_as_root(image.user.as_deref()) {
            failed.push(format!("non_root: {} runs as root", image.platform));
        }
    }
    if gate.separation_of_duties && facts.pushed_by.as_deref() == Some(facts.promoter.as_str()) {
        failed.push(format!("separation_of_duties: {} pushed this image and cannot promote it", facts.promoter));
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
        };
        let f = failures(&gate, &facts());
        assert_eq!(f.len(), 4, "{f:?}");
        assert!(f[0].starts_with("min_soak"));
        assert!(f[1].contains("org.opencontainers.image.revision"));
        assert!(f[2].starts_with("non_root: linux/amd64"));
        assert!(f[3].starts_with("separation_of_duties"));
    }

    #[test]
    fn gates_pass_when_satisfied() {
        let gate = GateConfig {
            min_soak: Some(Duration::from_secs(1800)),
            required_labels: vec!["rev".into()],
            non_root: true,
            separation_of_duties: true,
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
        assert_eq!(failures(&gate, &f), vec!["non_root: linux/arm64 runs as root".to_string()]);
    }
}
