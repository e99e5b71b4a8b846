//! Garbage collection: blobs that no manifest references and upload
//! sessions abandoned long ago, online while clients push and pull.
//!
//! Per batch: (1) one write transaction re-checks each candidate (no
//! manifest references it, pushed before the grace period, no upload claims
//! it) and moves it from `blobs` to `gc_pending` — from then on a manifest
//! PUT that needs it fails with MANIFEST_BLOB_UNKNOWN (the client uploads
//! again) and an upload of the same digest waits; (2) its bytes are deleted;
//! (3) the pending row goes. A crash between (1) and (3) leaves pending rows
//! that the next run finishes first, so a manifest never points at bytes
//! that are gone and no run has to start over from a full listing.
//!
//! Last, a sweep of the store itself finds strays: bytes at a blob address
//! with no row (a crash between placing and recording them), temporaries of
//! a blob write cut short, and upload objects whose session is gone. Each
//! goes once older than the grace period (blobs) or `upload_max_age`
//! (uploads, and temporaries: a whole blob being written beside its address
//! is an upload in progress with no row); a stray blob is taken through
//! `gc_pending` like any other.

use serde::Serialize;
use serde_json::json;

use super::protection::ProtectionCache;
use super::{record, Registry, RegistryError, Tx};
use crate::domain::UploadId;
use crate::domain::{Actor, AuditAction, AuditEntry, Digest};
use crate::storage::layout::{self, KeyKind};
use crate::storage::StoredObject;

/// Stray objects handled per run at most; the rest wait for the next one.
const MAX_STRAYS_PER_RUN: usize = 10_000;

/// A claim older than this belongs to an upload that died.
pub(crate) const CLAIM_TTL_MS: i64 = 6 * 3600 * 1000;

#[derive(Debug, Default, Clone, Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    pub blobs_deleted: u64,
    pub bytes_freed: u64,
    pub uploads_deleted: u64,
    /// Deletions a previous, interrupted run had started.
    pub resumed: u64,
    /// Objects in the store that nothing in the database accounts for.
    pub strays_deleted: u64,
    pub stray_bytes_freed: u64,
}

impl Registry {
    /// `POST /api/v1/gc/runs`, `wharf gc`, and the schedule.
    pub(super) async fn collect_garbage(&self, actor: &Actor, dry_run: bool) -> Result<GcReport, RegistryError> {
        let cfg = self.maintenance.gc.clone();
        let mut report = GcReport { dry_run, ..Default::default() };
        if !dry_run {
            report.resumed = self.finish_pending(cfg.batch_size).await?;
        }
        let now = crate::domain::now_ms();
        let cutoff = now - cfg.grace.as_millis() as i64;
        let claims_since = now - CLAIM_TTL_MS;
        let mut after = String::new();
        loop {
            let (a, limit) = (after.clone(), cfg.batch_size);
            let batch = self.db.read(move |c| c.gc_candidates(&a, cutoff, claims_since, limit)).await?;
            let Some(last) = batch.last() else { break };
            after = last.0.to_string();
            let full = batch.len() as u32 == cfg.batch_size;
            if dry_run {
                let policy = self.policy.clone();
                let collectable = self
                    .db
                    .read(move |c| -> Result<Vec<(Digest, u64)>, RegistryError> {
                        let mut protection = ProtectionCache::default();
                        let mut out = Vec::with_capacity(batch.len());
                        for (digest, size) in batch {
                            if protection.blob_kept_by(c, &policy, &digest)?.is_none() {
                                out.push((digest, size));
                            }
                        }
                        Ok(out)
                    })
                    .await?;
                report.blobs_deleted += collectable.len() as u64;
                report.bytes_freed += collectable.iter().map(|(_, size)| size).sum::<u64>();
            } else {
                let (actor, policy) = (actor.clone(), self.policy.clone());
                let taken = self
                    .db
                    .write(move |tx| -> Result<Vec<(Digest, u64)>, RegistryError> {
                        // The one protection rule is asked too, though "no
                        // manifest references it" already implies it: it also
                        // reads protected manifests' own bytes.
                        let mut protection = ProtectionCache::default();
                        let mut taken = Vec::new();
                        for (digest, _) in batch {
                            if let Some(why) = protection.blob_kept_by(tx, &policy, &digest)? {
                                tracing::error!(%digest, why, "GC candidate is protected: its reference rows are incomplete; kept");
                                continue;
                            }
                            if let Some(size) = tx.gc_take(&digest, cutoff, claims_since)? {
                                audit_collect(tx, &actor, &digest, json!({"size": size}))?;
                                taken.push((digest, size));
                            }
                        }
                        Ok(taken)
                    })
                    .await?;
                self.delete_collected(&taken).await?;
                report.blobs_deleted += taken.len() as u64;
                report.bytes_freed += taken.iter().map(|(_, size)| size).sum::<u64>();
            }
            if !full {
                break;
            }
        }
        report.uploads_deleted = self.expire_uploads(actor, dry_run).await?;
        if self.maintenance.gc.sweep_strays {
            self.sweep_strays(actor, dry_run, &mut report).await?;
        }
        if !dry_run {
            self.db.write(move |tx| tx.drop_stale_claims(claims_since)).await?;
        }
        tracing::info!(
            dry_run,
            blobs = report.blobs_deleted,
            bytes = report.bytes_freed,
            uploads = report.uploads_deleted,
            resumed = report.resumed,
            strays = report.strays_deleted,
            "garbage collection finished"
        );
        Ok(report)
    }

