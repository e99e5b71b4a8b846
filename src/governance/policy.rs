//! The governance rules that registry use-cases must respect: which tags are
//! stage tags, which are immutable, how deep the rollback window is.

use crate::config::{GateConfig, GovernanceConfig};
use crate::domain::TagPattern;

#[derive(Debug, Clone)]
pub struct Policy {
    stages: Vec<String>,
    immutable: Vec<TagPattern>,
    gates: std::collections::BTreeMap<String, GateConfig>,
    pub rollback_depth: u32,
}

impl Policy {
    /// Builds the policy from a validated configuration.
    pub fn new(config: &GovernanceConfig) -> Self {
        Self {
            stages: config.stages.clone(),
            // Compiled when the configuration was read: nothing to drop here.
            immutable: config.immutable_tags.clone(),
            gates: config.gates.clone(),
            rollback_depth: config.rollback_depth,
        }
    }

    pub fn stages(&self) -> &[String] {
        &self.stages
    }

    pub fn is_stage(&self, tag: &str) -> bool {
        self.stages.iter().any(|s| s == tag)
    }

    /// The stage before `stage`, or `None` for the first stage.
    pub fn previous_stage(&self, stage: &str) -> Option<&str> {
        let i = self.stages.iter().position(|s| s == stage)?;
        i.checked_sub(1).map(|p| self.stages[p].as_str())
    }

    pub fn is_immutable(&self, tag: &str) -> bool {
        self.immutable.iter().any(|r| r.is_match(tag))
    }

    pub fn gates(&self, stage: &str) -> Option<&GateConfig> {
        self.gates.get(stage)
    }

    /// Whether a trusted key with this fingerprint is configured as revoked
    /// (in any stage's signature gate).
    pub fn is_revoked(&self, fingerprint: &str) -> bool {
        self.gates
            .values()
            .filter_map(|g| g.require_signature.as_ref())
            .flat_map(|s| &s.keys)
            .any(|k| k.revoked && k.fingerprint == fingerprint)
    }
}
