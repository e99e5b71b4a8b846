//! Image diff use-case: `GET /api/v1/repositories/<name>/diff`.
//!
//! Resolves both sides to image manifests (an index by platform), makes
//! sure every layer has a file index (read from the `layer_index` table, or
//! computed once from the blob and stored), then merges and compares on a
//! blocking thread with the pure functions of `crate::diff`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::sync::Arc;

use futures::TryStreamExt;
use serde_json::Value;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::{Registry, RegistryError};
use crate::config::diff::DiffConfig;
/// A release's diff summary as stored, for the history endpoint.
pub use crate::db::layer_index::{ReleaseDiffRow, ReleaseDiffState};
use crate::db::DbError;
use crate::diff::config::{diff_configs, layer_history, ConfigChange};
use crate::diff::files::Change;
use crate::diff::index::SourceError;
use crate::diff::packages::{diff_packages, PackageChanges, PACKAGE_DBS};
use crate::diff::{diff_files, index_layer, merge_layers, FileEntry, LayerError, LayerIndex, Limits, Merged};
use crate::domain::{Digest, ImageRef, MediaType, Platform, Reference, RepoName, Stage};
use crate::storage::layout;

/// Image configurations larger than this are refused (real ones are KBs).
const MAX_CONFIG_BYTES: u64 = 4 << 20;
/// Level 3: a 100k-entry index compresses ~8× in a few milliseconds.
const INDEX_ZSTD_LEVEL: i32 = 3;

/// The diff bounds, and the one slot background release summaries share
/// (so a burst of promotions indexes one image at a time).
pub struct DiffSettings {
    pub config: DiffConfig,
    pub(crate) background: tokio::sync::Semaphore,
}

impl DiffSettings {
    pub fn new(config: DiffConfig) -> Self {
        Self { config, background: tokio::sync::Semaphore::new(1) }
    }

    fn limits(&self) -> Limits {
        let c = &self.config;
        Limits {
            max_entries: c.max_entries,
            max_total_size: c.max_layer_bytes,
            max_path_len: c.max_path_len,
            max_time: c.max_layer_time,
            max_package_db: c.max_package_db_bytes,
            ..Limits::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("layer {digest}: {source}")]
    Layer { digest: String, source: LayerError },
    #[error("{reference} is an index: name a platform (platform=<os>/<arch>), one of: {available}")]
    PlatformRequired { reference: String, available: String },
    #[error("{reference} has no image for platform {platform}; it has: {available}")]
    PlatformUnknown { reference: String, platform: String, available: String },
    #[error("{reference} is not an image (media type {media_type})")]
    NotAnImage { reference: String, media_type: String },
    #[error("image configuration {digest}: {reason}")]
    ConfigInvalid { digest: String, reason: String },
    #[error("the stored index of layer {0} does not decode: {1}")]
    IndexCorrupt(String, String),
    #[error("diff task failed: {0}")]
    Task(String),
}

impl DiffError {
    /// Whether the server, not the image, is at fault (storage failed reading
    /// a layer, a stored index does not decode, the task died).
    pub fn is_server_fault(&self) -> bool {
        matches!(self, DiffError::Layer { source: LayerError::Source(_), .. } | DiffError::IndexCorrupt(..) | DiffError::Task(_))
    }
}

impl From<DbError> for DiffError {
    fn from(e: DbError) -> Self {
        DiffError::Registry(e.into())
    }
}

/// What to compare, and which page of the files to return.
pub struct DiffRequest {
    pub from: ImageRef,
    pub to: ImageRef,
    pub platform: Option<Platform>,
    /// Only paths after this one (the previous page's last path).
    pub after: Option<String>,
    pub limit: usize,
}

/// One side, resolved.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    pub reference: String,
    /// The digest the reference names (an index's, if it is one).
    pub digest: String,
    /// The image manifest compared (the index child chosen, or `digest`).
    pub manifest: String,
    pub platform: Option<String>,
    pub config_digest: String,
    pub layers: Vec<LayerDesc>,
}

