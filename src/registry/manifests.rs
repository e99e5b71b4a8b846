//! Manifest use-cases: put, get, delete. A manifest's JSON is parsed once
//! (oci-spec descriptors in one small serde struct) to find what it
//! references, but stored and served as the exact bytes pushed.

use std::sync::Arc;

use bytes::Bytes;
use oci_spec::image::Descriptor;
use serde::Deserialize;
use serde_json::{error::Category, json, Value};

use super::protection::protected_set;
use super::read_cache;
use super::Tx;
use super::{audited_write, deny, record, Outcome, Registry, RegistryError};
use crate::db::manifests::{Manifest, RefKind};
use crate::db::RepoId;
use crate::domain::{
    is_foreign_layer, Actor, Algorithm, AuditAction, AuditEntry, Digest, MediaType, Reference, RepoName, Tag, UnsupportedMediaType,
};

/// A manifest as served.
pub struct StoredManifest {
    pub digest: Digest,
    pub media_type: String,
    pub content: Bytes,
}

/// What a successful put reports back.
pub struct PutManifest {
    pub digest: Digest,
    pub subject: Option<Digest>,
    /// Every tag now pointing at the manifest because of this push.
    pub tags: Vec<String>,
}

/// A manifest's JSON as Wharf reads it, in one pass: the fields every
/// manifest format shares, with oci-spec's descriptors for what it names.
/// Fields of the other format (an index's `manifests` in an image) are
/// read too and then ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestJson {
    schema_version: Option<Value>,
    media_type: Option<Value>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    /// Kept as JSON so it is stored as pushed.
    annotations: Option<Value>,
}

/// A child of an index: its digest and the platform it is for.
#[derive(Debug, Clone)]
pub(crate) struct Child {
    pub digest: Digest,
    /// `os/architecture`, when the index says.
    pub platform: Option<String>,
}

/// What Wharf extracts from a manifest's JSON.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub media_type: MediaType,
    pub artifact_type: Option<String>,
    pub subject: Option<Digest>,
    /// The annotations object, as JSON text.
    pub annotations: Option<String>,
    /// An image's config blob.
    pub config: Option<Digest>,
    /// The blobs this repository must hold: an image's config and its
    /// distributable layers.
    pub blobs: Vec<Digest>,
    /// An index's child manifests.
    pub children: Vec<Child>,
}

fn invalid(msg: impl Into<String>) -> RegistryError {
    RegistryError::ManifestInvalid(msg.into())
}

fn descriptor_digest(d: &Descriptor) -> Result<Digest, RegistryError> {
    Digest::parse(d.digest().as_ref()).map_err(|e| invalid(format!("descriptor: {e}")))
}

