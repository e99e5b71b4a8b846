//! The one protection rule: what no delete may ever remove.
//!
//! Protected, whatever any policy or client says: the current release and the
//! last `rollback_depth` releases of every stage, the targets of immutable
//! tags, every child of a protected index (nested indexes too) and every blob
//! (config and layers) any of them references. Referrers (signatures, SBOMs)
//! of protected manifests, with what they need in turn, are protected from
//! retention and garbage collection, but a client with delete rights may
//! still remove one (a wrong signature must be revocable).
//!
//! Retention, client DELETEs of blobs, manifests and tags, and GC all ask this
//! module; nothing else decides it. It is pure: the caller loads the facts
//! (releases, tags, and a lookup of what a manifest references), so every
//! rule is unit-tested below.

use std::collections::{HashMap, VecDeque};
use std::fmt;

use crate::governance::Policy;

/// Why a root of the protected set is protected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    CurrentRelease { stage: String, sequence: i64 },
    RollbackWindow { stage: String, sequence: i64, depth: u32 },
    ImmutableTag { tag: String },
}

impl fmt::Display for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Root::CurrentRelease { stage, sequence } => write!(f, "{stage} release #{sequence} (current)"),
            Root::RollbackWindow { stage, sequence, depth } => {
                write!(f, "{stage} release #{sequence} (inside the rollback window of {depth})")
            }
            Root::ImmutableTag { tag } => write!(f, "target of immutable tag {tag}"),
        }
    }
}

/// How a protected digest is reached from its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// It is the root's own manifest.
    Itself,
    /// A child manifest of the index `parent`.
    ChildOf(String),
    /// A blob (config or layer) of the manifest.
    BlobOf(String),
    /// A referrer whose subject is the manifest.
    ReferrerOf(String),
}

/// How strongly a digest is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Strength {
    /// Only retention and GC must keep it (a referrer and what it needs).
    FromCleanup,
    /// Nothing may delete it: a release or immutable image needs it.
    Always,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protected {
    pub root: Root,
    pub via: Via,
    pub strength: Strength,
}

impl Protected {
    /// The refusal message for deleting `digest`: names the release it breaks.
    pub fn refusal(&self, digest: &str) -> String {
        let through = match &self.via {
            Via::Itself => String::new(),
            Via::ChildOf(parent) => format!(", as a child of index {parent}"),
            Via::BlobOf(manifest) => format!(", as a blob of {manifest}"),
            Via::ReferrerOf(subject) => format!(", as a referrer of {subject}"),
        };
        format!("{digest} is needed by {}{through}", self.root)
    }
}

/// The retention planner's wording, "kept: prod release #3 (current)".
impl fmt::Display for Protected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.via {
            Via::Itself => write!(f, "{}", self.root),
            Via::ChildOf(parent) => write!(f, "child of index {parent}, needed by {}", self.root),
            Via::BlobOf(manifest) => write!(f, "blob of {manifest}, needed by {}", self.root),
            Via::ReferrerOf(subject) => write!(f, "referrer of {subject}, needed by {}", self.root),
        }
    }
}

/// What a manifest points at, as the caller's lookup returns it.
#[derive(Debug, Clone, Default)]
pub struct References {
    /// Child manifests (an index's entries).
    pub children: Vec<String>,
    /// Config and layer blobs.
    pub blobs: Vec<String>,
    /// Manifests whose subject is this one.
    pub referrers: Vec<String>,
}

/// A release, as far as protection cares.
#[derive(Debug, Clone)]
pub struct Release<'a> {
    pub stage: &'a str,
    pub sequence: i64,
    pub digest: &'a str,
}

/// The manifests and blobs of one repository that deletes must respect.
#[derive(Debug, Default, Clone)]
pub struct ProtectedSet {
    manifests: HashMap<String, Protected>,
    blobs: HashMap<String, Protected>,
}

impl ProtectedSet {
    /// Why no client may delete this manifest, if so.
    pub fn manifest(&self, digest: &str) -> Option<&Protected> {
        self.manifests.get(digest).filter(|p| p.strength == Strength::Always)
    }

