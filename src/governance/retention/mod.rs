//! The retention planner: a pure function deciding, for one repository, which
//! manifests and tags cleanup keeps or deletes, with a reason for each.
//!
//! The caller loads the facts and applies the plan; nothing here does I/O or
//! reads the clock, so every rule is unit-tested below.

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::time::Duration;

mod reasons;

pub use reasons::{Decision, Deleted, Kept, PolicyMiss, Reason};

use crate::config::RetentionPolicyConfig;
use crate::governance::protection::{self, Protected, References, Release};
use crate::governance::Policy;

fn governs_tags(p: &RetentionPolicyConfig) -> bool {
    p.keep_last.is_some() || !p.keep_tags.is_empty() || p.keep_within.is_some()
}

/// The configured retention policies (their globs and patterns were
/// compiled when the configuration was read).
#[derive(Debug, Clone)]
pub struct RetentionRules {
    policies: Vec<RetentionPolicyConfig>,
}

impl RetentionRules {
    pub fn new(policies: &[RetentionPolicyConfig]) -> Self {
        Self { policies: policies.to_vec() }
    }

    /// Whether any policy matches this repository name.
    pub fn applies_to(&self, repository: &str) -> bool {
        self.policies.iter().any(|p| p.repositories.is_match(repository))
    }
}

