//! Backup and restore while the server serves.
//!
//! `create`: (1) a fence in the database stops garbage collection from
//! taking any blob (`db::Backups`); (2) one consistent snapshot of the
//! metadata is copied to a local file while writers carry on, and in the
//! same read the blobs it references are listed and the audit chain is
//! walked; (3) those blobs are copied to the destination unless already
//! there (content addresses: a digest present at its size is skipped), each
//! streamed and re-hashed on the way; (4) the snapshot file, the blob list
//! and, last, `manifest.json` are written; (5) the run is recorded and the
//! fence released. A snapshot without its manifest is unfinished and never
//! read. Layout of a destination: `storage::layout` (backup keys).
//!
//! `verify` (verify.rs) and `restore` (restore.rs) read a destination back.

mod restore;
mod verify;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

pub use self::restore::{restore, RestoreReport};
pub use self::verify::{verify, PgCheck, VerifyOutcome};
use super::{Registry, RegistryError};
use crate::config::backup::Destination;
use crate::db::backup::{BackupRun, MetadataCounts};
use crate::db::DbError;
use crate::domain::Digest;
use crate::storage::{layout, BlobStore, StorageError};

/// Blobs copied at once.
const COPIES_IN_FLIGHT: usize = 4;
/// Blob rows read per query when listing a snapshot.
const LIST_BATCH: u32 = 5_000;
/// A running backup renews its fence this often.
const FENCE_RENEW: Duration = Duration::from_secs(60);
/// The manifest's format; a reader refuses a newer one.
const FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("backup destination {0}")]
    Destination(String),
    #[error("no finished backup in {0} (no snapshots/<id>/manifest.json)")]
    NoSnapshot(String),
    /// A blob of the registry's own store is not what its address says:
    /// the backup stops rather than copy damage.
    #[error("blob {digest} in the registry's store: content hashes to {computed} ({size} bytes); the backup stopped")]
    SourceDamaged { digest: Digest, computed: Digest, size: u64 },
    #[error("the backup {location} is damaged; nothing was restored:\n  {}", .problems.join("\n  "))]
    Damaged { location: String, problems: Vec<String> },
    #[error("the restored data failed its check:\n  {}", .problems.join("\n  "))]
    RestoreCheck { problems: Vec<String> },
    #[error("{0}")]
    Refused(String),
}

impl From<RegistryError> for BackupError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Db(e) => BackupError::Db(e),
            RegistryError::Storage(e) => BackupError::Storage(e),
            other => BackupError::Refused(other.to_string()),
        }
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Io { what, source }
}

/// `snapshots/<id>/manifest.json`: what one backup holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupManifest {
    pub format: u32,
    pub snapshot: String,
    pub wharf_version: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// The metadata engine that wrote `wharf.db`.
    pub engine: String,
    pub metadata: FileRecord,
    /// Blobs the snapshot references, and their total size.
    pub blobs: u64,
    pub bytes: u64,
    /// Of those, what this run copied (the rest were already there).
    pub blobs_copied: u64,
    pub bytes_copied: u64,
    pub counts: MetadataCounts,
    pub audit: AuditHead,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileRecord {
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditHead {
    pub rows: u64,
    /// Hash of the newest audit row in the snapshot.
    pub head: String,
    /// Whether the chain verified when the snapshot was taken.
    pub valid: bool,
}

/// What `wharf backup create` reports.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub destination: String,
    #[serde(flatten)]
    pub manifest: BackupManifest,
    /// Older snapshots deleted to keep `backup.keep`, and blobs only they held.
    pub snapshots_pruned: u64,
    pub blobs_pruned: u64,
}

/// What the snapshot's own read saw.
struct SnapshotView {
    blobs: Vec<(Digest, u64)>,
    counts: MetadataCounts,
    audit: AuditHead,
}

/// `backup.pg_dump` / `backup.pg_restore` (config stays below db: built here).
pub fn pg_tools(cfg: &crate::config::backup::BackupConfig) -> crate::db::PgTools {
    crate::db::PgTools { pg_dump: cfg.pg_dump.clone(), pg_restore: cfg.pg_restore.clone() }
}

