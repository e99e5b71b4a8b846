//! Loads what the one protection rule (`governance::protection`) needs for a
//! repository, inside the caller's transaction, so a delete decides on the
//! same state it changes.
//!
//! What a protected manifest needs is read both from its reference rows and
//! from its own stored bytes: GC's "nothing references it" rule rests on the
//! rows alone, so asking the bytes too means a bookkeeping bug cannot cost a
//! release its layers.

use std::collections::hash_map::{Entry, HashMap};

use rusqlite::Connection;

use super::manifests::references_in;
use super::RegistryError;
use crate::db;
use crate::governance::protection::{self, ProtectedSet, References, Release};
use crate::governance::Policy;

/// The protected set of one repository: each stage's rollback window and
/// immutable tags' targets, with everything they need.
pub(crate) fn protected_set(conn: &Connection, policy: &Policy, repo_id: i64) -> Result<ProtectedSet, RegistryError> {
    let window = policy.rollback_depth.saturating_add(1);
    let mut releases = Vec::new();
    for stage in policy.stages() {
        releases.extend(db::releases::list(conn, repo_id, stage, None, window)?);
    }
    let releases: Vec<Release<'_>> =
        releases.iter().map(|r| Release { stage: &r.stage, sequence: r.sequence, digest: &r.digest }).collect();
    let tags = db::tags::all(conn, repo_id)?;
    let roots = protection::roots(&releases, tags.iter().map(|(name, digest, _)| (name.as_str(), digest.as_str())), policy);
    protection::closure(roots, |digest| -> Result<References, RegistryError> {
        let (mut children, mut blobs) = db::manifests::references(conn, repo_id, digest)?;
        if let Some(row) = db::manifests::get(conn, repo_id, digest)? {
            if let Some((named_children, named_blobs)) = references_in(&row.media_type, &row.content) {
                children.extend(named_children);
                blobs.extend(named_blobs);
            }
        }
        children.sort_unstable();
        children.dedup();
        blobs.sort_unstable();
        blobs.dedup();
        let referrers = db::manifests::referrer_digests(conn, repo_id, digest)?;
        Ok(References { children, blobs, referrers })
    })
}

/// Protected sets per repository, computed once per GC batch.
#[derive(Default)]
pub(crate) struct ProtectionCache {
    sets: HashMap<i64, ProtectedSet>,
}

impl ProtectionCache {
    /// Why GC must keep `digest`, if any repository serving it protects it
    /// (a release, or a referrer of one, needs it).
    pub(crate) fn blob_kept_by(&mut self, conn: &Connection, policy: &Policy, digest: &str) -> Result<Option<String>, RegistryError> {
        for repo_id in db::blobs::repositories_linking(conn, digest)? {
            let set = match self.sets.entry(repo_id) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => e.insert(protected_set(conn, policy, repo_id)?),
            };
            if let Some(p) = set.blob_for_cleanup(digest) {
                return Ok(Some(p.refusal(digest)));
            }
        }
        Ok(None)
    }
}