#[derive(Debug, Clone)]
pub struct ManifestFact {
    pub digest: String,
    pub pushed_at_ms: i64,
    pub subject: Option<String>,
    /// digests of manifests this one refers to (index children)
    pub children: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct TagFact {
    pub name: String,
    pub digest: String,
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct ReleaseFact {
    pub stage: String,
    pub sequence: i64,
    pub digest: String,
}

#[derive(Debug, Clone, Default)]
pub struct RepoFacts {
    pub repository: String,
    pub manifests: Vec<ManifestFact>,
    pub tags: Vec<TagFact>,
    pub releases: Vec<ReleaseFact>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ManifestDecision {
    pub digest: String,
    #[serde(flatten)]
    pub decision: Decision,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TagDecision {
    pub tag: String,
    pub digest: String,
    #[serde(flatten)]
    pub decision: Decision,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RepoPlan {
    pub repository: String,
    pub manifests: Vec<ManifestDecision>,
    pub tags: Vec<TagDecision>,
}

impl RepoPlan {
    pub fn deleted_manifests(&self) -> impl Iterator<Item = &ManifestDecision> {
        self.manifests.iter().filter(|m| !m.decision.keep)
    }
    pub fn deleted_tags(&self) -> impl Iterator<Item = &TagDecision> {
        self.tags.iter().filter(|t| !t.decision.keep)
    }
}

/// Time elapsed from `then` to `now`; negative (clock skew) counts as 0.
fn age(now_ms: i64, then_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(now_ms.saturating_sub(then_ms)).unwrap_or(0))
}

/// One decision per manifest and per tag of `facts`, in a stable order
/// (manifests by pushed_at then digest; tags by name).
pub fn plan(facts: &RepoFacts, rules: &RetentionRules, governance: &Policy, now_ms: i64) -> RepoPlan {
    let mut manifests: Vec<&ManifestFact> = facts.manifests.iter().collect();
    manifests.sort_by(|a, b| (a.pushed_at_ms, &a.digest).cmp(&(b.pushed_at_ms, &b.digest)));
    let mut tags: Vec<&TagFact> = facts.tags.iter().collect();
    tags.sort_by(|a, b| (&a.name, &a.digest).cmp(&(&b.name, &b.digest)));

    let policies: Vec<&RetentionPolicyConfig> = rules.policies.iter().filter(|p| p.repositories.is_match(&facts.repository)).collect();
    let (tag_decisions, manifest_decisions) = if policies.is_empty() {
        let keep = Decision::kept(Kept::NoPolicyMatches { repository: facts.repository.clone() });
        (vec![keep.clone(); tags.len()], vec![keep; manifests.len()])
    } else {
        let protected = protected_digests(facts, governance);
        let tag_decisions = decide_tags(&tags, &policies, governance, &protected, now_ms);
        let manifest_decisions = decide_manifests(&manifests, &tags, &tag_decisions, &policies, &protected, now_ms);
        (tag_decisions, manifest_decisions)
    };
    RepoPlan {
        repository: facts.repository.clone(),
        manifests: manifests
            .iter()
            .zip(manifest_decisions)
            .map(|(m, decision)| ManifestDecision { digest: m.digest.clone(), decision })
            .collect(),
        tags: tags
            .iter()
            .zip(tag_decisions)
            .map(|(t, decision)| TagDecision { tag: t.name.clone(), digest: t.digest.clone(), decision })
            .collect(),
    }
}

/// Digests no policy may delete, as the one protection rule decides
/// (`governance::protection`): releases in their rollback window, immutable
/// tags' targets, their children and referrers. Value: the reason.
fn protected_digests(facts: &RepoFacts, governance: &Policy) -> HashMap<String, Protected> {
    let releases: Vec<Release<'_>> =
        facts.releases.iter().map(|r| Release { stage: &r.stage, sequence: r.sequence, digest: &r.digest }).collect();
    let roots = protection::roots(&releases, facts.tags.iter().map(|t| (t.name.as_str(), t.digest.as_str())), governance);
    let children: HashMap<&str, &[String]> = facts.manifests.iter().map(|m| (m.digest.as_str(), m.children.as_slice())).collect();
    let mut referrers: HashMap<String, Vec<String>> = HashMap::new();
    for m in &facts.manifests {
        if let Some(subject) = &m.subject {
            referrers.entry(subject.clone()).or_default().push(m.digest.clone());
        }
    }
    // cosign's `sha256-<hex>.sig` tags are signatures of that digest.
    for t in &facts.tags {
        if let Some(subject) = protection::cosign_tag_subject(&t.name) {
            referrers.entry(subject).or_default().push(t.digest.clone());
        }
    }
    let lookup = |digest: &str| -> Result<References, Infallible> {
        Ok(References {
            children: children.get(digest).map(|c| c.to_vec()).unwrap_or_default(),
            blobs: Vec::new(),
            referrers: referrers.get(digest).cloned().unwrap_or_default(),
        })
    };
    let set = match protection::closure(roots, lookup) {
        Ok(set) => set,
        Err(never) => match never {},
    };
    facts.manifests.iter().filter_map(|m| set.manifest_for_cleanup(&m.digest).map(|p| (m.digest.clone(), p.clone()))).collect()
}

fn decide_tags(
    tags: &[&TagFact],
    policies: &[&RetentionPolicyConfig],
    governance: &Policy,
    protected: &HashMap<String, Protected>,
    now_ms: i64,
) -> Vec<Decision> {
    let reserved = |t: &TagFact| governance.is_stage(&t.name) || governance.is_immutable(&t.name);
    // Tags eligible for keep_last ranking, newest first; stage and immutable
    // tags are kept anyway, so they must not use up the N slots.
    let mut ranked: Vec<usize> = (0..tags.len()).filter(|&i| !reserved(tags[i])).collect();
    ranked.sort_by(|&a, &b| tags[b].updated_at_ms.cmp(&tags[a].updated_at_ms).then_with(|| tags[a].name.cmp(&tags[b].name)));
    let mut rank_of: Vec<Option<usize>> = vec![None; tags.len()];
    for (rank, &i) in ranked.iter().enumerate() {
        rank_of[i] = Some(rank);
    }
    let governing: Vec<&RetentionPolicyConfig> = policies.iter().copied().filter(|p| governs_tags(p)).collect();

    let decide = |t: &TagFact, rank: Option<usize>| -> Decision {
        if governance.is_stage(&t.name) {
            return Decision::kept(Kept::StageTag);
        }
        if governance.is_immutable(&t.name) {
            return Decision::kept(Kept::ImmutableTag);
        }
        if governing.is_empty() {
            return Decision::kept(Kept::NoPolicyExpiresTags);
        }
        let age = age(now_ms, t.updated_at_ms);
        for p in &governing {
            if let (Some(n), Some(rank)) = (p.keep_last, rank) {
                if rank < usize::try_from(n).unwrap_or(usize::MAX) {
                    return Decision::kept(Kept::NewestTags { n, policy: p.name.clone() });
                }
            }
            if let Some(pattern) = p.keep_tags.iter().find(|re| re.is_match(&t.name)) {
                return Decision::kept(Kept::MatchesPattern { pattern: pattern.clone(), policy: p.name.clone() });
            }
            if let Some(within) = p.keep_within.filter(|d| age <= *d) {
                return Decision::kept(Kept::PushedWithin { age, within, policy: p.name.clone() });
            }
        }
        if let Some(protected) = protected.get(&t.digest) {
            return Decision::kept(Kept::PointsAtProtected(protected.clone()));
        }
        let misses = governing
            .iter()
            .map(|p| PolicyMiss {
                policy: p.name.clone(),
                keep_last: p.keep_last,
                keep_tags: !p.keep_tags.is_empty(),
                keep_within: p.keep_within.map(|within| (age, within)),
            })
            .collect();
        Decision::deleted(Deleted::TagExpired { misses })
    };

    tags.iter().zip(rank_of).map(|(t, rank)| decide(t, rank)).collect()
}

/// How one manifest relates to another in the reference graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Edge {
    /// `from` is an index listing `to` among its children.
    Child,
    /// `to` is a referrer whose subject is `from`.
    Referrer,
}

/// A manifest's verdicts from its own facts, before the graph is considered.
struct Own {
    /// Protected or carrying a kept tag: never deleted.
    hard: Option<Kept>,
    /// keep_within keeps it, or its tags all expired, or untagged too long.
    rule: Option<Decision>,
    /// Reason when nothing else decides.
    fallback: Kept,
}

fn decide_manifests(
    manifests: &[&ManifestFact],
    tags: &[&TagFact],
    tag_decisions: &[Decision],
    policies: &[&RetentionPolicyConfig],
    protected: &HashMap<String, Protected>,
    now_ms: i64,
) -> Vec<Decision> {
    // Duplicate digests in the facts share one node (the first, in sorted order).
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut nodes: Vec<&ManifestFact> = Vec::new();
    for m in manifests {
        index.entry(m.digest.as_str()).or_insert_with(|| {
            nodes.push(m);
            nodes.len() - 1
        });
    }
    let n = nodes.len();

    // Per digest: its tags' names and whether each is kept.
    let mut tags_of: HashMap<&str, Vec<(&str, bool)>> = HashMap::new();
    for (t, d) in tags.iter().zip(tag_decisions) {
        tags_of.entry(t.digest.as_str()).or_default().push((t.name.as_str(), d.keep));
    }
    let untagged_limit = policies.iter().filter_map(|p| p.delete_untagged_after).min();
    let own: Vec<Own> = nodes
        .iter()
        .map(|m| {
            let age = age(now_ms, m.pushed_at_ms);
            let tags = tags_of.get(m.digest.as_str()).map(Vec::as_slice).unwrap_or(&[]);
            let kept_tags: Vec<&str> = tags.iter().filter(|t| t.1).map(|t| t.0).collect();
            let hard = protected
                .get(&m.digest)
                .cloned()
                .map(Kept::Protected)
                .or_else(|| (!kept_tags.is_empty()).then(|| Kept::Tagged { tags: kept_tags.iter().map(|t| t.to_string()).collect() }));
            let young = policies.iter().find_map(|p| {
                let within = p.keep_within.filter(|d| age <= *d)?;
                Some(Decision::kept(Kept::PushedWithin { age, within, policy: p.name.clone() }))
            });
            let mut fallback = Kept::NoRuleDeletes;
            let expired = if !tags.is_empty() {
                Some(Decision::deleted(Deleted::AllTagsExpired { tags: tags.iter().map(|t| t.0.to_owned()).collect() }))
            } else if let Some(limit) = untagged_limit {
                fallback = Kept::UntaggedWithin { age, limit };
                (age > limit).then(|| Decision::deleted(Deleted::UntaggedFor { age, limit }))
            } else {
                None
            };
            Own { hard, rule: young.or(expired), fallback }
        })
        .collect();

    // Edges between manifests present in the facts; self-references are ignored.
    let mut edges: BTreeSet<(usize, usize, Edge)> = BTreeSet::new();
    for (i, m) in nodes.iter().enumerate() {
        edges.extend(m.children.iter().filter_map(|c| index.get(c.as_str())).map(|&c| (i, c, Edge::Child)));
        edges.extend(m.subject.as_deref().and_then(|s| index.get(s)).map(|&s| (s, i, Edge::Referrer)));
    }
    let mut out_edges: Vec<Vec<(usize, Edge)>> = vec![Vec::new(); n];
    let mut in_edges: Vec<Vec<(usize, Edge)>> = vec![Vec::new(); n];
    for &(from, to, kind) in edges.iter().filter(|(from, to, _)| from != to) {
        out_edges[from].push((to, kind));
        in_edges[to].push((from, kind));
    }
    let kept_via = |from: usize, kind: Edge| match kind {
        Edge::Child => Decision::kept(Kept::ChildOfKeptIndex { index: nodes[from].digest.clone() }),
        Edge::Referrer => Decision::kept(Kept::ReferrerOfKept { subject: nodes[from].digest.clone() }),
    };

    // A manifest is decided after its indexes and its subject, in this order
    // of precedence: protected or tagged; needed by a kept manifest; gone with
    // its subject; its own rules; gone with its index; the fallback.
    let evaluate = |i: usize, status: &[Option<Decision>]| -> Decision {
        let parent =
            |kind: Edge, keep: bool| in_edges[i].iter().find(|(p, k)| *k == kind && status[*p].as_ref().is_some_and(|d| d.keep == keep));
        if let Some(reason) = &own[i].hard {
            Decision::kept(reason.clone())
        } else if let Some(&(p, k)) = parent(Edge::Child, true).or_else(|| parent(Edge::Referrer, true)) {
            kept_via(p, k)
        } else if let Some(&(p, _)) = parent(Edge::Referrer, false) {
            Decision::deleted(Deleted::SubjectDeleted { subject: nodes[p].digest.clone() })
        } else if let Some(decision) = &own[i].rule {
            decision.clone()
        } else if let Some(&(p, _)) = parent(Edge::Child, false) {
            Decision::deleted(Deleted::ChildOfDeletedIndex { index: nodes[p].digest.clone() })
        } else {
            Decision::kept(own[i].fallback.clone())
        }
    };
    // Topological order (Kahn); a cycle, only possible in forged data, is
    // broken at its oldest undecided manifest.
    let mut status: Vec<Option<Decision>> = vec![None; n];
    let mut pending: Vec<usize> = in_edges.iter().map(Vec::len).collect();
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| pending[i] == 0).collect();
    while let Some(i) = ready.pop_first().or_else(|| status.iter().position(Option::is_none)) {
        if status[i].is_some() {
            continue;
        }
        status[i] = Some(evaluate(i, &status));
        for &(v, _) in &out_edges[i] {
            pending[v] = pending[v].saturating_sub(1);
            if pending[v] == 0 && status[v].is_none() {
                ready.insert(v);
            }
        }
    }

    // Repair pass for cycles, so that whatever happens a kept manifest's
    // children and referrers are never deleted. Only flips delete → keep.
    let mut changed = true;
    while changed {
        changed = false;
        for i in 0..n {
            let keeps = |j: usize| status[j].as_ref().is_some_and(|d| d.keep);
            if !keeps(i) {
                if let Some(&(p, k)) = in_edges[i].iter().find(|(p, _)| keeps(*p)) {
                    status[i] = Some(kept_via(p, k));
                    changed = true;
                }
            }
        }
    }

    manifests
        .iter()
        .map(|m| {
            index
                .get(m.digest.as_str())
                .and_then(|&i| status[i].clone())
                // Unreachable: every node is decided above; keeping is the safe default.
                .unwrap_or_else(|| Decision::kept(Kept::NoRuleDeletes))
        })
        .collect()
}

#[cfg(test)]
mod tests;