/// The store of a destination, reachable (S3: one listing, as at start-up).
pub(crate) async fn open_destination(dest: &Destination, s3: &crate::config::S3Config, create: bool) -> Result<BlobStore, BackupError> {
    let store = BlobStore::for_backup(dest, s3, create).map_err(|e| BackupError::Destination(format!("{dest}: {e}")))?;
    store.check().await.map_err(|e| BackupError::Destination(format!("{dest}: {e}")))?;
    Ok(store)
}

/// A private scratch directory, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(parent: &Path, name: &str) -> Result<Self, BackupError> {
        let dir = parent.join(format!(".wharf-{name}-{}", uuid::Uuid::new_v4()));
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(io(dir.display().to_string()))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(dir = %self.0.display(), error = %e, "could not remove a scratch directory");
        }
    }
}

impl Registry {
    /// `wharf backup create` and the schedule (see the module docs).
    pub async fn create_backup(&self, dest: &Destination) -> Result<BackupReport, BackupError> {
        let started = Instant::now();
        let result = self.create_backup_inner(dest).await;
        let outcome = if result.is_ok() { "success" } else { "failure" };
        metrics::counter!("wharf_backup_runs_total", "outcome" => outcome).increment(1);
        if let Ok(report) = &result {
            metrics::gauge!("wharf_backup_last_success_timestamp_seconds").set(crate::domain::now_ms() as f64 / 1000.0);
            metrics::counter!("wharf_backup_blobs_copied_total").increment(report.manifest.blobs_copied);
            metrics::counter!("wharf_backup_bytes_copied_total").increment(report.manifest.bytes_copied);
            tracing::info!(
                destination = %dest,
                snapshot = %report.manifest.snapshot,
                blobs = report.manifest.blobs,
                blobs_copied = report.manifest.blobs_copied,
                bytes_copied = report.manifest.bytes_copied,
                seconds = started.elapsed().as_secs_f64(),
                "backup finished"
            );
        }
        result
    }

    async fn create_backup_inner(&self, dest: &Destination) -> Result<BackupReport, BackupError> {
        let cfg = self.maintenance.backup.clone();
        let store = open_destination(dest, &self.maintenance.backup_s3, true).await?;
        let now = chrono::Utc::now();
        // Sortable, and unique enough for one destination (millisecond, plus a few random digits).
        let id = format!("{}-{}", now.format("%Y%m%dT%H%M%S%3fZ"), &uuid::Uuid::new_v4().simple().to_string()[..6]);
        let ttl = cfg.fence_ttl.as_millis() as i64;
        let fence = id.clone();
        self.db.write(move |tx| tx.take_backup_fence(&fence, crate::domain::now_ms() + ttl)).await?;
        let result = self.copy_snapshot(&store, &id, now, ttl).await;
        let fence = id.clone();
        match result {
            Ok(manifest) => {
                let run = BackupRun {
                    id: id.clone(),
                    finished_at: crate::domain::now_ms(),
                    destination: dest.to_string(),
                    blobs: manifest.blobs,
                    bytes: manifest.bytes,
                    blobs_copied: manifest.blobs_copied,
                    bytes_copied: manifest.bytes_copied,
                };
                self.db
                    .write(move |tx| {
                        tx.record_backup(&run)?;
                        tx.release_backup_fence(&fence)
                    })
                    .await?;
                let (snapshots_pruned, blobs_pruned) = if cfg.keep > 0 { prune(&store, cfg.keep as usize).await? } else { (0, 0) };
                Ok(BackupReport { destination: dest.to_string(), manifest, snapshots_pruned, blobs_pruned })
            }
            Err(e) => {
                if let Err(release) = self.db.write(move |tx| tx.release_backup_fence(&fence)).await {
                    tracing::warn!(error = %release, "could not release the backup fence; it expires on its own");
                }
                Err(e)
            }
        }
    }

