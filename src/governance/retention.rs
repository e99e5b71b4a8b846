//! The retention planner: a pure function deciding, for one repository, which
//! manifests and tags cleanup keeps or deletes, with a reason for each.
//!
//! The caller loads the facts and applies the plan; nothing here does I/O or
//! reads the clock, so every rule is unit-tested below.

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::time::Duration;

use globset::GlobMatcher;
use regex::Regex;

use crate::config::RetentionPolicyConfig;
use crate::governance::protection::{self, References, Release};
use crate::governance::Policy;

/// One retention policy with its glob and patterns compiled.
#[derive(Debug, Clone)]
struct CompiledPolicy {
    name: String,
    glob: GlobMatcher,
    keep_last: Option<u32>,
    keep_tags: Vec<(String, Regex)>,
    keep_within: Option<Duration>,
    delete_untagged_after: Option<Duration>,
}

impl CompiledPolicy {
    fn governs_tags(&self) -> bool {
        self.keep_last.is_some() || !self.keep_tags.is_empty() || self.keep_within.is_some()
    }
}

/// The configured retention policies, compiled.
#[derive(Debug, Clone)]
pub struct RetentionRules {
    policies: Vec<CompiledPolicy>,
}

impl RetentionRules {
    /// Compiles the configured policies (they were validated at start-up; a
    /// bad glob or regex is still reported rather than assumed away).
    pub fn new(policies: &[RetentionPolicyConfig]) -> Result<Self, String> {
        let compiled = policies.iter().map(|p| {
            let error = |what: &str, e: String| format!("retention policy {:?}: {what}: {e}", p.name);
            let keep_tags = p.keep_tags.iter().map(|pattern| match Regex::new(pattern) {
                Ok(re) => Ok((pattern.clone(), re)),
                Err(e) => Err(error(&format!("keep_tags {pattern:?}"), e.to_string())),
            });
            Ok(CompiledPolicy {
                name: p.name.clone(),
                glob: crate::auth::roles::compile_glob(&p.repositories)
                    .map_err(|e| error(&format!("repositories {:?}", p.repositories), e))?,
                keep_last: p.keep_last,
                keep_tags: keep_tags.collect::<Result<_, String>>()?,
                keep_within: p.keep_within,
                delete_untagged_after: p.delete_untagged_after,
            })
        });
        Ok(Self { policies: compiled.collect::<Result<_, String>>()? })
    }

