//! Manifest use-cases: put, get, delete. Manifests are parsed with oci-spec to
//! find what they reference, but stored and served as the exact bytes pushed.

use bytes::Bytes;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde_json::Value;

use serde_json::json;

use super::protection::protected_set;
use super::{audited_write, deny, record, Outcome, Registry, RegistryError};
use crate::db::{
    self,
    manifests::{ManifestRow, RefKind},
};
use crate::domain::{Actor, Algorithm, AuditAction, AuditEntry, Digest, Reference, RepoName, Tag};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Layers a registry is not expected to hold: their bytes live elsewhere.
const FOREIGN_LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

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

/// What Wharf extracts from a manifest's JSON.
#[derive(Debug)]
struct Parsed {
    media_type: String,
    artifact_type: Option<String>,
    subject: Option<Digest>,
    annotations: Option<String>,
    blobs: Vec<Digest>,
    manifests: Vec<Digest>,
}

fn invalid(msg: impl Into<String>) -> RegistryError {
    RegistryError::ManifestInvalid(msg.into())
}

fn descriptor_digest(d: &Descriptor) -> Result<Digest, RegistryError> {
    Digest::parse(d.digest().as_ref()).map_err(|e| invalid(format!("descriptor: {e}")))
}

/// Parses and checks a manifest body against the media type the client declared.
fn parse(content_type: Option<&str>, bytes: &[u8]) -> Result<Parsed, RegistryError> {
    let json: Value = serde_json::from_slice(bytes).map_err(|e| invalid(format!("not valid JSON: {e}")))?;
    let object = json.as_object().ok_or_else(|| invalid("not a JSON object"))?;
    if object.get("schemaVersion").and_then(Value::as_i64) != Some(2) {
        return Err(invalid("schemaVersion must be 2"));
    }
    let body_type = match object.get("mediaType") {
        Some(Value::String(s)) => Some(s.as_str()),
        None => None,
        Some(_) => return Err(invalid("mediaType must be a string")),
    };
    // Content-Type parameters such as charset are not part of the media type.
    let header_type = content_type.map(|c| c.split(';').next().unwrap_or_default().trim()).filter(|c| !c.is_empty());
    let media_type = match (body_type, header_type) {
        (Some(b), Some(h)) if b != h => return Err(invalid(format!("Content-Type {h} does not match the manifest's mediaType {b}"))),
        (Some(t), _) | (None, Some(t)) => t.to_owned(),
        (None, None) => return Err(invalid("no mediaType in the manifest and no Content-Type")),
    };
    let annotations = object.get("annotations").filter(|a| a.is_object()).map(Value::to_string);

    match media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let m: ImageManifest = serde_json::from_slice(bytes).map_err(|e| invalid(format!("image manifest: {e}")))?;
            let mut blobs = vec![descriptor_digest(m.config())?];
            for layer in m.layers() {
                let foreign = FOREIGN_LAYER_TYPES.contains(&layer.media_type().to_string().as_str())
                    || layer.urls().as_ref().is_some_and(|u| !u.is_empty());
                if !foreign {
                    blobs.push(descriptor_digest(layer)?);
                }
            }
            let subject = m.subject().as_ref().map(descriptor_digest).transpose()?;
            let artifact_type = m.artifact_type().as_ref().map(|t| t.to_string()).or_else(|| Some(m.config().media_type().to_string()));
            Ok(Parsed { media_type, artifact_type, subject, annotations, blobs, manifests: vec![] })
        }
        OCI_INDEX | DOCKER_MANIFEST_LIST => {
            let i: ImageIndex = serde_json::from_slice(bytes).map_err(|e| invalid(format!("image index: {e}")))?;
            let manifests = i.manifests().iter().map(descriptor_digest).collect::<Result<Vec<_>, _>>()?;
            let subject = i.subject().as_ref().map(descriptor_digest).transpose()?;
            let artifact_type = i.artifact_type().as_ref().map(|t| t.to_string());
            Ok(Parsed { media_type, artifact_type, subject, annotations, blobs: vec![], manifests })
        }
        other => Err(invalid(format!("unsupported manifest media type {other}"))),
    }
}

/// The child manifests and blobs a stored manifest names in its own bytes,
/// or `None` if they no longer parse (they did when pushed).
pub(crate) fn references_in(media_type: &str, content: &[u8]) -> Option<(Vec<String>, Vec<String>)> {
    let parsed = parse(Some(media_type), content).ok()?;
    let strings = |v: Vec<Digest>| v.into_iter().map(|d| d.to_string()).collect();
    Some((strings(parsed.manifests), strings(parsed.blobs)))
}

/// Indexes nested deeper than this are not walked for completeness (no
/// real image is); the check then reports them as incomplete.
const MAX_INDEX_DEPTH: usize = 8;