#[derive(Debug, Clone)]
pub struct LayerDesc {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

#[derive(Debug, Clone)]
pub struct LayerLine {
    pub digest: String,
    pub size: u64,
    pub history: Option<String>,
}

/// One path that differs, owned (the page leaves the blocking thread).
#[derive(Debug, Clone)]
pub struct FileDiff {
    pub path: String,
    pub change: Change,
    pub from: Option<FileEntry>,
    pub to: Option<FileEntry>,
}

#[derive(Debug, Clone, Default)]
pub struct DiffSummary {
    pub files_added: u64,
    pub files_removed: u64,
    pub files_modified: u64,
    pub bytes_added: u64,
    pub bytes_removed: u64,
    /// Content bytes of the `to` side of modified entries minus the `from` side.
    pub bytes_modified_delta: i64,
    pub config_changes: u64,
    pub layers_shared: u64,
    pub layers_added: u64,
    pub layers_removed: u64,
    /// Layers read from storage by this request (their index was new).
    pub layers_indexed: u64,
    /// Layers whose stored index was used.
    pub layers_cached: u64,
    pub packages_added: u64,
    pub packages_removed: u64,
    pub packages_changed: u64,
}

/// The operating-system packages of both sides, where either carries a
/// package database.
#[derive(Debug, Clone, Default)]
pub struct PackageReport {
    /// The databases found (`dpkg`, `apk`), on either side.
    pub databases: Vec<&'static str>,
    pub changes: PackageChanges,
    /// Databases present but not read (larger than `diff.max_package_db_bytes`).
    pub skipped: Vec<String>,
}

pub struct DiffReport {
    pub from: ResolvedImage,
    pub to: ResolvedImage,
    pub config: Vec<ConfigChange>,
    pub shared: Vec<LayerLine>,
    pub removed: Vec<LayerLine>,
    pub added: Vec<LayerLine>,
    pub files: Vec<FileDiff>,
    /// The cursor of the next page of `files`, if there is one.
    pub next: Option<String>,
    pub packages: Option<PackageReport>,
    pub summary: DiffSummary,
}

fn is_image(media_type: &str) -> bool {
    media_type.parse::<MediaType>().is_ok_and(MediaType::is_image)
}

fn platform_of(child: &Value) -> (String, String, Option<String>) {
    let p = &child["platform"];
    let s = |k: &str| p[k].as_str().map(str::to_owned);
    (s("os").unwrap_or_else(|| "unknown".into()), s("architecture").unwrap_or_else(|| "unknown".into()), s("variant"))
}

fn platform_text((os, arch, variant): &(String, String, Option<String>)) -> String {
    match variant {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    }
}

fn invalid_manifest(e: impl std::fmt::Display) -> DiffError {
    RegistryError::ManifestInvalid(e.to_string()).into()
}

impl Registry {
    /// The bounds of image diff (`[diff]`).
    pub fn diff_config(&self) -> &DiffConfig {
        &self.diff.config
    }