    /// Whether any policy matches this repository name.
    pub fn applies_to(&self, repository: &str) -> bool {
        self.policies.iter().any(|p| p.glob.is_match(repository))
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

#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct Decision {
    pub keep: bool,
    pub reason: String,
}

impl Decision {
    fn keep(reason: impl Into<String>) -> Self {
        Self { keep: true, reason: reason.into() }
    }
    fn delete(reason: impl Into<String>) -> Self {
        Self { keep: false, reason: reason.into() }
    }
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

/// Whole seconds, at most two units ("9days 3h"): reasons are read by people.
fn short(d: Duration) -> String {
    let full = humantime::format_duration(Duration::from_secs(d.as_secs())).to_string();
    full.split(' ').take(2).collect::<Vec<_>>().join(" ")
}

/// One decision per manifest and per tag of `facts`, in a stable order
/// (manifests by pushed_at then digest; tags by name).
pub fn plan(facts: &RepoFacts, rules: &RetentionRules, governance: &Policy, now_ms: i64) -> RepoPlan {
    let mut manifests: Vec<&ManifestFact> = facts.manifests.iter().collect();
    manifests.sort_by(|a, b| (a.pushed_at_ms, &a.digest).cmp(&(b.pushed_at_ms, &b.digest)));
    let mut tags: Vec<&TagFact> = facts.tags.iter().collect();
    tags.sort_by(|a, b| (&a.name, &a.digest).cmp(&(&b.name, &b.digest)));

    let policies: Vec<&CompiledPolicy> = rules.policies.iter().filter(|p| p.glob.is_match(&facts.repository)).collect();
    let (tag_decisions, manifest_decisions) = if policies.is_empty() {
        let keep = Decision::keep(format!("kept: no retention policy matches {}", facts.repository));
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
fn protected_digests(facts: &RepoFacts, governance: &Policy) -> HashMap<String, String> {
    let releases: Vec<Release<'_>> =
        facts.releases.iter().map(|r| Release { stage: &r.stage, sequence: r.sequence, digest: &r.digest }).collect();
    let roots = protection::roots(&releases, facts.tags.iter().map(|t| (t.name.as_str(), t.digest.as_str())), governance);
    let children: HashMap<&str, &[String]> = facts.manifests.iter().map(|m| (m.digest.as_str(), m.children.as_slice())).collect();
    let mut referrers: HashMap<&str, Vec<String>> = HashMap::new();
    for m in &facts.manifests {
        if let Some(subject) = &m.subject {
            referrers.entry(subject.as_str()).or_default().push(m.digest.clone());
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
    facts.manifests.iter().filter_map(|m| set.manifest_for_cleanup(&m.digest).map(|p| (m.digest.clone(), format!("kept: {p}")))).collect()
}

fn decide_tags(
    tags: &[&TagFact],
    policies: &[&CompiledPolicy],
    governance: &Policy,
    protected: &HashMap<String, String>,
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
    let governing: Vec<&CompiledPolicy> = policies.iter().copied().filter(|p| p.governs_tags()).collect();

    let decide = |t: &TagFact, rank: Option<usize>| -> Decision {
        if governance.is_stage(&t.name) {
            return Decision::keep("kept: stage tag");
        }
        if governance.is_immutable(&t.name) {
            return Decision::keep("kept: immutable tag");
        }
        if governing.is_empty() {
            return Decision::keep("kept: no policy expires tags");
        }
        let age = age(now_ms, t.updated_at_ms);
        for p in &governing {
            if let (Some(n), Some(rank)) = (p.keep_last, rank) {
                if rank < usize::try_from(n).unwrap_or(usize::MAX) {
                    return Decision::keep(format!("kept: newest {n} tags (policy {:?})", p.name));
                }
            }
            if let Some((pattern, _)) = p.keep_tags.iter().find(|(_, re)| re.is_match(&t.name)) {
                return Decision::keep(format!("kept: matches {pattern} (policy {:?})", p.name));
            }
            if let Some(d) = p.keep_within.filter(|d| age <= *d) {
                return Decision::keep(format!("kept: pushed {} ago, within {} (policy {:?})", short(age), short(d), p.name));
            }
        }
        if let Some(reason) = protected.get(&t.digest) {
            return Decision::keep(format!("kept: points at a protected manifest: {}", reason.trim_start_matches("kept: ")));
        }
        let why: Vec<String> = governing
            .iter()
            .map(|p| {
                let mut parts = Vec::new();
                if let Some(n) = p.keep_last {
                    parts.push(format!("not among the newest {n} tags"));
                }
                if !p.keep_tags.is_empty() {
                    parts.push("matches no keep pattern".to_owned());
                }
                if let Some(d) = p.keep_within {
                    parts.push(format!("pushed {} ago, older than {}", short(age), short(d)));
                }
                format!("{} (policy {:?})", parts.join(", "), p.name)
            })
            .collect();
        Decision::delete(format!("deleted: {}", why.join("; ")))
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
    hard: Option<String>,
    /// keep_within keeps it, or its tags all expired, or untagged too long.
    rule: Option<Decision>,
    /// Reason when nothing else decides.
    fallback: String,
}

fn decide_manifests(
    manifests: &[&ManifestFact],
    tags: &[&TagFact],
    tag_decisions: &[Decision],
    policies: &[&CompiledPolicy],
    protected: &HashMap<String, String>,
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
                .or_else(|| (!kept_tags.is_empty()).then(|| format!("kept: tagged {}", kept_tags.join(", "))));
            let young = policies.iter().find_map(|p| {
                let d = p.keep_within.filter(|d| age <= *d)?;
                Some(Decision::keep(format!("kept: pushed {} ago, within {} (policy {:?})", short(age), short(d), p.name)))
            });
            let mut fallback = "kept: no rule deletes it".to_owned();
            let expired = if !tags.is_empty() {
                let names: Vec<&str> = tags.iter().map(|t| t.0).collect();
                Some(Decision::delete(format!("deleted: all its tags expired ({})", names.join(", "))))
            } else if let Some(d) = untagged_limit {
                fallback = format!("kept: untagged for {}, within {}", short(age), short(d));
                (age > d).then(|| Decision::delete(format!("deleted: untagged for {} > {}", short(age), short(d))))
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
        Edge::Child => Decision::keep(format!("kept: child of kept index {}", nodes[from].digest)),
        Edge::Referrer => Decision::keep(format!("kept: referrer of kept {}", nodes[from].digest)),
    };

    // A manifest is decided after its indexes and its subject, in this order
    // of precedence: protected or tagged; needed by a kept manifest; gone with
    // its subject; its own rules; gone with its index; the fallback.
    let evaluate = |i: usize, status: &[Option<Decision>]| -> Decision {
        let parent =
            |kind: Edge, keep: bool| in_edges[i].iter().find(|(p, k)| *k == kind && status[*p].as_ref().is_some_and(|d| d.keep == keep));
        if let Some(reason) = &own[i].hard {
            Decision::keep(reason.clone())
        } else if let Some(&(p, k)) = parent(Edge::Child, true).or_else(|| parent(Edge::Referrer, true)) {
            kept_via(p, k)
        } else if let Some(&(p, _)) = parent(Edge::Referrer, false) {
            Decision::delete(format!("deleted: subject {} is deleted", nodes[p].digest))
        } else if let Some(decision) = &own[i].rule {
            decision.clone()
        } else if let Some(&(p, _)) = parent(Edge::Child, false) {
            Decision::delete(format!("deleted: child of deleted index {}", nodes[p].digest))
        } else {
            Decision::keep(own[i].fallback.clone())
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
                .unwrap_or_else(|| Decision::keep("kept: no rule deletes it"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GovernanceConfig;

    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;
    const NOW: i64 = 1_000 * DAY;

    fn days(n: u64) -> Option<Duration> {
        Some(Duration::from_secs(n * 86_400))
    }
    fn pol(name: &str, glob: &str) -> RetentionPolicyConfig {
        RetentionPolicyConfig { name: name.into(), repositories: glob.into(), ..Default::default() }
    }
    fn man(digest: &str, pushed: i64) -> ManifestFact {
        ManifestFact { digest: digest.into(), pushed_at_ms: pushed, subject: None, children: vec![] }
    }
    fn index(digest: &str, pushed: i64, children: &[&str]) -> ManifestFact {
        ManifestFact { children: children.iter().map(|c| c.to_string()).collect(), ..man(digest, pushed) }
    }
    fn referrer(digest: &str, pushed: i64, subject: &str) -> ManifestFact {
        ManifestFact { subject: Some(subject.into()), ..man(digest, pushed) }
    }
    fn tag(name: &str, digest: &str, updated: i64) -> TagFact {
        TagFact { name: name.into(), digest: digest.into(), updated_at_ms: updated }
    }
    fn rel(stage: &str, sequence: i64, digest: &str) -> ReleaseFact {
        ReleaseFact { stage: stage.into(), sequence, digest: digest.into() }
    }
    /// Plans repository `team/app` under the test governance (rollback depth 2).
    fn run(policies: &[RetentionPolicyConfig], m: Vec<ManifestFact>, t: Vec<TagFact>, r: Vec<ReleaseFact>) -> RepoPlan {
        let facts = RepoFacts { repository: "team/app".into(), manifests: m, tags: t, releases: r };
        let governance = Policy::new(&GovernanceConfig {
            stages: vec!["test".into(), "preprod".into(), "prod".into()],
            immutable_tags: vec![r"^v\d+\.\d+\.\d+$".into()],
            gates: Default::default(),
            rollback_depth: 2,
        });
        plan(&facts, &RetentionRules::new(policies).expect("valid policies"), &governance, NOW)
    }
    #[track_caller]
    fn kept(p: &RepoPlan, name: &str, words: &str) {
        let d = decision(p, name);
        assert!(d.keep && d.reason.contains(words), "{name}: expected kept with {words:?}, got {d:?}");
    }
    #[track_caller]
    fn deleted(p: &RepoPlan, name: &str, words: &str) {
        let d = decision(p, name);
        assert!(!d.keep && d.reason.contains(words), "{name}: expected deleted with {words:?}, got {d:?}");
    }
    /// Tags are named `tag:<name>` so one helper checks both kinds.
    #[track_caller]
    fn decision<'a>(p: &'a RepoPlan, name: &str) -> &'a Decision {
        match name.strip_prefix("tag:") {
            Some(tag) => p.tags.iter().find(|d| d.tag == tag).map(|d| &d.decision),
            None => p.manifests.iter().find(|d| d.digest == name).map(|d| &d.decision),
        }
        .unwrap_or_else(|| panic!("{name} not in plan"))
    }

    #[test]
    fn keep_last_skips_stage_and_immutable_tags() {
        let p = RetentionPolicyConfig { keep_last: Some(2), ..pol("default", "**") };
        let digests = ["a", "b", "c", "d", "e", "f"].map(|d| man(d, NOW - 30 * DAY));
        let names = ["prod", "v1.0.0", "t3", "t2", "t1", "t0"];
        let tags = names.iter().zip(&digests).enumerate();
        let tags = tags.map(|(i, (n, m))| tag(n, &m.digest, NOW - 20 * DAY - i as i64 * HOUR)).collect();
        let plan = run(&[p], digests.to_vec(), tags, vec![]);
        kept(&plan, "tag:prod", "stage tag");
        kept(&plan, "tag:v1.0.0", "immutable tag");
        kept(&plan, "tag:t3", "newest 2 tags (policy \"default\")");
        kept(&plan, "tag:t2", "newest 2 tags");
        deleted(&plan, "tag:t1", "not among the newest 2 tags (policy \"default\")");
        deleted(&plan, "tag:t0", "not among the newest 2 tags");
        kept(&plan, "c", "tagged t3");
        deleted(&plan, "e", "all its tags expired (t1)");
        assert_eq!(plan.deleted_tags().map(|t| t.tag.as_str()).collect::<Vec<_>>(), ["t0", "t1"]);
        assert_eq!(plan.deleted_manifests().count(), 2);
    }

    #[test]
    fn keep_tags_pattern_and_several_tags_on_one_digest() {
        let p = RetentionPolicyConfig { keep_tags: vec!["^release-".into()], ..pol("x", "team/*") };
        let old = NOW - 90 * DAY;
        let tags = vec![tag("release-1", "a", old), tag("junk", "a", old), tag("junk1", "b", old), tag("junk2", "b", old)];
        let plan = run(&[p], vec![man("a", old), man("b", old)], tags, vec![]);
        kept(&plan, "tag:release-1", "matches ^release- (policy \"x\")");
        deleted(&plan, "tag:junk", "matches no keep pattern (policy \"x\")");
        kept(&plan, "a", "tagged release-1");
        deleted(&plan, "b", "all its tags expired (junk1, junk2)");
    }

    #[test]
    fn keep_within_for_tags_and_manifests() {
        let p = RetentionPolicyConfig { keep_within: days(7), delete_untagged_after: days(1), ..pol("recent", "**") };
        let m = vec![man("a", NOW - 30 * DAY), man("b", NOW - 30 * DAY), man("young", NOW - 3 * HOUR), man("old", NOW - 9 * DAY)];
        let t = vec![tag("fresh", "a", NOW - 2 * HOUR), tag("stale", "b", NOW - 8 * DAY), tag("edge", "b", NOW - 7 * DAY)];
        let plan = run(&[p], m, t, vec![]);
        kept(&plan, "tag:fresh", "pushed 2h ago, within 7days");
        kept(&plan, "tag:edge", "within 7days");
        deleted(&plan, "tag:stale", "pushed 8days ago, older than 7days");
        kept(&plan, "young", "pushed 3h ago, within 7days");
        deleted(&plan, "old", "untagged for 9days > 1day");
    }

    #[test]
    fn delete_untagged_after_boundary_and_repointed_tag() {
        // Only the current tag row is a fact: earlier targets of `latest` are plain untagged manifests.
        let p = RetentionPolicyConfig { keep_last: Some(5), delete_untagged_after: days(7), ..pol("p", "**") };
        let m = vec![man("at", NOW - 7 * DAY), man("past", NOW - 7 * DAY - 1000), man("v-c", NOW - 2 * DAY)];
        let plan = run(&[p], [m, vec![man("v-d", NOW - HOUR)]].concat(), vec![tag("latest", "v-d", NOW - HOUR)], vec![]);
        kept(&plan, "at", "untagged for 7days, within 7days");
        deleted(&plan, "past", "untagged for 7days 1s > 7days");
        kept(&plan, "v-c", "untagged for 2days, within 7days");
        kept(&plan, "v-d", "tagged latest");
    }

    #[test]
    fn no_matching_policy_or_no_tag_rules_keep() {
        let p = RetentionPolicyConfig { keep_last: Some(0), delete_untagged_after: days(1), ..pol("p", "other/*") };
        let rules = RetentionRules::new(std::slice::from_ref(&p)).expect("valid");
        assert!(rules.applies_to("other/app") && !rules.applies_to("other/app/sub") && !rules.applies_to("team/app"));
        let plan = run(&[p], vec![man("a", 0), man("b", 0)], vec![tag("old", "a", 0)], vec![]);
        assert_eq!(plan.deleted_manifests().count() + plan.deleted_tags().count(), 0);
        kept(&plan, "b", "no retention policy matches team/app");
        kept(&plan, "tag:old", "no retention policy matches team/app");

        let p = RetentionPolicyConfig { delete_untagged_after: days(1), ..pol("p", "**") };
        let plan = run(&[p], vec![man("a", 0), man("b", 0)], vec![tag("ancient", "a", 0)], vec![]);
        kept(&plan, "tag:ancient", "no policy expires tags");
        kept(&plan, "a", "tagged ancient");
        deleted(&plan, "b", "untagged");
    }

    #[test]
    fn several_policies_keep_if_any_keeps() {
        let p1 = RetentionPolicyConfig { keep_last: Some(1), ..pol("count", "**") };
        let p2 = RetentionPolicyConfig { keep_tags: vec!["^stable$".into()], ..pol("named", "team/**") };
        let p3 = RetentionPolicyConfig { keep_last: Some(50), ..pol("elsewhere", "other/*") };
        let t = vec![tag("newest", "a", NOW - DAY), tag("stable", "b", NOW - 50 * DAY), tag("old", "c", NOW - 40 * DAY)];
        let plan = run(&[p1, p2, p3], vec![man("a", 0), man("b", 0), man("c", 0)], t, vec![]);
        kept(&plan, "tag:newest", "policy \"count\"");
        kept(&plan, "tag:stable", "policy \"named\"");
        deleted(&plan, "tag:old", "not among the newest 1 tags (policy \"count\"); matches no keep pattern (policy \"named\")");
        assert!(!decision(&plan, "tag:old").reason.contains("elsewhere"));
    }

    #[test]
    fn stage_releases_and_immutable_tags_are_protected() {
        let p = RetentionPolicyConfig { keep_last: Some(0), delete_untagged_after: days(1), ..pol("p", "**") };
        let m = ["d1", "d2", "d3", "d4", "d5", "d6", "d7"].map(|d| man(d, NOW - 30 * DAY)).to_vec();
        let t = vec![tag("prod", "d4", 0), tag("old-build", "d2", 0), tag("v1.2.3", "d1", 0), tag("alias", "d1", 0)];
        let r = [("prod", 1, "d6"), ("prod", 2, "d2"), ("prod", 3, "d3"), ("prod", 4, "d4"), ("preprod", 5, "d3")];
        let r2 = [("test", 1, "d5"), ("test", 2, "d4"), ("test", 3, "d5"), ("test", 4, "d7"), ("unknown", 9, "d6")];
        let plan = run(&[p], m, t, r.iter().chain(&r2).map(|(s, n, d)| rel(s, *n, d)).collect());
        kept(&plan, "d4", "prod release #4 (current)"); // and test #2
        kept(&plan, "d3", "preprod release #5 (current)"); // also prod #3: current wins
        kept(&plan, "d2", "prod release #2 (inside the rollback window of 2)");
        deleted(&plan, "d6", "untagged"); // prod #1: the 4th newest, outside the window
        kept(&plan, "d7", "test release #4 (current)");
        kept(&plan, "d5", "test release #3 (inside the rollback window of 2)"); // and test #1
        kept(&plan, "d1", "target of immutable tag v1.2.3");
        kept(&plan, "tag:v1.2.3", "immutable tag");
        kept(&plan, "tag:alias", "points at a protected manifest: target of immutable tag v1.2.3");
        kept(&plan, "tag:prod", "stage tag");
        kept(&plan, "tag:old-build", "points at a protected manifest: prod release #2");
    }

    #[test]
    fn multi_arch_children_live_and_die_with_their_index() {
        let p = RetentionPolicyConfig { keep_tags: vec!["^latest$".into()], delete_untagged_after: days(7), ..pol("p", "**") };
        let old = NOW - 30 * DAY;
        let m = vec![
            index("idx-new", old, &["amd64", "arm64", "shared"]),
            index("idx-old", old, &["old-amd64", "old-arm64", "shared"]),
            man("amd64", old),
            man("arm64", old),
            man("shared", old),
            man("old-amd64", NOW - HOUR),
            man("old-arm64", old),
        ];
        let plan = run(&[p], m, vec![tag("latest", "idx-new", old), tag("old", "idx-old", old)], vec![]);
        kept(&plan, "idx-new", "tagged latest");
        kept(&plan, "amd64", "child of kept index idx-new");
        kept(&plan, "arm64", "child of kept index idx-new");
        kept(&plan, "shared", "child of kept index idx-new");
        deleted(&plan, "idx-old", "all its tags expired (old)");
        deleted(&plan, "old-amd64", "child of deleted index idx-old");
        deleted(&plan, "old-arm64", "untagged for 30days > 7days");
    }

    #[test]
    fn referrers_follow_their_subject() {
        let p = RetentionPolicyConfig { keep_within: days(1), delete_untagged_after: days(7), ..pol("p", "**") };
        let old = NOW - 90 * DAY;
        let m = vec![
            man("img", old),
            referrer("sig", old, "img"),
            referrer("sig-of-sig", old, "sig"),
            man("gone", old),
            referrer("sbom", NOW - HOUR, "gone"),
            referrer("sbom-sig", NOW - HOUR, "sbom"),
            referrer("tagged-sig", old, "gone"),
        ];
        let t = vec![tag("v2.0.0", "tagged-sig", old)];
        let plan = run(&[p], m, t, vec![rel("prod", 12, "img")]);
        kept(&plan, "img", "prod release #12 (current)");
        kept(&plan, "sig", "referrer of img, needed by prod release #12 (current)");
        kept(&plan, "sig-of-sig", "referrer of sig, needed by prod release #12");
        deleted(&plan, "gone", "> 7days");
        // Young (keep_within) does not save a referrer of a deleted subject; a kept tag does.
        deleted(&plan, "sbom", "subject gone is deleted");
        deleted(&plan, "sbom-sig", "subject sbom is deleted");
        kept(&plan, "tagged-sig", "target of immutable tag v2.0.0");
    }

    #[test]
    fn stable_order_serialization_and_config_errors() {
        let plan = run(&[pol("p", "**")], vec![man("b", 5), man("a", 5), man("c", 1)], vec![tag("z", "a", 0), tag("m", "b", 0)], vec![]);
        assert_eq!(plan.manifests.iter().map(|d| d.digest.as_str()).collect::<Vec<_>>(), ["c", "a", "b"]);
        assert_eq!(plan.tags.iter().map(|d| d.tag.as_str()).collect::<Vec<_>>(), ["m", "z"]);
        kept(&plan, "c", "no rule deletes it");
        let json = serde_json::to_value(&plan).expect("serializes");
        assert_eq!((&json["manifests"][0]["digest"], &json["manifests"][0]["keep"]), (&"c".into(), &true.into()));
        assert_eq!(json["tags"][0]["reason"], "kept: no policy expires tags");

        assert!(RetentionRules::new(&[pol("p", "")]).is_err());
        assert!(RetentionRules::new(&[pol("p", "a/[")]).is_err());
        let bad = RetentionPolicyConfig { keep_tags: vec!["(".into()], ..pol("p", "**") };
        assert!(RetentionRules::new(&[bad]).is_err_and(|e| e.contains("keep_tags")));
    }

    /// Whatever the graph (dangling references, forged cycles included), every
    /// manifest gets one decision and no kept manifest loses a child or referrer.
    #[test]
    fn closure_invariant_holds_on_arbitrary_graphs() {
        let p = RetentionPolicyConfig { keep_last: Some(1), keep_within: days(1), delete_untagged_after: days(3), ..pol("p", "**") };
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |bound: usize| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((seed >> 33) % bound as u64) as usize
        };
        let (mut deletions, mut keeps) = (0, 0);
        for _ in 0..300 {
            let n = 1 + next(8);
            let mut m: Vec<ManifestFact> = (0..n).map(|i| man(&format!("m{i}"), NOW - next(6) as i64 * DAY)).collect();
            for f in m.iter_mut() {
                f.subject = (next(3) == 0).then(|| format!("m{}", next(n + 1)));
                f.children = (0..next(3)).map(|_| format!("m{}", next(n))).collect();
            }
            let t: Vec<TagFact> =
                (0..next(4)).map(|k| tag(&format!("t{k}"), &format!("m{}", next(n)), NOW - next(5) as i64 * DAY)).collect();
            let r = if next(2) == 0 { vec![rel("prod", 1, &format!("m{}", next(n)))] } else { vec![] };
            let plan = run(std::slice::from_ref(&p), m.clone(), t, r);
            assert_eq!(plan.manifests.len(), n);
            let keep: HashMap<&str, bool> = plan.manifests.iter().map(|d| (d.digest.as_str(), d.decision.keep)).collect();
            let is_kept = |d: &str| keep.get(d).copied().unwrap_or(false);
            for f in m.iter().filter(|f| !is_kept(&f.digest)) {
                let by_index = m.iter().any(|o| o.digest != f.digest && is_kept(&o.digest) && o.children.contains(&f.digest));
                let by_subject = f.subject.as_deref().is_some_and(|s| s != f.digest && is_kept(s));
                assert!(!by_index && !by_subject, "{} deleted but needed: {plan:#?}", f.digest);
            }
            deletions += plan.deleted_manifests().count();
            keeps += n - plan.deleted_manifests().count();
        }
        assert!(deletions > 100 && keeps > 100, "graphs exercise both outcomes: {deletions} / {keeps}");
    }
}
