use rusqlite::{params, OptionalExtension};

use super::SqliteTx;
use crate::db::manifests::{Manifest, ManifestFacts, ManifestHead, ManifestRefs, RefKind, Referrer};
use crate::db::{now_ms, DbError, Manifests, RepoId};
use crate::domain::Digest;

impl Manifests for SqliteTx<'_> {
    fn manifest(&self, repo: RepoId, digest: &Digest) -> Result<Option<Manifest>, DbError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT digest, media_type, artifact_type, subject_digest, annotations, content
                 FROM manifests WHERE repository_id = ?1 AND digest = ?2",
            )?
            .query_row(params![repo, digest], |r| {
                Ok(Manifest {
                    digest: r.get(0)?,
                    media_type: r.get(1)?,
                    artifact_type: r.get(2)?,
                    subject: r.get(3)?,
                    annotations: r.get(4)?,
                    content: r.get(5)?,
                })
            })
            .optional()?)
    }

    fn manifest_head(&self, repo: RepoId, digest: &Digest) -> Result<Option<ManifestHead>, DbError> {
        Ok(self
            .conn
            .prepare_cached("SELECT media_type, size FROM manifests WHERE repository_id = ?1 AND digest = ?2")?
            .query_row(params![repo, digest], |r| Ok(ManifestHead { media_type: r.get(0)?, size: r.get(1)? }))
            .optional()?)
    }

    fn insert_manifest(&self, repo: RepoId, m: &Manifest, references: &[(Digest, RefKind)], pushed_by: &str) -> Result<bool, DbError> {
        let inserted = self.conn.prepare_cached("INSERT INTO manifests (repository_id, digest, media_type, artifact_type, subject_digest, annotations, size, content, created_at, pushed_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING")?.execute(params![
                repo,
                m.digest,
                m.media_type,
                m.artifact_type,
                m.subject,
                m.annotations,
                m.content.len() as i64,
                m.content,
                now_ms(),
                pushed_by
            ],
        )?;
        if inserted == 0 {
            return Ok(false);
        }
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO manifest_references (repository_id, manifest_digest, target_digest, kind)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        )?;
        for (target, kind) in references {
            stmt.execute(params![repo, m.digest, target, kind.as_str()])?;
        }
        Ok(true)
    }

    fn manifest_pushed_by(&self, repo: RepoId, digest: &Digest) -> Result<Option<String>, DbError> {
        Ok(self
            .conn
            .prepare_cached("SELECT pushed_by FROM manifests WHERE repository_id = ?1 AND digest = ?2")?
            .query_row(params![repo, digest], |r| r.get(0))
            .optional()?
            .flatten())
    }

    fn delete_manifest(&self, repo: RepoId, digest: &Digest) -> Result<bool, DbError> {
        Ok(self.conn.prepare_cached("DELETE FROM manifests WHERE repository_id = ?1 AND digest = ?2")?.execute(params![repo, digest])? > 0)
    }

    fn referrers(&self, repo: RepoId, subject: &Digest, limit: u32) -> Result<Vec<Referrer>, DbError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT digest, media_type, artifact_type, annotations, size FROM manifests
             WHERE repository_id = ?1 AND subject_digest = ?2 ORDER BY created_at, digest LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![repo, subject, limit], |r| {
            Ok(Referrer { digest: r.get(0)?, media_type: r.get(1)?, artifact_type: r.get(2)?, annotations: r.get(3)?, size: r.get(4)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn referrer_digests(&self, repo: RepoId, subject: &Digest) -> Result<Vec<Digest>, DbError> {
        let mut stmt =
            self.conn.prepare_cached("SELECT digest FROM manifests WHERE repository_id = ?1 AND subject_digest = ?2 ORDER BY digest")?;
        let rows = stmt.query_map(params![repo, subject], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn manifest_facts(&self, repo: RepoId) -> Result<Vec<ManifestFacts>, DbError> {
        let mut stmt = self.conn.prepare_cached("SELECT digest, created_at, subject_digest FROM manifests WHERE repository_id = ?1")?;
        let rows = stmt.query_map([repo], |r| Ok(ManifestFacts { digest: r.get(0)?, created_at: r.get(1)?, subject: r.get(2)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn manifest_children(&self, repo: RepoId) -> Result<Vec<(Digest, Digest)>, DbError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT manifest_digest, target_digest FROM manifest_references WHERE repository_id = ?1 AND kind = 'manifest'",
        )?;
        let rows = stmt.query_map([repo], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn manifest_references(&self, repo: RepoId, digest: &Digest) -> Result<ManifestRefs, DbError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT target_digest, kind FROM manifest_references WHERE repository_id = ?1 AND manifest_digest = ?2 ORDER BY target_digest",
        )?;
        let mut refs = ManifestRefs::default();
        let rows = stmt.query_map(params![repo, digest], |r| Ok((r.get::<_, Digest>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (target, kind) = row?;
            if kind == RefKind::Manifest.as_str() {
                refs.children.push(target);
            } else {
                refs.blobs.push(target);
            }
        }
        Ok(refs)
    }
}