    /// Compares two images of `repo`.
    pub async fn diff(&self, repo: &RepoName, request: DiffRequest) -> Result<DiffReport, DiffError> {
        let from = self.resolve_image(repo, &request.from, request.platform.as_ref()).await?;
        let to = self.resolve_image(repo, &request.to, request.platform.as_ref()).await?;
        let from_config = self.read_config(&from.config_digest).await?;
        let to_config = self.read_config(&to.config_digest).await?;

        let mut summary = DiffSummary::default();
        let mut indexes: HashMap<String, Arc<LayerIndex>> = HashMap::new();
        for layer in from.layers.iter().chain(&to.layers) {
            if indexes.contains_key(&layer.digest) {
                continue;
            }
            let (index, fresh) = self.layer_index(layer).await?;
            if fresh {
                summary.layers_indexed += 1;
            } else {
                summary.layers_cached += 1;
            }
            indexes.insert(layer.digest.clone(), index);
        }

        let config = diff_configs(&from_config, &to_config);
        summary.config_changes = config.len() as u64;
        let (shared, removed, added) = layer_lines(&from, &from_config, &to, &to_config);
        summary.layers_shared = shared.len() as u64;
        summary.layers_removed = removed.len() as u64;
        summary.layers_added = added.len() as u64;

        let from_layers: Vec<Arc<LayerIndex>> = from.layers.iter().filter_map(|l| indexes.get(&l.digest).cloned()).collect();
        let to_layers: Vec<Arc<LayerIndex>> = to.layers.iter().filter_map(|l| indexes.get(&l.digest).cloned()).collect();
        let (after, limit) = (request.after, request.limit);
        // Merging and comparing 100k-entry trees is CPU work: not on an actix worker.
        let (files, next, packages, summary) = tokio::task::spawn_blocking(move || {
            let a: Vec<&[FileEntry]> = from_layers.iter().map(|l| l.entries.as_slice()).collect();
            let b: Vec<&[FileEntry]> = to_layers.iter().map(|l| l.entries.as_slice()).collect();
            let (fm, tm) = (merge_layers(&a), merge_layers(&b));
            let mut summary = summary;
            let packages = package_report(&fm, &from_layers, &tm, &to_layers);
            if let Some(p) = &packages {
                summary.packages_added = p.changes.added.len() as u64;
                summary.packages_removed = p.changes.removed.len() as u64;
                summary.packages_changed = p.changes.changed.len() as u64;
            }
            let mut page = Vec::new();
            let mut next = None;
            for c in diff_files(&fm, &tm) {
                let size = |e: Option<&FileEntry>| e.map_or(0, |e| e.size);
                match c.change {
                    Change::Added => {
                        summary.files_added += 1;
                        summary.bytes_added += size(c.to);
                    }
                    Change::Removed => {
                        summary.files_removed += 1;
                        summary.bytes_removed += size(c.from);
                    }
                    Change::Modified => {
                        summary.files_modified += 1;
                        summary.bytes_modified_delta += size(c.to) as i64 - size(c.from) as i64;
                    }
                }
                if after.as_deref().is_some_and(|a| c.path <= a) {
                    continue;
                }
                if page.len() < limit {
                    page.push(FileDiff { path: c.path.to_owned(), change: c.change, from: c.from.cloned(), to: c.to.cloned() });
                } else if next.is_none() {
                    next = page.last().map(|p: &FileDiff| p.path.clone());
                }
            }
            (page, next, packages, summary)
        })
        .await
        .map_err(|e| DiffError::Task(e.to_string()))?;

        Ok(DiffReport { from, to, config, shared, removed, added, files, next, packages, summary })
    }

    /// The image manifest a reference names, its config and layers.
    async fn resolve_image(&self, repo: &RepoName, reference: &ImageRef, platform: Option<&Platform>) -> Result<ResolvedImage, DiffError> {
        let (name, r) = (repo.clone(), reference.clone());
        let digest = self
            .db
            .read(move |tx| -> Result<String, RegistryError> {
                let repo_id = tx.repository_id(&name)?.ok_or_else(|| RegistryError::NameUnknown(name.to_string()))?;
                let unknown = || RegistryError::ManifestUnknown(r.to_string());
                match &r {
                    ImageRef::Reference(Reference::Digest(d)) => Ok(d.to_string()),
                    ImageRef::Reference(Reference::Tag(t)) => Ok(tx.tag_target(repo_id, t)?.ok_or_else(unknown)?.to_string()),
                    ImageRef::Release { stage, sequence } => {
                        Ok(tx.release(repo_id, &Stage::parse(stage.as_str())?, *sequence)?.ok_or_else(unknown)?.digest.to_string())
                    }
                }
            })
            .await?;
        let top = self.get_manifest(repo, &Reference::Digest(Digest::parse(&digest).map_err(RegistryError::from)?)).await?;
        let (manifest, chosen_platform) = if is_image(&top.media_type) {
            (top, None)
        } else if top.media_type.parse::<MediaType>().is_ok_and(MediaType::is_index) {
            let index: Value = serde_json::from_slice(&top.content).map_err(invalid_manifest)?;
            let children: Vec<&Value> = index["manifests"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["mediaType"].as_str().is_none_or(is_image))
                // Attestation manifests (buildx) are listed as unknown/unknown.
                .filter(|c| platform_of(c).0 != "unknown")
                .collect();
            let available = || children.iter().map(|c| platform_text(&platform_of(c))).collect::<Vec<_>>().join(", ");
            let chosen = match platform {
                Some(p) => children
                    .iter()
                    .find(|c| {
                        let (os, arch, variant) = platform_of(c);
                        p.matches(&os, &arch, variant.as_deref())
                    })
                    .ok_or_else(|| DiffError::PlatformUnknown {
                        reference: reference.to_string(),
                        platform: p.to_string(),
                        available: available(),
                    })?,
                None if children.len() == 1 => &children[0],
                None => return Err(DiffError::PlatformRequired { reference: reference.to_string(), available: available() }),
            };
            let child = Digest::parse(chosen["digest"].as_str().unwrap_or_default()).map_err(RegistryError::from)?;
            (self.get_manifest(repo, &Reference::Digest(child)).await?, Some(platform_text(&platform_of(chosen))))
        } else {
            return Err(DiffError::NotAnImage { reference: reference.to_string(), media_type: top.media_type });
        };
        if !is_image(&manifest.media_type) {
            return Err(DiffError::NotAnImage { reference: reference.to_string(), media_type: manifest.media_type });
        }
        let json: Value = serde_json::from_slice(&manifest.content).map_err(invalid_manifest)?;
        let config_digest = json["config"]["digest"].as_str().unwrap_or_default().to_owned();
        let mut layers = Vec::new();
        for l in json["layers"].as_array().into_iter().flatten() {
            let digest = Digest::parse(l["digest"].as_str().unwrap_or_default()).map_err(RegistryError::from)?;
            // The size the registry recorded, not the one the manifest claims.
            let size = self.stat_blob(repo, &digest).await?;
            layers.push(LayerDesc { digest: digest.to_string(), size, media_type: l["mediaType"].as_str().unwrap_or_default().to_owned() });
        }
        self.stat_blob(repo, &Digest::parse(&config_digest).map_err(RegistryError::from)?).await?;
        Ok(ResolvedImage {
            reference: reference.to_string(),
            digest,
            manifest: manifest.digest.to_string(),
            platform: chosen_platform,
            config_digest,
            layers,
        })
    }