    /// Why no client may delete this blob, if so.
    pub fn blob(&self, digest: &str) -> Option<&Protected> {
        self.blobs.get(digest).filter(|p| p.strength == Strength::Always)
    }

    /// Why retention must keep this manifest, if so (referrers included).
    pub fn manifest_for_cleanup(&self, digest: &str) -> Option<&Protected> {
        self.manifests.get(digest)
    }

    /// Why GC must keep this blob, if so (referrers' blobs included).
    pub fn blob_for_cleanup(&self, digest: &str) -> Option<&Protected> {
        self.blobs.get(digest)
    }

    pub fn is_empty(&self) -> bool {
        self.manifests.is_empty() && self.blobs.is_empty()
    }
}

/// The subject of a cosign tag-convention artifact: `sha256-<hex>.sig`
/// (also `.att`, `.sbom`) names signatures of `sha256:<hex>`. They are
/// protected like referrers: cosign does not set `subject` in this mode.
pub fn cosign_tag_subject(tag: &str) -> Option<String> {
    let rest = tag.strip_prefix("sha256-")?;
    let hex = [".sig", ".att", ".sbom"].iter().find_map(|suffix| rest.strip_suffix(suffix))?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))).then(|| format!("sha256:{hex}"))
}

/// The roots: each stage's current release and the `rollback_depth`
/// releases before it, and immutable tags' targets. Releases may come in
/// any order and may be more than the window (they are cut here). Closer to
/// production wins when a digest is several roots at once, current
/// releases before rollback targets, then immutable tags.
pub fn roots<'a>(releases: &[Release<'a>], tags: impl IntoIterator<Item = (&'a str, &'a str)>, policy: &Policy) -> Vec<(String, Root)> {
    let depth = policy.rollback_depth;
    let window = usize::try_from(depth).unwrap_or(usize::MAX).saturating_add(1);
    let mut per_stage: Vec<Vec<&Release<'a>>> = policy
        .stages()
        .iter()
        .map(|stage| {
            let mut of_stage: Vec<&Release<'a>> = releases.iter().filter(|r| r.stage == stage.as_str()).collect();
            of_stage.sort_by_key(|r| std::cmp::Reverse(r.sequence));
            of_stage.truncate(window);
            of_stage
        })
        .collect();
    per_stage.reverse();
    let mut out = Vec::new();
    for stage_releases in &per_stage {
        if let Some(current) = stage_releases.first() {
            out.push((current.digest.to_owned(), Root::CurrentRelease { stage: current.stage.to_owned(), sequence: current.sequence }));
        }
    }
    for stage_releases in &per_stage {
        for r in stage_releases.iter().skip(1) {
            out.push((r.digest.to_owned(), Root::RollbackWindow { stage: r.stage.to_owned(), sequence: r.sequence, depth }));
        }
    }
    for (tag, digest) in tags {
        if policy.is_immutable(tag) {
            out.push((digest.to_owned(), Root::ImmutableTag { tag: tag.to_owned() }));
        }
    }
    out
}