    /// Steps (2) to (4) of the module docs; the fence is held by the caller.
    async fn copy_snapshot(
        &self,
        store: &BlobStore,
        id: &str,
        now: chrono::DateTime<chrono::Utc>,
        fence_ttl_ms: i64,
    ) -> Result<BackupManifest, BackupError> {
        let scratch = Scratch::new(&std::env::temp_dir(), "backup")?;
        let file = scratch.0.join("wharf.db");
        let tools = pg_tools(&self.maintenance.backup);
        let view = self
            .db
            .snapshot_into_with(file.clone(), tools, |tx| -> Result<SnapshotView, DbError> {
                let blobs = verify::all_blobs(tx)?;
                let counts = tx.metadata_counts()?;
                let chain = super::audit::verify_chain(tx)?;
                Ok(SnapshotView { blobs, counts, audit: AuditHead { rows: chain.rows_checked, head: chain.head_hash, valid: chain.valid } })
            })
            .await?;
        if !view.audit.valid {
            tracing::warn!(snapshot = id, "the audit chain does not verify in this snapshot; backed up as it is");
        }

        // What the destination holds already, listed once.
        let mut present: HashMap<String, u64> = HashMap::new();
        let mut listing = store.list(&layout::blobs_root());
        while let Some(object) = listing.try_next().await? {
            present.insert(object.key.to_string(), object.size);
        }
        let todo: Vec<(Digest, u64)> =
            view.blobs.iter().filter(|(d, size)| present.get(layout::blob(d).as_ref()) != Some(size)).cloned().collect();
        let (mut blobs_copied, mut bytes_copied) = (0u64, 0u64);
        let mut renewed = Instant::now();
        for chunk in todo.chunks(64) {
            let copies = futures::stream::iter(chunk.iter().cloned()).map(|(digest, size)| self.copy_blob(store, digest, size));
            let mut copies = copies.buffer_unordered(COPIES_IN_FLIGHT);
            while let Some(size) = copies.try_next().await? {
                blobs_copied += 1;
                bytes_copied += size;
            }
            if renewed.elapsed() >= FENCE_RENEW {
                let fence = id.to_owned();
                self.db.write(move |tx| tx.take_backup_fence(&fence, crate::domain::now_ms() + fence_ttl_ms)).await?;
                renewed = Instant::now();
            }
        }

        let (sha, size) = store.put_file(&file, &layout::backup_metadata(id)).await?;
        let list: String = view.blobs.iter().map(|(d, s)| format!("{d} {s}\n")).collect();
        store.put_bytes(&layout::backup_blob_list(id), list.into()).await?;
        let manifest = BackupManifest {
            format: FORMAT,
            snapshot: id.to_owned(),
            wharf_version: env!("CARGO_PKG_VERSION").to_owned(),
            created_at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            engine: self.db.engine_name().into(),
            metadata: FileRecord { size, sha256: sha.to_string() },
            blobs: view.blobs.len() as u64,
            bytes: view.blobs.iter().map(|(_, s)| s).sum(),
            blobs_copied,
            bytes_copied,
            counts: view.counts,
            audit: view.audit,
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Refused(format!("manifest: {e}")))?;
        store.put_bytes(&layout::backup_manifest(id), json.into()).await?;
        Ok(manifest)
    }

    /// Copies one blob, checking on the way that it is what its address says.
    async fn copy_blob(&self, to: &BlobStore, digest: Digest, size: u64) -> Result<u64, BackupError> {
        let key = layout::blob(&digest);
        let (computed, copied) = self.blobs.copy_to(to, &key, digest.algorithm()).await?;
        if computed != digest || copied != size {
            to.delete(&key).await?;
            return Err(BackupError::SourceDamaged { digest, computed, size: copied });
        }
        Ok(size)
    }

    /// When the last backup finished (ms), for the gauge.
    pub async fn last_backup_at(&self) -> Result<Option<i64>, RegistryError> {
        Ok(self.db.read(|tx| tx.last_backup_at()).await?)
    }
}

/// Finished snapshots of a destination (those with a manifest), oldest
/// first, and whether an unfinished one newer than them all exists (a
/// backup under way).
pub(crate) async fn snapshots(store: &BlobStore) -> Result<(Vec<String>, bool), BackupError> {
    let mut ids: HashMap<String, bool> = HashMap::new();
    let mut listing = store.list(&layout::backup_snapshots());
    while let Some(object) = listing.try_next().await? {
        if let Some(id) = layout::backup_snapshot_of(&object.key) {
            let finished = object.key == layout::backup_manifest(&id);
            *ids.entry(id).or_default() |= finished;
        }
    }
    let mut finished: Vec<String> = ids.iter().filter(|(_, f)| **f).map(|(id, _)| id.clone()).collect();
    finished.sort();
    let newest = finished.last().cloned().unwrap_or_default();
    let running = ids.iter().any(|(id, f)| !*f && *id > newest);
    Ok((finished, running))
}