    async fn read_config(&self, digest: &str) -> Result<Value, DiffError> {
        let d = Digest::parse(digest).map_err(RegistryError::from)?;
        let invalid = |reason: String| DiffError::ConfigInvalid { digest: digest.to_owned(), reason };
        let bytes =
            self.read_small_blob(&d, MAX_CONFIG_BYTES).await?.ok_or_else(|| invalid(format!("larger than {MAX_CONFIG_BYTES} bytes")))?;
        serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))
    }

    /// A layer's index, and whether it was computed (read from storage) now.
    async fn layer_index(&self, layer: &LayerDesc) -> Result<(Arc<LayerIndex>, bool), DiffError> {
        let key = Digest::parse(&layer.digest).map_err(RegistryError::from)?;
        let stored = self
            .db
            .read(move |tx| -> Result<Option<Result<LayerIndex, String>>, DbError> {
                // Decoded here, on the database thread the read runs on.
                Ok(tx.layer_index(&key)?.map(|bytes| decode(&bytes)))
            })
            .await?;
        match stored {
            Some(Ok(index)) => return Ok((Arc::new(index), false)),
            Some(Err(e)) => return Err(DiffError::IndexCorrupt(layer.digest.clone(), e)),
            None => {}
        }
        let digest = Digest::parse(&layer.digest).map_err(RegistryError::from)?;
        let layer_error = |source: LayerError| {
            let outcome = if matches!(source, LayerError::Source(_)) { "error" } else { "refused" };
            metrics::counter!("wharf_diff_layers_indexed_total", "outcome" => outcome).increment(1);
            DiffError::Layer { digest: layer.digest.clone(), source }
        };
        let size = layer.size;
        let limits = self.diff.limits();
        let started = std::time::Instant::now();
        let (index, encoded) = if size == 0 {
            let index = index_layer(io::empty(), &limits).map_err(layer_error)?;
            let encoded = encode(&index).map_err(|e| DiffError::Task(e.to_string()))?;
            (index, encoded)
        } else {
            let stream = self.blobs.read(&layout::blob(&digest), Some(0..size)).await.map_err(RegistryError::from)?;
            let reader = StreamReader::new(stream.map_err(|e| io::Error::other(SourceError(e.to_string()))));
            let bridge = SyncIoBridge::new(reader);
            // tar and the decoders are synchronous: a blocking thread reads
            // the stream the runtime feeds it, never an actix worker.
            tokio::task::spawn_blocking(move || -> Result<(LayerIndex, Vec<u8>), LayerError> {
                let index = index_layer(bridge, &limits)?;
                let encoded = encode(&index).map_err(|e| LayerError::Source(e.to_string()))?;
                Ok((index, encoded))
            })
            .await
            .map_err(|e| DiffError::Task(e.to_string()))?
            .map_err(layer_error)?
        };
        let (key, count, total) = (digest.clone(), index.entries.len() as u64, index.entries.iter().map(|e| e.size).sum::<u64>());
        self.db.write(move |tx| tx.insert_layer_index(&key, count, total, &encoded)).await?;
        metrics::counter!("wharf_diff_layers_indexed_total", "outcome" => "indexed").increment(1);
        metrics::histogram!("wharf_diff_layer_index_seconds").record(started.elapsed().as_secs_f64());
        tracing::info!(layer = %layer.digest, entries = count, elapsed_ms = started.elapsed().as_millis() as u64, "layer indexed");
        Ok((Arc::new(index), true))
    }
}

