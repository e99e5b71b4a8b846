//! `manifests` and `manifest_references` tables.

use rusqlite::{params, Connection, OptionalExtension};

use super::{now_ms, DbError};

/// A manifest as stored: the exact bytes plus what was extracted from them.
#[derive(Debug, Clone)]
pub struct ManifestRow {
    pub digest: String,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub subject_digest: Option<String>,
    /// JSON object text of the manifest's annotations, if any.
    pub annotations: Option<String>,
    pub content: Vec<u8>,
}

/// What a manifest points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    Blob,
    Manifest,
}

impl RefKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RefKind::Blob => "blob",
            RefKind::Manifest => "manifest",
        }
    }
}

pub fn get(conn: &Connection, repository_id: i64, digest: &str) -> Result<Option<ManifestRow>, DbError> {
    Ok(conn
        .query_row(
            "SELECT digest, media_type, artifact_type, subject_digest, annotations, content
             FROM manifests WHERE repository_id = ?1 AND digest = ?2",
            params![repository_id, digest],
            |r| {
                Ok(ManifestRow {
                    digest: r.get(0)?,
                    media_type: r.get(1)?,
                    artifact_type: r.get(2)?,
                    subject_digest: r.get(3)?,
                    annotations: r.get(4)?,
                    content: r.get(5)?,
                })
            },
        )
        .optional()?)
}

