//! Loads what the one protection rule (`governance::protection`) needs for a
//! repository, inside the caller's transaction, so a delete decides on the
//! same state it changes.
//!
//! What a protected manifest needs is read both from its reference rows and
//! from its own stored bytes: GC's "nothing references it" rule rests on the
//! rows alone, so asking the bytes too means a bookkeeping bug cannot cost a
//! release its layers.

use std::collections::hash_map::{Entry, HashMap};

use super::manifests::references_in;
use super::{RegistryError, Tx};
use crate::db::RepoId;
use crate::domain::{Digest, Stage, Tag};
use crate::governance::protection::{self, ProtectedSet, References, Release};
use crate::governance::Policy;

/// The protected set of one repository: each stage's rollback window and
/// immutable tags' targets, with everything they need.
pub(crate) fn protected_set(tx: &dyn Tx, policy: &Policy, repo_id: RepoId) -> Result<ProtectedSet, RegistryError> {
    let window = policy.rollback_depth.saturating_add(1);
    let mut releases = Vec::new();
    for stage in policy.stages() {
        releases.extend(tx.list_releases(repo_id, &Stage::parse(stage)?, None, window)?);
    }
    let releases: Vec<Release<'_>> =
        releases.iter().map(|r| Release { stage: r.stage.as_str(), sequence: r.sequence, digest: r.digest.as_str() }).collect();
    let tags = tx.all_tags(repo_id)?;
    let roots = protection::roots(&releases, tags.iter().map(|t| (t.name.as_str(), t.digest.as_str())), policy);
    protection::closure(roots, |digest| -> Result<References, RegistryError> {
        let digest = Digest::parse(digest)?;
        let refs = tx.manifest_references(repo_id, &digest)?;
        let mut children: Vec<String> = refs.children.iter().map(ToString::to_string).collect();
        let mut blobs: Vec<String> = refs.blobs.iter().map(ToString::to_string).collect();
        if let Some(row) = tx.manifest(repo_id, &digest)? {
            if let Some((named_children, named_blobs)) = references_in(&row.media_type, &row.content) {
                children.extend(named_children);
                blobs.extend(named_blobs);
            }
        }
        children.sort_unstable();
        children.dedup();
        blobs.sort_unstable();
        blobs.dedup();
        let mut referrers: Vec<String> = tx.referrer_digests(repo_id, &digest)?.iter().map(ToString::to_string).collect();
        // cosign's tag-convention signatures (`sha256-<hex>.sig`, ...) have no `subject`.
        if let Some(hex) = digest.as_str().strip_prefix("sha256:") {
            for suffix in ["sig", "att", "sbom"] {
                if let Ok(tag) = Tag::parse(&format!("sha256-{hex}.{suffix}")) {
                    referrers.extend(tx.tag_target(repo_id, &tag)?.map(|d| d.to_string()));
                }
            }
        }
        Ok(References { children, blobs, referrers })
    })
}

/// Protected sets per repository, computed once per GC batch.
#[derive(Default)]
pub(crate) struct ProtectionCache {
    sets: HashMap<RepoId, ProtectedSet>,
}

impl ProtectionCache {
    /// Why GC must keep `digest`, if any repository serving it protects it
    /// (a release, or a referrer of one, needs it).
    pub(crate) fn blob_kept_by(&mut self, tx: &dyn Tx, policy: &Policy, digest: &Digest) -> Result<Option<String>, RegistryError> {
        for repo_id in tx.repositories_linking(digest)? {
            let set = match self.sets.entry(repo_id) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => e.insert(protected_set(tx, policy, repo_id)?),
            };
            if let Some(p) = set.blob_for_cleanup(digest.as_str()) {
                return Ok(Some(p.refusal(digest.as_str())));
            }
        }
        Ok(None)
    }
}