/// Everything the roots need: children and blobs (protected always), then
/// referrers and what they need (protected from cleanup). `references`
/// looks up what one manifest points at; it is asked once per manifest.
/// Cycles (forged manifests) end because each digest is visited once.
pub fn closure<E>(roots: Vec<(String, Root)>, mut references: impl FnMut(&str) -> Result<References, E>) -> Result<ProtectedSet, E> {
    let mut set = ProtectedSet::default();
    let mut looked_up: HashMap<String, References> = HashMap::new();
    // Breadth first, always-protected edges before referrer edges, so a
    // digest gets its strongest protection and the shortest explanation.
    let mut queue: VecDeque<(String, Protected)> =
        roots.into_iter().map(|(digest, root)| (digest, Protected { root, via: Via::Itself, strength: Strength::Always })).collect();
    let mut later: VecDeque<(String, Protected)> = VecDeque::new();
    while let Some((digest, protected)) = queue.pop_front().or_else(|| later.pop_front()) {
        if set.manifests.get(&digest).is_some_and(|p| p.strength >= protected.strength) {
            continue;
        }
        if !looked_up.contains_key(&digest) {
            let refs = references(&digest)?;
            looked_up.insert(digest.clone(), refs);
        }
        let refs = &looked_up[&digest];
        let inherit = |via: Via, strength: Strength| Protected { root: protected.root.clone(), via, strength };
        for blob in &refs.blobs {
            if set.blobs.get(blob).is_none_or(|p| p.strength < protected.strength) {
                set.blobs.insert(blob.clone(), inherit(Via::BlobOf(digest.clone()), protected.strength));
            }
        }
        for child in &refs.children {
            queue.push_back((child.clone(), inherit(Via::ChildOf(digest.clone()), protected.strength)));
        }
        for referrer in &refs.referrers {
            later.push_back((referrer.clone(), inherit(Via::ReferrerOf(digest.clone()), Strength::FromCleanup)));
        }
        set.manifests.insert(digest, protected);
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GovernanceConfig;

    fn policy(depth: u32) -> Policy {
        Policy::new(&GovernanceConfig {
            stages: vec!["test".into(), "preprod".into(), "prod".into()],
            immutable_tags: vec![crate::domain::TagPattern::parse(r"^v\d+\.\d+\.\d+$").expect("valid")],
            gates: Default::default(),
            rollback_depth: depth,
        })
    }

    fn rel(stage: &'static str, sequence: i64, digest: &'static str) -> Release<'static> {
        Release { stage, sequence, digest }
    }

    /// manifest, children, blobs, referrers
    type Edge<'a> = (&'a str, &'a [&'a str], &'a [&'a str], &'a [&'a str]);

    /// A reference graph: manifest → (children, blobs, referrers).
    fn graph(edges: &[Edge<'_>]) -> HashMap<String, References> {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        edges.iter().map(|(m, c, b, r)| (m.to_string(), References { children: own(c), blobs: own(b), referrers: own(r) })).collect()
    }

    fn protect(
        releases: &[Release<'static>],
        tags: &[(&'static str, &'static str)],
        depth: u32,
        g: &HashMap<String, References>,
    ) -> ProtectedSet {
        let roots = roots(releases, tags.iter().copied(), &policy(depth));
        closure(roots, |d| Ok::<_, ()>(g.get(d).cloned().unwrap_or_default())).expect("infallible lookup")
    }

    #[test]
    fn cosign_tags_name_their_subject() {
        let hex = "ab".repeat(32);
        assert_eq!(cosign_tag_subject(&format!("sha256-{hex}.sig")), Some(format!("sha256:{hex}")));
        assert_eq!(cosign_tag_subject(&format!("sha256-{hex}.att")), Some(format!("sha256:{hex}")));
        for t in ["latest", "sha256-abc.sig", &format!("sha256-{hex}.sig2"), &format!("sha256-{}.sig", "AB".repeat(32))] {
            assert_eq!(cosign_tag_subject(t), None, "{t}");
        }
    }

    #[test]
    fn window_is_current_plus_depth_per_stage() {
        let releases = [rel("prod", 1, "p1"), rel("prod", 4, "p4"), rel("prod", 2, "p2"), rel("prod", 3, "p3"), rel("test", 1, "t1")];
        let set = protect(&releases, &[], 2, &HashMap::new());
        assert_eq!(set.manifest("p4").map(|p| p.root.to_string()).as_deref(), Some("prod release #4 (current)"));
        assert_eq!(
            set.manifest("p2").map(|p| p.refusal("p2")).as_deref(),
            Some("p2 is needed by prod release #2 (inside the rollback window of 2)")
        );
        assert!(set.manifest("p3").is_some());
        assert!(set.manifest("p1").is_none(), "outside the window");
        assert!(set.manifest("t1").is_some());
        // Releases of stages that are not configured protect nothing.
        assert!(protect(&[rel("qa", 1, "q")], &[], 2, &HashMap::new()).is_empty());
        // Depth 0 keeps only the current release.
        let set = protect(&releases, &[], 0, &HashMap::new());
        assert!(set.manifest("p4").is_some() && set.manifest("p3").is_none());
    }

    #[test]
    fn closer_to_prod_and_current_explain_first() {
        let releases = [rel("test", 7, "x"), rel("prod", 2, "x"), rel("prod", 3, "y")];
        let set = protect(&releases, &[("v1.0.0", "x")], 2, &HashMap::new());
        // x is test's current release and prod's rollback target: current wins.
        assert_eq!(set.manifest("x").map(|p| p.root.to_string()).as_deref(), Some("test release #7 (current)"));
        let set = protect(&[], &[("v1.0.0", "x"), ("latest", "y")], 2, &HashMap::new());
        assert_eq!(set.manifest("x").map(|p| p.root.to_string()).as_deref(), Some("target of immutable tag v1.0.0"));
        assert!(set.manifest("y").is_none(), "a mutable tag protects nothing");
    }

    #[test]
    fn children_nested_indexes_and_blobs_are_protected() {
        let g = graph(&[
            ("idx", &["amd64", "nested"], &[], &[]),
            ("nested", &["arm64"], &[], &[]),
            ("amd64", &[], &["cfg-a", "layer-1"], &[]),
            ("arm64", &[], &["cfg-b", "layer-1"], &[]),
            ("other", &[], &["layer-2"], &[]),
        ]);
        let set = protect(&[rel("prod", 5, "idx")], &[], 1, &g);
        for m in ["idx", "nested", "amd64", "arm64"] {
            assert!(set.manifest(m).is_some(), "{m}");
        }
        assert_eq!(set.manifest("arm64").map(|p| p.via.clone()), Some(Via::ChildOf("nested".into())));
        assert_eq!(
            set.blob("cfg-b").map(|p| p.refusal("cfg-b")).as_deref(),
            Some("cfg-b is needed by prod release #5 (current), as a blob of arm64")
        );
        assert!(set.blob("layer-1").is_some());
        assert!(set.manifest("other").is_none() && set.blob("layer-2").is_none());
    }

    #[test]
    fn referrers_are_protected_from_cleanup_only() {
        let g = graph(&[
            ("img", &[], &["layer"], &["sig"]),
            ("sig", &[], &["sig-blob"], &["sig-of-sig"]),
            ("sig-of-sig", &[], &["sos-blob"], &[]),
            // A referrer that is also a release is protected always.
            ("sbom", &[], &["sbom-blob"], &[]),
        ]);
        let g = {
            let mut g = g;
            g.get_mut("img").expect("img").referrers.push("sbom".into());
            g
        };
        let set = protect(&[rel("prod", 1, "img"), rel("test", 1, "sbom")], &[], 0, &g);
        assert!(set.manifest("sig").is_none(), "a client may delete a signature");
        assert_eq!(set.manifest_for_cleanup("sig").map(|p| p.strength), Some(Strength::FromCleanup));
        assert!(set.manifest_for_cleanup("sig-of-sig").is_some());
        assert!(set.blob("sig-blob").is_none() && set.blob_for_cleanup("sig-blob").is_some());
        assert!(set.blob_for_cleanup("sos-blob").is_some());
        assert_eq!(set.manifest("sbom").map(|p| p.root.to_string()).as_deref(), Some("test release #1 (current)"));
        assert!(set.blob("sbom-blob").is_some());
    }

    #[test]
    fn cycles_end_and_each_manifest_is_looked_up_once() {
        let g = graph(&[("a", &["b"], &[], &["c"]), ("b", &["a"], &[], &[]), ("c", &[], &[], &["a", "c"])]);
        let mut asked: HashMap<String, u32> = HashMap::new();
        let set = closure(roots(&[rel("prod", 1, "a")], [], &policy(1)), |d| {
            *asked.entry(d.to_owned()).or_default() += 1;
            Ok::<_, ()>(g.get(d).cloned().unwrap_or_default())
        })
        .expect("infallible");
        assert!(set.manifest("a").is_some() && set.manifest("b").is_some() && set.manifest_for_cleanup("c").is_some());
        assert!(asked.values().all(|&n| n == 1), "{asked:?}");
    }

    #[test]
    fn lookup_errors_propagate() {
        let result = closure(roots(&[rel("prod", 1, "a")], [], &policy(1)), |_| Err("database gone"));
        assert_eq!(result.err(), Some("database gone"));
    }
}
