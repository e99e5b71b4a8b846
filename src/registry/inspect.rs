//! One manifest as people read it (the console's manifest page): an index's
//! platforms, an image's configuration and layers with the history that
//! made them, its referrers. Read-only, and every read is bounded: a config
//! blob over [`MAX_CONFIG_BYTES`] is named, not loaded.

use futures::StreamExt;
use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};

use super::{Registry, RegistryError};
use crate::domain::{Digest, MediaType, Reference, RepoName};
use crate::storage::layout;

/// The largest image configuration read to show it.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

pub struct ManifestView {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub subject: Option<String>,
    pub body: ManifestBody,
    pub referrers: Vec<ReferrerLine>,
}

pub enum ManifestBody {
    Index {
        children: Vec<ChildLine>,
    },
    Image {
        config_digest: String,
        config: Result<Box<ConfigSummary>, String>,
        layers: Vec<LayerLine>,
    },
    /// A manifest Wharf stores but cannot show in detail.
    Other,
}

pub struct ChildLine {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    /// `os/arch[/variant]`, or empty when the index names none.
    pub platform: String,
}

pub struct LayerLine {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    /// The history entry that made the layer (`created_by`), if recorded.
    pub created_by: String,
}

#[derive(Default)]
pub struct ConfigSummary {
    pub platform: String,
    pub created: String,
    pub user: String,
    pub working_dir: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub ports: Vec<String>,
    /// Sorted by key.
    pub labels: Vec<(String, String)>,
}

pub struct ReferrerLine {
    pub digest: String,
    pub artifact_type: String,
    pub size: u64,
}

impl Registry {
    /// The bytes of a small JSON blob (an image configuration): `None` when
    /// it is larger than `max`, so no client-chosen size is ever loaded.
    pub(crate) async fn read_small_blob(&self, digest: &Digest, max: u64) -> Result<Option<Vec<u8>>, RegistryError> {
        let key = digest.clone();
        let size = self.db.read(move |tx| tx.blob_size(&key)).await?.ok_or_else(|| RegistryError::BlobUnknown(digest.to_string()))?;
        if size > max {
            return Ok(None);
        }
        let mut bytes = Vec::with_capacity(size as usize);
        if size > 0 {
            let mut stream = self.blobs.read(&layout::blob(digest), Some(0..size)).await?;
            while let Some(chunk) = stream.next().await {
                bytes.extend_from_slice(&chunk?);
            }
        }
        Ok(Some(bytes))
    }

    /// What the manifest `reference` names, for people to read.
    pub async fn inspect_manifest(&self, repo: &RepoName, reference: &Reference) -> Result<ManifestView, RegistryError> {
        let stored = self.get_manifest(repo, reference).await?;
        let media_type: Option<MediaType> = stored.media_type.parse().ok();
        let (mut artifact_type, mut subject) = (None, None);
        let body = match media_type {
            Some(t) if t.is_index() => match serde_json::from_slice::<ImageIndex>(&stored.content) {
                Ok(index) => {
                    artifact_type = index.artifact_type().as_ref().map(ToString::to_string);
                    subject = index.subject().as_ref().map(|s| s.digest().to_string());
                    ManifestBody::Index { children: index.manifests().iter().map(child_line).collect() }
                }
                Err(_) => ManifestBody::Other,
            },
            Some(_) => match serde_json::from_slice::<ImageManifest>(&stored.content) {
                Ok(m) => {
                    artifact_type = m.artifact_type().as_ref().map(ToString::to_string);
                    subject = m.subject().as_ref().map(|s| s.digest().to_string());
                    self.image_body(&m).await?
                }
                Err(_) => ManifestBody::Other,
            },
            None => ManifestBody::Other,
        };
        let referrers = self
            .referrers(repo, &stored.digest, None)
            .await?
            .into_iter()
            .map(|d| ReferrerLine {
                digest: d["digest"].as_str().unwrap_or_default().to_owned(),
                artifact_type: d["artifactType"].as_str().or(d["mediaType"].as_str()).unwrap_or_default().to_owned(),
                size: d["size"].as_u64().unwrap_or(0),
            })
            .collect();
        Ok(ManifestView {
            size: stored.content.len() as u64,
            digest: stored.digest,
            media_type: stored.media_type,
            artifact_type,
            subject,
            body,
            referrers,
        })
    }

    async fn image_body(&self, m: &ImageManifest) -> Result<ManifestBody, RegistryError> {
        let config_digest = m.config().digest().to_string();
        let config = match Digest::parse(&config_digest) {
            Err(e) => Err(e.to_string()),
            Ok(d) => match self.read_small_blob(&d, MAX_CONFIG_BYTES).await {
                Ok(Some(bytes)) => {
                    serde_json::from_slice::<ImageConfiguration>(&bytes).map_err(|e| format!("not an image configuration: {e}"))
                }
                Ok(None) => Err(format!("larger than {MAX_CONFIG_BYTES} bytes; not shown")),
                Err(RegistryError::BlobUnknown(_)) => Err("not in the registry".into()),
                Err(e) => return Err(e),
            },
        };
        // History entries that made no layer are skipped to pair the rest with the layers, in order.
        let history: Vec<String> = config
            .as_ref()
            .ok()
            .and_then(|c| c.history().as_ref())
            .map(|h| h.iter().filter(|e| !e.empty_layer().unwrap_or(false)).map(|e| e.created_by().clone().unwrap_or_default()).collect())
            .unwrap_or_default();
        let layers = m
            .layers()
            .iter()
            .enumerate()
            .map(|(i, l)| LayerLine {
                digest: l.digest().to_string(),
                media_type: l.media_type().to_string(),
                size: l.size(),
                created_by: history.get(i).cloned().unwrap_or_default(),
            })
            .collect();
        Ok(ManifestBody::Image { config_digest, config: config.map(|c| Box::new(summary(&c))), layers })
    }
}

fn child_line(d: &oci_spec::image::Descriptor) -> ChildLine {
    let platform = d
        .platform()
        .as_ref()
        .map(|p| {
            let mut s = format!("{}/{}", p.os(), p.architecture());
            if let Some(v) = p.variant() {
                s.push('/');
                s.push_str(v);
            }
            s
        })
        .unwrap_or_default();
    ChildLine { digest: d.digest().to_string(), media_type: d.media_type().to_string(), size: d.size(), platform }
}

fn summary(c: &ImageConfiguration) -> ConfigSummary {
    let mut s = ConfigSummary {
        platform: format!("{}/{}", c.os(), c.architecture()),
        created: c.created().clone().unwrap_or_default(),
        ..Default::default()
    };
    if let Some(cfg) = c.config() {
        s.user = cfg.user().clone().unwrap_or_default();
        s.working_dir = cfg.working_dir().clone().unwrap_or_default();
        s.entrypoint = cfg.entrypoint().clone().unwrap_or_default();
        s.cmd = cfg.cmd().clone().unwrap_or_default();
        s.env = cfg.env().clone().unwrap_or_default();
        s.ports = cfg.exposed_ports().clone().unwrap_or_default();
        let mut labels: Vec<(String, String)> = cfg.labels().clone().unwrap_or_default().into_iter().collect();
        labels.sort();
        s.labels = labels;
    }
    s
}