/// Deletes all but the newest `keep` snapshots, then the blobs no kept
/// snapshot lists. Skipped while another backup writes to the destination:
/// it may rely on a blob that only an old snapshot lists.
async fn prune(store: &BlobStore, keep: usize) -> Result<(u64, u64), BackupError> {
    let (finished, running) = snapshots(store).await?;
    if finished.len() <= keep {
        return Ok((0, 0));
    }
    if running {
        tracing::info!("another backup is writing to this destination; old snapshots are pruned next time");
        return Ok((0, 0));
    }
    let (old, kept) = finished.split_at(finished.len() - keep);
    for id in old {
        // The manifest first: a snapshot half-deleted is then merely unfinished.
        store.delete(&layout::backup_manifest(id)).await?;
        store.delete(&layout::backup_blob_list(id)).await?;
        store.delete(&layout::backup_metadata(id)).await?;
    }
    let mut wanted: HashSet<String> = HashSet::new();
    for id in kept {
        let list = store.get_bytes(&layout::backup_blob_list(id)).await?;
        for line in String::from_utf8_lossy(&list).lines() {
            if let Some(Ok(digest)) = line.split(' ').next().map(Digest::parse) {
                wanted.insert(layout::blob(&digest).to_string());
            }
        }
    }
    let mut unwanted = Vec::new();
    let mut listing = store.list(&layout::blobs_root());
    while let Some(object) = listing.try_next().await? {
        if !wanted.contains(object.key.as_ref()) {
            unwanted.push(object.key);
        }
    }
    for key in &unwanted {
        store.delete(key).await?;
    }
    Ok((old.len() as u64, unwanted.len() as u64))
}

/// Reads a destination's snapshot manifest (the newest finished one unless
/// `snapshot` names one).
pub(crate) async fn read_manifest(store: &BlobStore, location: &str, snapshot: Option<&str>) -> Result<BackupManifest, BackupError> {
    let id = match snapshot {
        Some(id) => id.to_owned(),
        None => snapshots(store).await?.0.pop().ok_or_else(|| BackupError::NoSnapshot(location.to_owned()))?,
    };
    let key = layout::backup_manifest(&id);
    let bytes = match store.get_bytes(&key).await {
        Err(StorageError::NotFound(_)) => return Err(BackupError::NoSnapshot(format!("{location} (snapshot {id})"))),
        other => other?,
    };
    let manifest: BackupManifest = serde_json::from_slice(&bytes).map_err(|e| BackupError::Damaged {
        location: location.to_owned(),
        problems: vec![format!("{key} is not a backup manifest: {e}")],
    })?;
    if manifest.format > FORMAT {
        return Err(BackupError::Refused(format!(
            "{key} has format {}; this Wharf reads format {FORMAT} (upgrade Wharf to read it)",
            manifest.format
        )));
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    #[test]
    fn manifest_round_trips() {
        let m = super::BackupManifest {
            format: 1,
            snapshot: "20261130T170000000Z-abcdef".into(),
            wharf_version: "0.1.0".into(),
            created_at: "2026-11-30T17:00:00.000Z".into(),
            engine: "sqlite".into(),
            metadata: super::FileRecord { size: 3, sha256: "sha256:00".into() },
            blobs: 2,
            bytes: 10,
            blobs_copied: 1,
            bytes_copied: 4,
            counts: Default::default(),
            audit: super::AuditHead { rows: 5, head: "h".into(), valid: true },
        };
        let back: super::BackupManifest = serde_json::from_slice(&serde_json::to_vec(&m).unwrap()).unwrap();
        assert_eq!((back.snapshot, back.blobs_copied, back.metadata.sha256), (m.snapshot, 1, m.metadata.sha256));
    }
}