/// The first thing the manifest needs that this repository cannot serve (a
/// child manifest, or a blob a client deleted), or `None` if it pulls
/// completely. Promotion and rollback ask this, so a stage never points at
/// an image that does not pull.
pub(crate) fn missing_content(conn: &rusqlite::Connection, repo_id: i64, digest: &str) -> Result<Option<String>, RegistryError> {
    let mut pending = vec![(digest.to_owned(), 0usize)];
    let mut seen = std::collections::HashSet::new();
    while let Some((manifest, depth)) = pending.pop() {
        if !seen.insert(manifest.clone()) {
            continue;
        }
        if depth > MAX_INDEX_DEPTH {
            return Ok(Some(format!("{manifest} is nested more than {MAX_INDEX_DEPTH} indexes deep")));
        }
        if db::manifests::head(conn, repo_id, &manifest)?.is_none() {
            return Ok(Some(format!("manifest {manifest} is missing")));
        }
        let (children, blobs) = db::manifests::references(conn, repo_id, &manifest)?;
        for blob in blobs {
            if db::blobs::linked_size(conn, repo_id, &blob)?.is_none() {
                return Ok(Some(format!("blob {blob} of {manifest} is missing")));
            }
        }
        pending.extend(children.into_iter().map(|c| (c, depth + 1)));
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
        let mut tags: Vec<String> = Vec::with_capacity(extra_tags.len() + 1);
        if let Reference::Tag(t) = reference {
            tags.push(t.to_string());
        }
        for t in extra_tags {
            if !tags.iter().any(|x| x == t.as_str()) {
                tags.push(t.to_string());
            }
        }
        for tag in &tags {
            if self.policy.is_stage(tag) {
                // Refused before the body is even parsed; the refusal is audited.
                let (name, tag, actor) = (repo.to_string(), tag.clone(), actor.clone());
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
        let row = ManifestRow {
            digest: digest.to_string(),
            media_type: parsed.media_type.clone(),
            artifact_type: parsed.artifact_type.clone(),
            subject_digest: parsed.subject.as_ref().map(|d| d.to_string()),
            annotations: parsed.annotations.clone(),
            content: bytes.to_vec(),
        };
        let (name, actor_owned, policy, pushed_tags) = (repo.to_string(), actor.clone(), self.policy.clone(), tags.clone());
        audited_write(&self.db, move |tx| {
            let (actor, tags) = (&actor_owned, &tags);
            let repo_id = db::repositories::ensure(tx, &name)?;
            let mut previous = Vec::with_capacity(tags.len());
            for tag in tags {
                let before = db::tags::target(tx, repo_id, tag)?;
                if before.as_ref().is_some_and(|p| p != &row.digest) && policy.is_immutable(tag) {
                    let why = format!("{tag} is an immutable tag and cannot be moved");
                    return deny(tx, actor, &name, Some(tag), why);
                }
                previous.push(before);
            }
            let mut references = Vec::with_capacity(parsed.blobs.len() + parsed.manifests.len());
            for blob in &parsed.blobs {
                if db::blobs::linked_size(tx, repo_id, blob.as_str())?.is_none() {
                    return Err(RegistryError::ManifestBlobUnknown(blob.to_string()));
                }
                references.push((blob.to_string(), RefKind::Blob));
            }
            for child in &parsed.manifests {
                if db::manifests::head(tx, repo_id, child.as_str())?.is_none() {
                    return Err(RegistryError::ManifestBlobUnknown(child.to_string()));
                }
                references.push((child.to_string(), RefKind::Manifest));
            }
            let created = db::manifests::insert(tx, repo_id, &row, &references, &actor.name)?;
            record(
                tx,
                &AuditEntry::new(actor, AuditAction::ManifestPush)
                    .repository(&name)
                    .reference(tags.first())
                    .digest(&row.digest)
                    .details(json!({"media_type": row.media_type, "size": row.content.len(), "new": created, "tags": tags})),
            )?;
            for (tag, before) in tags.iter().zip(previous) {
                if before.as_deref() != Some(row.digest.as_str()) {
                    db::tags::set(tx, repo_id, tag, &row.digest)?;
                    db::tag_history::record(tx, repo_id, tag, Some(&row.digest), &actor.name)?;
                    let (action, details) = match &before {
                        None => (AuditAction::TagCreate, json!({})),
                        Some(from) => (AuditAction::TagMove, json!({"from": from})),
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

    /// `GET /v2/<name>/manifests/<reference>`.
    pub async fn get_manifest(&self, repo: &RepoName, reference: &Reference) -> Result<StoredManifest, RegistryError> {
        let (name, reference) = (repo.to_string(), reference.clone());
        let row = self
            .db
            .read(move |conn| -> Result<ManifestRow, RegistryError> {
                let unknown = || RegistryError::ManifestUnknown(reference.to_string());
                let repo_id = db::repositories::id_of(conn, &name)?.ok_or_else(|| RegistryError::NameUnknown(name.clone()))?;
                let digest = match &reference {
                    Reference::Digest(d) => d.to_string(),
                    Reference::Tag(t) => db::tags::target(conn, repo_id, t.as_str())?.ok_or_else(unknown)?,
                };
                db::manifests::get(conn, repo_id, &digest)?.ok_or_else(unknown)
            })
            .await?;
        let digest = Digest::parse(&row.digest).map_err(|_| db::DbError::Corrupt("manifests.digest"))?;
        Ok(StoredManifest { digest, media_type: row.media_type, content: Bytes::from(row.content) })
    }

    /// `DELETE /v2/<name>/manifests/<reference>`: by digest removes the
    /// manifest and every tag on it; by tag removes only the tag. Whatever
    /// the one protection rule protects (`governance::protection`) is
    /// refused, and so are stage and immutable tags.
    pub async fn delete_manifest(&self, actor: &Actor, repo: &RepoName, reference: &Reference) -> Result<(), RegistryError> {
        if !self.config.allow_delete {
            return Err(RegistryError::DeleteDisabled);
        }
        let (name, reference, actor, policy) = (repo.to_string(), reference.clone(), actor.clone(), self.policy.clone());
        audited_write(&self.db, move |tx| {
            let actor = &actor;
            let unknown = || RegistryError::ManifestUnknown(reference.to_string());
            let repo_id = db::repositories::id_of(tx, &name)?.ok_or_else(|| RegistryError::NameUnknown(name.clone()))?;
            match &reference {
                Reference::Tag(t) => {
                    let tag = t.as_str();
                    let Some(digest) = db::tags::target(tx, repo_id, tag)? else { return Err(unknown()) };
                    let refusal = if policy.is_stage(tag) {
                        Some(format!("{tag} is a stage tag: only promotion and rollback move it"))
                    } else if policy.is_immutable(tag) {
                        Some(format!("{tag} is an immutable tag and cannot be deleted"))
                    } else {
                        protected_set(tx, &policy, repo_id)?
                            .manifest(&digest)
                            .map(|p| format!("tag {tag} points at {}", p.refusal(&digest)))
                    };
                    if let Some(why) = refusal {
                        return deny(tx, actor, &name, Some(tag), why);
                    }
                    db::tags::delete(tx, repo_id, tag)?;
                    db::tag_history::record(tx, repo_id, tag, None, &actor.name)?;
                    record(tx, &AuditEntry::new(actor, AuditAction::TagDelete).repository(&name).reference(tag).digest(&digest))?;
                }
                Reference::Digest(d) => {
                    let digest = d.as_str();
                    if db::manifests::head(tx, repo_id, digest)?.is_none() {
                        return Err(unknown());
                    }
                    if let Some(p) = protected_set(tx, &policy, repo_id)?.manifest(digest) {
                        return deny(tx, actor, &name, Some(digest), p.refusal(digest));
                    }
                    for tag in db::tags::delete_pointing_at(tx, repo_id, digest)? {
                        db::tag_history::record(tx, repo_id, &tag, None, &actor.name)?;
                        record(tx, &AuditEntry::new(actor, AuditAction::TagDelete).repository(&name).reference(&tag).digest(digest))?;
                    }
                    db::manifests::delete(tx, repo_id, digest)?;
                    record(tx, &AuditEntry::new(actor, AuditAction::ManifestDelete).repository(&name).digest(digest))?;
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
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":3}}]{extra}}}"#,
            d('a'),
            d('b')
        )
    }

    #[test]
    fn parses_image_manifest_references() {
        let p = parse(Some(OCI_MANIFEST), image("").as_bytes()).unwrap();
        assert_eq!(p.blobs.iter().map(|b| b.to_string()).collect::<Vec<_>>(), vec![d('a'), d('b')]);
        assert_eq!(p.artifact_type.as_deref(), Some("application/vnd.oci.image.config.v1+json"));
        assert!(p.subject.is_none());
    }

    #[test]
    fn reads_subject_and_artifact_type() {
        let extra =
            format!(r#","artifactType":"application/x-sig","subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":9}}"#, d('c'));
        let p = parse(None, image(&extra).as_bytes()).unwrap();
        assert_eq!(p.subject.unwrap().to_string(), d('c'));
        assert_eq!(p.artifact_type.as_deref(), Some("application/x-sig"));
    }

    #[test]
    fn rejects_mismatched_or_malformed_manifests() {
        assert!(parse(Some(OCI_INDEX), image("").as_bytes()).is_err());
        assert!(parse(Some(OCI_MANIFEST), b"{not json").is_err());
        assert!(parse(Some(OCI_MANIFEST), br#"{"schemaVersion":1}"#).is_err());
        assert!(parse(Some("text/plain"), br#"{"schemaVersion":2}"#).is_err());
    }
}
