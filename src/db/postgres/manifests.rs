use super::{big, opt_text, text, unsigned, PgTx};
use crate::db::manifests::{Manifest, ManifestFacts, ManifestHead, ManifestRefs, RefKind, Referrer};
use crate::db::{now_ms, DbError, Manifests, RepoId};
use crate::domain::Digest;

impl Manifests for PgTx<'_> {
    fn manifest(&self, repo: RepoId, digest: &Digest) -> Result<Option<Manifest>, DbError> {
        let row = self.query_opt(
            "SELECT digest, media_type, artifact_type, subject_digest, annotations, content
             FROM manifests WHERE repository_id = $1 AND digest = $2",
            &[&repo.0, &digest.as_str()],
        )?;
        row.map(|r| {
            Ok(Manifest {
                digest: text(&r, 0, "manifests.digest")?,
                media_type: r.try_get(1)?,
                artifact_type: r.try_get(2)?,
                subject: opt_text(&r, 3, "manifests.subject_digest")?,
                annotations: r.try_get(4)?,
                content: r.try_get(5)?,
            })
        })
        .transpose()
    }

    fn manifest_head(&self, repo: RepoId, digest: &Digest) -> Result<Option<ManifestHead>, DbError> {
        let row = self
            .query_opt("SELECT media_type, size FROM manifests WHERE repository_id = $1 AND digest = $2", &[&repo.0, &digest.as_str()])?;
        row.map(|r| Ok(ManifestHead { media_type: r.try_get(0)?, size: unsigned(&r, 1, "manifests.size")? })).transpose()
    }

    fn insert_manifest(&self, repo: RepoId, m: &Manifest, references: &[(Digest, RefKind)], pushed_by: &str) -> Result<bool, DbError> {
        let inserted = self.execute(
            "INSERT INTO manifests (repository_id, digest, media_type, artifact_type, subject_digest, annotations, size, content, created_at, pushed_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
            &[
                &repo.0,
                &m.digest.as_str(),
                &m.media_type,
                &m.artifact_type,
                &m.subject.as_ref().map(Digest::as_str),
                &m.annotations,
                &big(m.content.len() as u64),
                &m.content,
                &now_ms(),
                &pushed_by,
            ],
        )?;
        if inserted == 0 {
            return Ok(false);
        }
        for (target, kind) in references {
            self.execute(
                "INSERT INTO manifest_references (repository_id, manifest_digest, target_digest, kind)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&repo.0, &m.digest.as_str(), &target.as_str(), &kind.as_str()],
            )?;
        }
        Ok(true)
    }

    fn manifest_pushed_by(&self, repo: RepoId, digest: &Digest) -> Result<Option<String>, DbError> {
        let row =
            self.query_opt("SELECT pushed_by FROM manifests WHERE repository_id = $1 AND digest = $2", &[&repo.0, &digest.as_str()])?;
        Ok(row.map(|r| r.try_get::<_, Option<String>>(0)).transpose()?.flatten())
    }

    fn delete_manifest(&self, repo: RepoId, digest: &Digest) -> Result<bool, DbError> {
        Ok(self.execute("DELETE FROM manifests WHERE repository_id = $1 AND digest = $2", &[&repo.0, &digest.as_str()])? > 0)
    }

    fn referrers(&self, repo: RepoId, subject: &Digest, limit: u32) -> Result<Vec<Referrer>, DbError> {
        let rows = self.query(
            "SELECT digest, media_type, artifact_type, annotations, size FROM manifests
             WHERE repository_id = $1 AND subject_digest = $2 ORDER BY created_at, digest COLLATE \"C\" LIMIT $3",
            &[&repo.0, &subject.as_str(), &i64::from(limit)],
        )?;
        rows.iter()
            .map(|r| {
                Ok(Referrer {
                    digest: text(r, 0, "manifests.digest")?,
                    media_type: r.try_get(1)?,
                    artifact_type: r.try_get(2)?,
                    annotations: r.try_get(3)?,
                    size: unsigned(r, 4, "manifests.size")?,
                })
            })
            .collect()
    }

    fn referrer_digests(&self, repo: RepoId, subject: &Digest) -> Result<Vec<Digest>, DbError> {
        let rows = self.query(
            "SELECT digest FROM manifests WHERE repository_id = $1 AND subject_digest = $2 ORDER BY digest COLLATE \"C\"",
            &[&repo.0, &subject.as_str()],
        )?;
        rows.iter().map(|r| text(r, 0, "manifests.digest")).collect()
    }

    fn manifest_facts(&self, repo: RepoId) -> Result<Vec<ManifestFacts>, DbError> {
        let rows = self.query("SELECT digest, created_at, subject_digest FROM manifests WHERE repository_id = $1", &[&repo.0])?;
        rows.iter()
            .map(|r| {
                Ok(ManifestFacts {
                    digest: text(r, 0, "manifests.digest")?,
                    created_at: r.try_get(1)?,
                    subject: opt_text(r, 2, "manifests.subject_digest")?,
                })
            })
            .collect()
    }

    fn manifest_children(&self, repo: RepoId) -> Result<Vec<(Digest, Digest)>, DbError> {
        let rows = self.query(
            "SELECT manifest_digest, target_digest FROM manifest_references WHERE repository_id = $1 AND kind = 'manifest'",
            &[&repo.0],
        )?;
        rows.iter()
            .map(|r| Ok((text(r, 0, "manifest_references.manifest_digest")?, text(r, 1, "manifest_references.target_digest")?)))
            .collect()
    }

    fn manifest_references(&self, repo: RepoId, digest: &Digest) -> Result<ManifestRefs, DbError> {
        let rows = self.query(
            "SELECT target_digest, kind FROM manifest_references WHERE repository_id = $1 AND manifest_digest = $2
             ORDER BY target_digest COLLATE \"C\"",
            &[&repo.0, &digest.as_str()],
        )?;
        let mut refs = ManifestRefs::default();
        for r in &rows {
            let target: Digest = text(r, 0, "manifest_references.target_digest")?;
            let kind: &str = r.try_get(1)?;
            if kind == RefKind::Manifest.as_str() {
                refs.children.push(target);
            } else {
                refs.blobs.push(target);
            }
        }
        Ok(refs)
    }
}
