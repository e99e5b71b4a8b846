//! A backup's queries on PostgreSQL, the same statements as
//! `../sqlite/backup.rs`. Taking a fence is a write, so it queues on the
//! writer lock like GC's take of a blob, which re-checks the fence: the two
//! are exclusive (see `crate::db::backup`). The snapshot itself is
//! `pg_dump` of an exported snapshot (`dump.rs`).

use super::{big, opt_text, text, unsigned, PgTx};
use crate::db::backup::{BackupRun, MetadataCounts, StagePointer};
use crate::db::{Backups, DbError};
use crate::domain::Digest;

impl Backups for PgTx<'_> {
    fn take_backup_fence(&self, id: &str, expires_at: i64) -> Result<(), DbError> {
        // A running backup renews its fence by taking it again.
        self.execute(
            "INSERT INTO backup_fences (id, created_at, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at",
            &[&id, &crate::db::now_ms(), &expires_at],
        )?;
        Ok(())
    }

    fn release_backup_fence(&self, id: &str) -> Result<(), DbError> {
        self.execute("DELETE FROM backup_fences WHERE id = $1", &[&id])?;
        Ok(())
    }

    fn backup_fence_active(&self, now: i64) -> Result<bool, DbError> {
        Ok(self.query_one("SELECT EXISTS (SELECT 1 FROM backup_fences WHERE expires_at > $1)", &[&now])?.try_get(0)?)
    }

    fn clear_backup_fences(&self) -> Result<usize, DbError> {
        Ok(self.execute("DELETE FROM backup_fences", &[])? as usize)
    }

    fn record_backup(&self, run: &BackupRun) -> Result<(), DbError> {
        self.execute(
            "INSERT INTO backup_runs (id, finished_at, destination, blobs, bytes, blobs_copied, bytes_copied)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &run.id,
                &run.finished_at,
                &run.destination,
                &big(run.blobs),
                &big(run.bytes),
                &big(run.blobs_copied),
                &big(run.bytes_copied),
            ],
        )?;
        Ok(())
    }

    fn last_backup_at(&self) -> Result<Option<i64>, DbError> {
        Ok(self.query_one("SELECT max(finished_at) FROM backup_runs", &[])?.try_get(0)?)
    }

    fn all_blobs(&self, after: &str, limit: u32) -> Result<Vec<(Digest, u64)>, DbError> {
        // Byte order, as SQLite's: the caller pages on the last digest.
        let rows = self.query(
            "SELECT digest, size FROM blobs WHERE digest COLLATE \"C\" > $1 ORDER BY digest COLLATE \"C\" LIMIT $2",
            &[&after, &i64::from(limit)],
        )?;
        rows.iter().map(|r| Ok((text(r, 0, "blobs.digest")?, unsigned(r, 1, "blobs.size")?))).collect()
    }

    fn referenced_blobs_without_row(&self, limit: u32) -> Result<Vec<Digest>, DbError> {
        let rows = self.query(
            "SELECT DISTINCT r.target_digest FROM manifest_references r
             WHERE r.kind = 'blob' AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = r.target_digest)
             ORDER BY r.target_digest LIMIT $1",
            &[&i64::from(limit)],
        )?;
        rows.iter().map(|r| text(r, 0, "manifest_references.target_digest")).collect()
    }

    fn stage_pointers(&self) -> Result<Vec<StagePointer>, DbError> {
        let rows = self.query(
            "SELECT p.name, rel.stage, rel.sequence, rel.digest,
                    EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = rel.repository_id AND m.digest = rel.digest),
                    (SELECT t.digest FROM tags t WHERE t.repository_id = rel.repository_id AND t.name = rel.stage)
             FROM releases rel JOIN repositories p ON p.id = rel.repository_id
             WHERE rel.sequence = (SELECT max(x.sequence) FROM releases x
                                   WHERE x.repository_id = rel.repository_id AND x.stage = rel.stage)
             ORDER BY p.name, rel.stage",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                Ok(StagePointer {
                    repository: text(r, 0, "repositories.name")?,
                    stage: text(r, 1, "releases.stage")?,
                    sequence: r.try_get(2)?,
                    digest: text(r, 3, "releases.digest")?,
                    manifest_present: r.try_get(4)?,
                    tag_target: opt_text(r, 5, "tags.digest")?,
                })
            })
            .collect()
    }

    fn metadata_counts(&self) -> Result<MetadataCounts, DbError> {
        let r = self.query_one(
            "SELECT (SELECT count(*) FROM repositories), (SELECT count(*) FROM manifests), (SELECT count(*) FROM tags),
                    (SELECT count(*) FROM releases), (SELECT count(*) FROM audit_log)",
            &[],
        )?;
        Ok(MetadataCounts {
            repositories: unsigned(&r, 0, "count")?,
            manifests: unsigned(&r, 1, "count")?,
            tags: unsigned(&r, 2, "count")?,
            releases: unsigned(&r, 3, "count")?,
            audit_rows: unsigned(&r, 4, "count")?,
        })
    }
}