fn encode(index: &LayerIndex) -> io::Result<Vec<u8>> {
    let json = serde_json::to_vec(index)?;
    zstd::encode_all(json.as_slice(), INDEX_ZSTD_LEVEL)
}

fn decode(bytes: &[u8]) -> Result<LayerIndex, String> {
    let json = zstd::decode_all(bytes).map_err(|e| e.to_string())?;
    serde_json::from_slice(&json).map_err(|e| e.to_string())
}

/// The packages of one merged filesystem: for each database path, the
/// parsed database of the layer whose file the merge shows (matched by
/// content hash). `Err` names a database present but not parsed.
/// A database found on one side: its format and name → version, or why it was not read.
type SidePackages = Result<(&'static str, BTreeMap<String, String>), String>;

fn side_packages(merged: &Merged<'_>, layers: &[Arc<LayerIndex>]) -> Vec<SidePackages> {
    let mut out = Vec::new();
    for (path, format) in PACKAGE_DBS {
        let Some(entry) = merged.get(path) else { continue };
        let parsed = layers.iter().rev().filter_map(|l| l.packages.get(*path)).find(|db| Some(&db.sha256) == entry.sha256.as_ref());
        out.push(match parsed {
            Some(db) => Ok((format.as_str(), db.packages.clone())),
            None => Err(format!("{path} ({} bytes)", entry.size)),
        });
    }
    out
}

fn package_report(fm: &Merged<'_>, fl: &[Arc<LayerIndex>], tm: &Merged<'_>, tl: &[Arc<LayerIndex>]) -> Option<PackageReport> {
    let (a, b) = (side_packages(fm, fl), side_packages(tm, tl));
    if a.is_empty() && b.is_empty() {
        return None;
    }
    let mut report = PackageReport::default();
    let (mut from, mut to) = (BTreeMap::new(), BTreeMap::new());
    for (side, into) in [(a, &mut from), (b, &mut to)] {
        for db in side {
            match db {
                Ok((format, packages)) => {
                    if !report.databases.contains(&format) {
                        report.databases.push(format);
                    }
                    into.extend(packages);
                }
                Err(skipped) => report.skipped.push(skipped),
            }
        }
    }
    report.changes = diff_packages(&from, &to);
    Some(report)
}

/// Layers shared, removed (only in `from`) and added (only in `to`), each
/// with the history line that created it.
fn layer_lines(
    from: &ResolvedImage,
    from_config: &Value,
    to: &ResolvedImage,
    to_config: &Value,
) -> (Vec<LayerLine>, Vec<LayerLine>, Vec<LayerLine>) {
    let lines = |image: &ResolvedImage, config: &Value| -> Vec<LayerLine> {
        let history = layer_history(config);
        image
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| LayerLine { digest: l.digest.clone(), size: l.size, history: history.get(i).cloned().flatten() })
            .collect()
    };
    let (a, b) = (lines(from, from_config), lines(to, to_config));
    let in_from: HashSet<&str> = a.iter().map(|l| l.digest.as_str()).collect();
    let in_to: HashSet<&str> = b.iter().map(|l| l.digest.as_str()).collect();
    let shared = b.iter().filter(|l| in_from.contains(l.digest.as_str())).cloned().collect();
    let removed = a.iter().filter(|l| !in_to.contains(l.digest.as_str())).cloned().collect();
    let added = b.iter().filter(|l| !in_from.contains(l.digest.as_str())).cloned().collect();
    (shared, removed, added)
}