/// Parses and checks a manifest body against the media type the client declared.
pub(crate) fn parse(content_type: Option<&str>, bytes: &[u8]) -> Result<Parsed, RegistryError> {
    // A JSON array would otherwise be read as the struct's fields in order.
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Err(e) => invalid(format!("not valid JSON: {e}")),
            Ok(_) => invalid("not a JSON object"),
        });
    }
    let json: ManifestJson = serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        Category::Data => invalid(format!("manifest: {e}")),
        _ => invalid(format!("not valid JSON: {e}")),
    })?;
    if json.schema_version.as_ref().and_then(Value::as_i64) != Some(2) {
        return Err(invalid("schemaVersion must be 2"));
    }
    let body_type = match &json.media_type {
        Some(Value::String(s)) => Some(s.as_str()),
        None => None,
        Some(_) => return Err(invalid("mediaType must be a string")),
    };
    // Content-Type parameters such as charset are not part of the media type.
    let header_type = content_type.map(|c| c.split(';').next().unwrap_or_default().trim()).filter(|c| !c.is_empty());
    let media_type: MediaType = match (body_type, header_type) {
        (Some(b), Some(h)) if b != h => return Err(invalid(format!("Content-Type {h} does not match the manifest's mediaType {b}"))),
        (Some(t), _) | (None, Some(t)) => t.parse().map_err(|e: UnsupportedMediaType| invalid(e.to_string()))?,
        (None, None) => return Err(invalid("no mediaType in the manifest and no Content-Type")),
    };
    let annotations = match &json.annotations {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) if map.values().all(Value::is_string) => json.annotations.as_ref().map(Value::to_string),
        Some(_) => return Err(invalid("annotations must map strings to strings")),
    };
    let subject = json.subject.as_ref().map(descriptor_digest).transpose()?;
    let artifact_type = json.artifact_type;
    if media_type.is_image() {
        let config = json.config.ok_or_else(|| invalid("image manifest: missing field `config`"))?;
        let layers = json.layers.ok_or_else(|| invalid("image manifest: missing field `layers`"))?;
        let config_digest = descriptor_digest(&config)?;
        let mut blobs = vec![config_digest.clone()];
        for layer in &layers {
            let foreign = is_foreign_layer(layer.media_type().as_ref()) || layer.urls().as_ref().is_some_and(|u| !u.is_empty());
            if !foreign {
                blobs.push(descriptor_digest(layer)?);
            }
        }
        let artifact_type = artifact_type.or_else(|| Some(config.media_type().to_string()));
        Ok(Parsed { media_type, artifact_type, subject, annotations, config: Some(config_digest), blobs, children: vec![] })
    } else {
        let manifests = json.manifests.ok_or_else(|| invalid("image index: missing field `manifests`"))?;
        let children = manifests
            .iter()
            .map(|m| {
                Ok(Child {
                    digest: descriptor_digest(m)?,
                    platform: m.platform().as_ref().map(|p| format!("{}/{}", p.os(), p.architecture())),
                })
            })
            .collect::<Result<Vec<_>, RegistryError>>()?;
        Ok(Parsed { media_type, artifact_type, subject, annotations, config: None, blobs: vec![], children })
    }
}

/// The child manifests and blobs a stored manifest names in its own bytes,
/// or `None` if they no longer parse (they did when pushed).
pub(crate) fn references_in(media_type: &str, content: &[u8]) -> Option<(Vec<String>, Vec<String>)> {
    let parsed = parse(Some(media_type), content).ok()?;
    let children = parsed.children.into_iter().map(|c| c.digest.to_string()).collect();
    Some((children, parsed.blobs.into_iter().map(|d| d.to_string()).collect()))
}

/// Indexes nested deeper than this are not walked for completeness (no
/// real image is); the check then reports them as incomplete.
const MAX_INDEX_DEPTH: usize = 8;

/// The first thing the manifest needs that this repository cannot serve (a
/// child manifest, or a blob a client deleted), or `None` if it pulls
/// completely. Promotion and rollback ask this, so a stage never points at
/// an image that does not pull.
pub(crate) fn missing_content(tx: &dyn Tx, repo_id: RepoId, digest: &Digest) -> Result<Option<String>, RegistryError> {
    let mut pending = vec![(digest.clone(), 0usize)];
    let mut seen = std::collections::HashSet::new();
    while let Some((manifest, depth)) = pending.pop() {
        if !seen.insert(manifest.clone()) {
            continue;
        }
        if depth > MAX_INDEX_DEPTH {
            return Ok(Some(format!("{manifest} is nested more than {MAX_INDEX_DEPTH} indexes deep")));
        }
        if tx.manifest_head(repo_id, &manifest)?.is_none() {
            return Ok(Some(format!("manifest {manifest} is missing")));
        }
        let refs = tx.manifest_references(repo_id, &manifest)?;
        for blob in refs.blobs {
            if tx.linked_blob_size(repo_id, &blob)?.is_none() {
                return Ok(Some(format!("blob {blob} of {manifest} is missing")));
            }
        }
        pending.extend(refs.children.into_iter().map(|c| (c, depth + 1)));
    }
    Ok(None)
}