    /// Deletes the bytes of blobs already unlisted, then their pending rows.
    async fn delete_collected(&self, blobs: &[(Digest, u64)]) -> Result<(), RegistryError> {
        for (digest, _) in blobs {
            self.blobs.delete(&layout::blob(digest)).await?;
        }
        let digests: Vec<Digest> = blobs.iter().map(|(d, _)| d.clone()).collect();
        self.db
            .write(move |tx| -> Result<(), RegistryError> {
                for d in &digests {
                    tx.gc_finish(d)?;
                }
                Ok(())
            })
            .await
    }

    /// Finishes deletions a crashed run left in `gc_pending`.
    async fn finish_pending(&self, batch: u32) -> Result<u64, RegistryError> {
        let mut done = 0;
        loop {
            let pending = self.db.read(move |c| c.gc_pending(batch)).await?;
            if pending.is_empty() {
                return Ok(done);
            }
            done += pending.len() as u64;
            self.delete_collected(&pending).await?;
        }
    }

    /// Removes upload sessions idle longer than `gc.upload_max_age`, with their parts.
    async fn expire_uploads(&self, actor: &Actor, dry_run: bool) -> Result<u64, RegistryError> {
        let cfg = &self.maintenance.gc;
        let before = crate::domain::now_ms() - cfg.upload_max_age.as_millis() as i64;
        let limit = cfg.batch_size;
        let mut count = 0;
        loop {
            let stale = self.db.read(move |c| c.stale_uploads(before, limit)).await?;
            if stale.is_empty() || dry_run {
                return Ok(count + stale.len() as u64);
            }
            for (id, parts) in stale {
                let (upload_id, actor) = (id.clone(), actor.clone());
                let deleted = self
                    .db
                    .write(move |tx| -> Result<bool, RegistryError> {
                        let deleted = tx.delete_stale_upload(&upload_id, before)?;
                        if deleted {
                            record(tx, &AuditEntry::new(&actor, AuditAction::UploadExpire).reference(&upload_id))?;
                        }
                        Ok(deleted)
                    })
                    .await?;
                // Row first, bytes after: a crash in between leaves only
                // unlisted part objects, never a session missing its parts.
                if deleted {
                    count += 1;
                    self.blobs.delete_upload(id.as_str(), &parts).await?;
                }
            }
        }
    }

    /// Lists the store and deletes what nothing accounts for (module docs).
    /// Candidates are gathered first and deleted after the listing, so the
    /// walk never meets a directory it has just emptied.
    async fn sweep_strays(&self, actor: &Actor, dry_run: bool, report: &mut GcReport) -> Result<(), RegistryError> {
        use futures::TryStreamExt;
        let cfg = &self.maintenance.gc;
        let now = crate::domain::now_ms();
        let blob_cutoff = now - cfg.grace.as_millis() as i64;
        let upload_cutoff = now - cfg.upload_max_age.as_millis() as i64;
        let claims_since = now - CLAIM_TTL_MS;
        let mut found: Vec<(StoredObject, KeyKind)> = Vec::new();
        'listing: for prefix in layout::roots() {
            let mut objects = self.blobs.list(&prefix);
            while let Some(object) = objects.try_next().await? {
                let kind = layout::classify(&object.key);
                let old_enough = match kind {
                    KeyKind::Blob(_) => object.modified_ms < blob_cutoff,
                    KeyKind::Upload(_) | KeyKind::Temporary => object.modified_ms < upload_cutoff,
                    KeyKind::Other => false,
                };
                if old_enough {
                    found.push((object, kind));
                    if found.len() >= MAX_STRAYS_PER_RUN {
                        break 'listing;
                    }
                }
            }
        }
        for (object, kind) in found {
            let stray = match &kind {
                KeyKind::Blob(digest) => self.collect_stray_blob(actor, digest, object.size, claims_since, dry_run).await?,
                // An object under uploads/ whose name is no upload id belongs to no session.
                KeyKind::Upload(id) => match UploadId::parse(id) {
                    Ok(upload_id) => !self.db.read(move |tx| tx.upload_exists(&upload_id)).await?,
                    Err(_) => true,
                },
                KeyKind::Temporary => true,
                KeyKind::Other => false,
            };
            if !stray {
                continue;
            }
            if !dry_run && !matches!(kind, KeyKind::Blob(_)) {
                self.blobs.delete(&object.key).await?;
            }
            tracing::info!(key = %object.key, size = object.size, dry_run, "stray object collected");
            report.strays_deleted += 1;
            report.stray_bytes_freed += object.size;
        }
        Ok(())
    }

    /// Stray bytes at `digest`'s address: whether they are (or, in a dry
    /// run, would be) collected. Taken through `gc_pending` like any blob,
    /// so an upload of the same digest waits until they are gone.
    async fn collect_stray_blob(
        &self,
        actor: &Actor,
        digest: &Digest,
        size: u64,
        claims_since: i64,
        dry_run: bool,
    ) -> Result<bool, RegistryError> {
        let d = digest.clone();
        if dry_run {
            return Ok(!self.db.read(move |c| c.stray_is_known(&d, claims_since)).await?);
        }
        let actor = actor.clone();
        let taken = self
            .db
            .write(move |tx| -> Result<bool, RegistryError> {
                let taken = tx.take_stray(&d, size, claims_since)?;
                if taken {
                    audit_collect(tx, &actor, &d, json!({"size": size, "stray": true}))?;
                }
                Ok(taken)
            })
            .await?;
        if taken {
            self.delete_collected(&[(digest.clone(), size)]).await?;
        }
        Ok(taken)
    }
}

/// The audit row of a collected blob.
fn audit_collect(tx: &dyn Tx, actor: &Actor, digest: &Digest, details: serde_json::Value) -> Result<(), RegistryError> {
    record(tx, &AuditEntry::new(actor, AuditAction::BlobCollect).digest(digest).details(details))
}
