//! The planner's rules, one test per rule.

use std::collections::HashMap;
use std::time::Duration;

use super::*;
use crate::config::GovernanceConfig;
use crate::domain::{RepoGlob, TagPattern};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const NOW: i64 = 1_000 * DAY;

fn days(n: u64) -> Option<Duration> {
    Some(Duration::from_secs(n * 86_400))
}
fn pol(name: &str, glob: &str) -> RetentionPolicyConfig {
    RetentionPolicyConfig::new(name, RepoGlob::parse(glob).expect("valid glob"))
}
fn patterns(p: &[&str]) -> Vec<TagPattern> {
    p.iter().map(|p| TagPattern::parse(p).expect("valid pattern")).collect()
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
        immutable_tags: patterns(&[r"^v\d+\.\d+\.\d+$"]),
        gates: Default::default(),
        rollback_depth: 2,
    });
    plan(&facts, &RetentionRules::new(policies), &governance, NOW)
}
#[track_caller]
fn kept(p: &RepoPlan, name: &str, words: &str) {
    let d = decision(p, name);
    assert!(d.keep && d.reason.to_string().contains(words), "{name}: expected kept with {words:?}, got {d:?}");
}
#[track_caller]
fn deleted(p: &RepoPlan, name: &str, words: &str) {
    let d = decision(p, name);
    assert!(!d.keep && d.reason.to_string().contains(words), "{name}: expected deleted with {words:?}, got {d:?}");
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
    let p = RetentionPolicyConfig { keep_tags: patterns(&["^release-"]), ..pol("x", "team/*") };
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
    let rules = RetentionRules::new(std::slice::from_ref(&p));
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
    let p2 = RetentionPolicyConfig { keep_tags: patterns(&["^stable$"]), ..pol("named", "team/**") };
    let p3 = RetentionPolicyConfig { keep_last: Some(50), ..pol("elsewhere", "other/*") };
    let t = vec![tag("newest", "a", NOW - DAY), tag("stable", "b", NOW - 50 * DAY), tag("old", "c", NOW - 40 * DAY)];
    let plan = run(&[p1, p2, p3], vec![man("a", 0), man("b", 0), man("c", 0)], t, vec![]);
    kept(&plan, "tag:newest", "policy \"count\"");
    kept(&plan, "tag:stable", "policy \"named\"");
    deleted(&plan, "tag:old", "not among the newest 1 tags (policy \"count\"); matches no keep pattern (policy \"named\")");
    assert!(!decision(&plan, "tag:old").reason.to_string().contains("elsewhere"));
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
    let p = RetentionPolicyConfig { keep_tags: patterns(&["^latest$"]), delete_untagged_after: days(7), ..pol("p", "**") };
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
fn stable_order_and_serialization() {
    let plan = run(&[pol("p", "**")], vec![man("b", 5), man("a", 5), man("c", 1)], vec![tag("z", "a", 0), tag("m", "b", 0)], vec![]);
    assert_eq!(plan.manifests.iter().map(|d| d.digest.as_str()).collect::<Vec<_>>(), ["c", "a", "b"]);
    assert_eq!(plan.tags.iter().map(|d| d.tag.as_str()).collect::<Vec<_>>(), ["m", "z"]);
    kept(&plan, "c", "no rule deletes it");
    let json = serde_json::to_value(&plan).expect("serializes");
    assert_eq!((&json["manifests"][0]["digest"], &json["manifests"][0]["keep"]), (&"c".into(), &true.into()));
    assert_eq!(json["tags"][0]["reason"], "kept: no policy expires tags");
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
        let t: Vec<TagFact> = (0..next(4)).map(|k| tag(&format!("t{k}"), &format!("m{}", next(n)), NOW - next(5) as i64 * DAY)).collect();
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