impl Registry {
    /// `PUT /v2/<name>/manifests/<reference>`.
    pub async fn put_manifest(
        &self,
        actor: &Actor,
        repo: &RepoName,
        reference: &Reference,
        extra_tags: &[Tag],
        content_type: Option<&str>,
        bytes: Bytes,
    ) -> Result<PutManifest, RegistryError> {
        // The tags this push sets: the reference if it is one, plus `?tag=` values.
        let mut tags: Vec<Tag> = Vec::with_capacity(extra_tags.len() + 1);
        if let Reference::Tag(t) = reference {
            tags.push(t.clone());
        }
        for t in extra_tags {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        for tag in &tags {
            if self.policy.is_stage(tag.as_str()) {
                // Refused before the body is even parsed; the refusal is audited.
                let (name, tag, actor) = (repo.to_string(), tag.to_string(), actor.clone());
                let why = format!("{tag} is a stage tag: only promotion and rollback move it");
                return audited_write(&self.db, move |tx| deny(tx, &actor, &name, Some(&tag), why)).await;
            }
        }
        let limit = self.config.max_manifest_bytes;
        if bytes.len() > limit {
            return Err(RegistryError::TooLarge { what: "manifest", limit: limit as u64 });
        }
        let digest = match reference {
            Reference::Digest(given) => {
                let computed = Digest::of(given.algorithm(), &bytes);
                if &computed != given {
                    return Err(RegistryError::DigestMismatch { given: given.to_string(), computed: computed.to_string() });
                }
                computed
            }
            Reference::Tag(_) => Digest::of(Algorithm::Sha256, &bytes),
        };
        let parsed = parse(content_type, &bytes)?;
        let subject = parsed.subject.clone();
        let row = Manifest {
            digest: digest.clone(),
            media_type: parsed.media_type.to_string(),
            artifact_type: parsed.artifact_type.clone(),
            subject: parsed.subject.clone(),
            annotations: parsed.annotations.clone(),
            content: bytes.to_vec(),
        };
        let pushed_tags: Vec<String> = tags.iter().map(ToString::to_string).collect();
        let (name, actor_owned, policy, tag_names) = (repo.clone(), actor.clone(), self.policy.clone(), pushed_tags.clone());
        audited_write(&self.db, move |tx| {
            let (actor, tags) = (&actor_owned, &tags);
            let repo_id = tx.ensure_repository(&name)?;
            let mut previous = Vec::with_capacity(tags.len());
            for tag in tags {
                let before = tx.tag_target(repo_id, tag)?;
                if before.as_ref().is_some_and(|p| p != &row.digest) && policy.is_immutable(tag.as_str()) {
                    let why = format!("{tag} is an immutable tag and cannot be moved");
                    return deny(tx, actor, name.as_str(), Some(tag.as_str()), why);
                }
                previous.push(before);
            }
            let mut references = Vec::with_capacity(parsed.blobs.len() + parsed.children.len());
            for blob in &parsed.blobs {
                if tx.linked_blob_size(repo_id, blob)?.is_none() {
                    return Err(RegistryError::ManifestBlobUnknown(blob.to_string()));
                }
                references.push((blob.clone(), RefKind::Blob));
            }
            for child in &parsed.children {
                if tx.manifest_head(repo_id, &child.digest)?.is_none() {
                    return Err(RegistryError::ManifestBlobUnknown(child.digest.to_string()));
                }
                references.push((child.digest.clone(), RefKind::Manifest));
            }
            let created = tx.insert_manifest(repo_id, &row, &references, &actor.name)?;
            record(
                tx,
                &AuditEntry::new(actor, AuditAction::ManifestPush)
                    .repository(&name)
                    .reference(tag_names.first())
                    .digest(&row.digest)
                    .details(json!({"media_type": row.media_type, "size": row.content.len(), "new": created, "tags": tag_names})),
            )?;
            for (tag, before) in tags.iter().zip(previous) {
                if before.as_ref() != Some(&row.digest) {
                    tx.set_tag(repo_id, tag, &row.digest)?;
                    tx.record_tag_change(repo_id, tag, Some(&row.digest), &actor.name)?;
                    let (action, details) = match &before {
                        None => (AuditAction::TagCreate, json!({})),
                        Some(from) => (AuditAction::TagMove, json!({"from": from.as_str()})),
                    };
                    record(tx, &AuditEntry::new(actor, action).repository(&name).reference(tag).digest(&row.digest).details(details))?;
                }
            }
            Ok(Outcome::Done(()))
        })
        .await?;
        tracing::info!(repository = %repo, reference = %reference, digest = %digest, actor = %actor.name, "manifest stored");
        Ok(PutManifest { digest, subject, tags: pushed_tags })
    }

    /// `GET /v2/<name>/manifests/<reference>`: from memory while the
    /// rules of [`read_cache`](super::read_cache) allow, else one read.
    pub async fn serve_manifest(&self, repo: &RepoName, reference: &Reference) -> Result<Arc<StoredManifest>, RegistryError> {
        let key = read_cache::key(repo, reference);
        // Counted before the read: a write finishing during it voids the answer.
        let writes = self.db.writes();
        if let Some(hit) = self.reads.get(&key, writes) {
            return Ok(hit);
        }
        let stored = Arc::new(self.get_manifest(repo, reference).await?);
        self.reads.put(key, stored.clone(), writes);
        Ok(stored)
    }

    /// The manifest `reference` names, read from the database (promotion
    /// and diff decide on it, so they never take a cached answer).
    pub async fn get_manifest(&self, repo: &RepoName, reference: &Reference) -> Result<StoredManifest, RegistryError> {
        let (name, reference) = (repo.clone(), reference.clone());
        let row = self
            .db
            .read(move |tx| -> Result<Manifest, RegistryError> {
                let unknown = || RegistryError::ManifestUnknown(reference.to_string());
                let repo_id = tx.repository_id(&name)?.ok_or_else(|| RegistryError::NameUnknown(name.to_string()))?;
                let digest = match &reference {
                    Reference::Digest(d) => d.clone(),
                    Reference::Tag(t) => tx.tag_target(repo_id, t)?.ok_or_else(unknown)?,
                };
                tx.manifest(repo_id, &digest)?.ok_or_else(unknown)
            })
            .await?;
        Ok(StoredManifest { digest: row.digest, media_type: row.media_type, content: Bytes::from(row.content) })
    }

    /// `DELETE /v2/<name>/manifests/<reference>`: by digest removes the
    /// manifest and every tag on it; by tag removes only the tag. Whatever
    /// the one protection rule protects (`governance::protection`) is
    /// refused, and so are stage and immutable tags.
    pub async fn delete_manifest(&self, actor: &Actor, repo: &RepoName, reference: &Reference) -> Result<(), RegistryError> {
        if !self.config.allow_delete {
            return Err(RegistryError::DeleteDisabled);
        }
        let (repo_name, reference, actor, policy) = (repo.clone(), reference.clone(), actor.clone(), self.policy.clone());
        audited_write(&self.db, move |tx| {
            let (actor, name) = (&actor, repo_name.as_str());
            let unknown = || RegistryError::ManifestUnknown(reference.to_string());
            let repo_id = tx.repository_id(&repo_name)?.ok_or_else(|| RegistryError::NameUnknown(name.to_owned()))?;
            match &reference {
                Reference::Tag(t) => {
                    let tag = t.as_str();
                    let Some(target) = tx.tag_target(repo_id, t)? else { return Err(unknown()) };
                    let digest = target.as_str();
                    let refusal = if policy.is_stage(tag) {
                        Some(format!("{tag} is a stage tag: only promotion and rollback move it"))
                    } else if policy.is_immutable(tag) {
                        Some(format!("{tag} is an immutable tag and cannot be deleted"))
                    } else {
                        protected_set(tx, &policy, repo_id)?.manifest(digest).map(|p| format!("tag {tag} points at {}", p.refusal(digest)))
                    };
                    if let Some(why) = refusal {
                        return deny(tx, actor, name, Some(tag), why);
                    }
                    tx.delete_tag(repo_id, t)?;
                    tx.record_tag_change(repo_id, t, None, &actor.name)?;
                    record(tx, &AuditEntry::new(actor, AuditAction::TagDelete).repository(name).reference(tag).digest(digest))?;
                }
                Reference::Digest(d) => {
                    let digest = d.as_str();
                    if tx.manifest_head(repo_id, d)?.is_none() {
                        return Err(unknown());
                    }
                    if let Some(p) = protected_set(tx, &policy, repo_id)?.manifest(digest) {
                        return deny(tx, actor, name, Some(digest), p.refusal(digest));
                    }
                    for tag in tx.delete_tags_pointing_at(repo_id, d)? {
                        tx.record_tag_change(repo_id, &tag, None, &actor.name)?;
                        record(tx, &AuditEntry::new(actor, AuditAction::TagDelete).repository(name).reference(&tag).digest(digest))?;
                    }
                    tx.delete_manifest(repo_id, d)?;
                    record(tx, &AuditEntry::new(actor, AuditAction::ManifestDelete).repository(name).digest(digest))?;
                }
            }
            Ok(Outcome::Done(()))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":3}}]{extra}}}"#,
            MediaType::OciManifest,
            d('a'),
            d('b')
        )
    }

    #[test]
    fn parses_image_manifest_references() {
        let p = parse(Some(MediaType::OciManifest.as_str()), image("").as_bytes()).unwrap();
        assert_eq!(p.media_type, MediaType::OciManifest);
        assert_eq!(p.config.as_ref().map(|c| c.to_string()), Some(d('a')));
        assert_eq!(p.blobs.iter().map(|b| b.to_string()).collect::<Vec<_>>(), vec![d('a'), d('b')]);
        assert_eq!(p.artifact_type.as_deref(), Some("application/vnd.oci.image.config.v1+json"));
        assert!(p.subject.is_none());
    }

    #[test]
    fn reads_subject_and_artifact_type() {
        let extra = format!(
            r#","artifactType":"application/x-sig","subject":{{"mediaType":"{}","digest":"{}","size":9}},"annotations":{{"b":"1","a":"2"}}"#,
            MediaType::OciManifest,
            d('c')
        );
        let p = parse(None, image(&extra).as_bytes()).unwrap();
        assert_eq!(p.subject.unwrap().to_string(), d('c'));
        assert_eq!(p.artifact_type.as_deref(), Some("application/x-sig"));
        let annotations: Value = serde_json::from_str(p.annotations.as_deref().unwrap()).unwrap();
        assert_eq!(annotations, json!({"a": "2", "b": "1"}));
    }

    #[test]
    fn index_children_keep_their_platform() {
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","digest":"{}","size":5,"platform":{{"os":"linux","architecture":"arm64"}}}}]}}"#,
            MediaType::OciIndex,
            MediaType::OciManifest,
            d('e')
        );
        let p = parse(None, index.as_bytes()).unwrap();
        assert!(p.blobs.is_empty() && p.config.is_none());
        assert_eq!(p.children.len(), 1);
        assert_eq!(p.children[0].digest.to_string(), d('e'));
        assert_eq!(p.children[0].platform.as_deref(), Some("linux/arm64"));
    }

    #[test]
    fn foreign_layers_are_not_required() {
        let foreign = r#",{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar","digest":"DIGEST","size":4}"#
            .replace("DIGEST", &d('f'));
        let manifest = image("").replacen(r#""size":3}]"#, &format!(r#""size":3}}{foreign}]"#), 1);
        let p = parse(None, manifest.as_bytes()).unwrap();
        assert_eq!(p.blobs.iter().map(|b| b.to_string()).collect::<Vec<_>>(), vec![d('a'), d('b')]);
    }

    #[test]
    fn rejects_mismatched_or_malformed_manifests() {
        let (oci_manifest, oci_index) = (Some(MediaType::OciManifest.as_str()), Some(MediaType::OciIndex.as_str()));
        assert!(parse(oci_index, image("").as_bytes()).is_err());
        assert!(parse(oci_manifest, b"{not json").is_err());
        assert!(parse(oci_manifest, br#"{"schemaVersion":1}"#).is_err());
        assert!(parse(Some("text/plain"), br#"{"schemaVersion":2}"#).is_err());
        // Well-formed JSON that is not an object, even one whose items line up with the fields.
        assert!(parse(oci_manifest, br#"[2, "application/vnd.oci.image.manifest.v1+json"]"#).is_err());
        // An image without config, an index without manifests.
        assert!(parse(oci_manifest, br#"{"schemaVersion":2,"layers":[]}"#).is_err());
        assert!(parse(oci_index, br#"{"schemaVersion":2}"#).is_err());
        // Annotations map strings to strings.
        assert!(parse(oci_manifest, image(r#","annotations":{"a":1}"#).as_bytes()).is_err());
    }
}