/// Media type and size, without loading the content.
pub fn head(conn: &Connection, repository_id: i64, digest: &str) -> Result<Option<(String, u64)>, DbError> {
    Ok(conn
        .query_row("SELECT media_type, size FROM manifests WHERE repository_id = ?1 AND digest = ?2", params![repository_id, digest], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?)
}

/// Stores the manifest and its references unless it is already there.
pub fn insert(
    conn: &Connection,
    repository_id: i64,
    row: &ManifestRow,
    references: &[(String, RefKind)],
    pushed_by: &str,
) -> Result<bool, DbError> {
    let inserted = conn.execute(
        "INSERT INTO manifests (repository_id, digest, media_type, artifact_type, subject_digest, annotations, size, content, created_at, pushed_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING",
        params![
            repository_id,
            row.digest,
            row.media_type,
            row.artifact_type,
            row.subject_digest,
            row.annotations,
            row.content.len() as i64,
            row.content,
            now_ms(),
            pushed_by
        ],
    )?;
    if inserted == 0 {
        return Ok(false);
    }
    let mut stmt = conn.prepare_cached(
        "INSERT INTO manifest_references (repository_id, manifest_digest, target_digest, kind)
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
    )?;
    for (target, kind) in references {
        stmt.execute(params![repository_id, row.digest, target, kind.as_str()])?;
    }
    Ok(true)
}

/// Who pushed the manifest first, if recorded.
pub fn pushed_by(conn: &Connection, repository_id: i64, digest: &str) -> Result<Option<String>, DbError> {
    Ok(conn
        .query_row("SELECT pushed_by FROM manifests WHERE repository_id = ?1 AND digest = ?2", params![repository_id, digest], |r| r.get(0))
        .optional()?
        .flatten())
}

/// Deletes the manifest (references cascade); tags must be removed first.
pub fn delete(conn: &Connection, repository_id: i64, digest: &str) -> Result<bool, DbError> {
    Ok(conn.execute("DELETE FROM manifests WHERE repository_id = ?1 AND digest = ?2", params![repository_id, digest])? > 0)
}

/// A manifest whose `subject` is the queried digest.
#[derive(Debug, Clone)]
pub struct ReferrerRow {
    pub digest: String,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub annotations: Option<String>,
    pub size: u64,
}

pub fn referrers(conn: &Connection, repository_id: i64, subject: &str, limit: u32) -> Result<Vec<ReferrerRow>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT digest, media_type, artifact_type, annotations, size FROM manifests
         WHERE repository_id = ?1 AND subject_digest = ?2 ORDER BY created_at, digest LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![repository_id, subject, limit], |r| {
        Ok(ReferrerRow { digest: r.get(0)?, media_type: r.get(1)?, artifact_type: r.get(2)?, annotations: r.get(3)?, size: r.get(4)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every manifest of a repository as (digest, created_at, subject), for the
/// retention planner.
pub fn all_facts(conn: &Connection, repository_id: i64) -> Result<Vec<(String, i64, Option<String>)>, DbError> {
    let mut stmt = conn.prepare_cached("SELECT digest, created_at, subject_digest FROM manifests WHERE repository_id = ?1")?;
    let rows = stmt.query_map([repository_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every (manifest, child manifest) edge of a repository (index children).
pub fn all_children(conn: &Connection, repository_id: i64) -> Result<Vec<(String, String)>, DbError> {
    let mut stmt = conn
        .prepare_cached("SELECT manifest_digest, target_digest FROM manifest_references WHERE repository_id = ?1 AND kind = 'manifest'")?;
    let rows = stmt.query_map([repository_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What one manifest references: (child manifests, blobs).
pub fn references(conn: &Connection, repository_id: i64, digest: &str) -> Result<(Vec<String>, Vec<String>), DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT target_digest, kind FROM manifest_references WHERE repository_id = ?1 AND manifest_digest = ?2 ORDER BY target_digest",
    )?;
    let (mut children, mut blobs) = (Vec::new(), Vec::new());
    let rows = stmt.query_map(params![repository_id, digest], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (target, kind) = row?;
        if kind == RefKind::Manifest.as_str() {
            children.push(target);
        } else {
            blobs.push(target);
        }
    }
    Ok((children, blobs))
}

/// Digests of the manifests whose `subject` is `subject`.
pub fn referrer_digests(conn: &Connection, repository_id: i64, subject: &str) -> Result<Vec<String>, DbError> {
    let mut stmt = conn.prepare_cached("SELECT digest FROM manifests WHERE repository_id = ?1 AND subject_digest = ?2 ORDER BY digest")?;
    let rows = stmt.query_map(params![repository_id, subject], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

// ---- The engine-neutral seam (the free functions above go once every caller uses it).

use super::RepoId;
use crate::domain::Digest;

/// A manifest as stored: the exact bytes plus what was extracted from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub digest: Digest,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub subject: Option<Digest>,
    /// JSON object text of the manifest's annotations, if any.
    pub annotations: Option<String>,
    pub content: Vec<u8>,
}

/// What a HEAD needs, without the content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    pub media_type: String,
    pub size: u64,
}

/// A manifest whose `subject` is the queried digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    pub digest: Digest,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub annotations: Option<String>,
    pub size: u64,
}

/// What the retention planner needs of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFacts {
    pub digest: Digest,
    pub created_at: i64,
    pub subject: Option<Digest>,
}

/// What one manifest references.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestRefs {
    /// Child manifests (of an index), in digest order.
    pub children: Vec<Digest>,
    /// Blobs (config and layers), in digest order.
    pub blobs: Vec<Digest>,
}

pub trait Manifests {
    fn manifest(&self, repo: RepoId, digest: &Digest) -> Result<Option<Manifest>, DbError>;
    fn manifest_head(&self, repo: RepoId, digest: &Digest) -> Result<Option<ManifestHead>, DbError>;
    /// Stores the manifest and its references unless it is already there;
    /// returns whether it was new.
    fn insert_manifest(&self, repo: RepoId, m: &Manifest, references: &[(Digest, RefKind)], pushed_by: &str) -> Result<bool, DbError>;
    /// Who pushed the manifest first, if recorded.
    fn manifest_pushed_by(&self, repo: RepoId, digest: &Digest) -> Result<Option<String>, DbError>;
    /// Deletes the manifest and its references; tags must be removed first.
    fn delete_manifest(&self, repo: RepoId, digest: &Digest) -> Result<bool, DbError>;
    /// Manifests whose subject is `subject`, oldest first, at most `limit`.
    fn referrers(&self, repo: RepoId, subject: &Digest, limit: u32) -> Result<Vec<Referrer>, DbError>;
    /// Digests of the manifests whose subject is `subject`, in digest order.
    fn referrer_digests(&self, repo: RepoId, subject: &Digest) -> Result<Vec<Digest>, DbError>;
    /// Every manifest of a repository, for the retention planner.
    fn manifest_facts(&self, repo: RepoId) -> Result<Vec<ManifestFacts>, DbError>;
    /// Every (index, child manifest) edge of a repository.
    fn manifest_children(&self, repo: RepoId) -> Result<Vec<(Digest, Digest)>, DbError>;
    fn manifest_references(&self, repo: RepoId, digest: &Digest) -> Result<ManifestRefs, DbError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{repositories, test_connection};

    #[test]
    fn insert_is_idempotent_and_delete_cascades_references() {
        let conn = test_connection();
        let repo = repositories::ensure(&conn, "a").unwrap();
        let row = ManifestRow {
            digest: "sha256:m".into(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            artifact_type: None,
            subject_digest: Some("sha256:s".into()),
            annotations: None,
            content: b"{}".to_vec(),
        };
        let refs = vec![("sha256:b".to_string(), RefKind::Blob)];
        assert!(insert(&conn, repo, &row, &refs, "alice").unwrap());
        assert!(!insert(&conn, repo, &row, &refs, "alice").unwrap());
        assert_eq!(referrers(&conn, repo, "sha256:s", 10).unwrap().len(), 1);
        assert!(delete(&conn, repo, "sha256:m").unwrap());
        let left: i64 = conn.query_row("SELECT count(*) FROM manifest_references", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 0);
    }
}
