use rusqlite::{params, OptionalExtension};

use super::SqliteTx;
use crate::db::backup::{BackupRun, MetadataCounts, StagePointer};
use crate::db::{Backups, DbError};
use crate::domain::Digest;

impl Backups for SqliteTx<'_> {
    fn take_backup_fence(&self, id: &str, expires_at: i64) -> Result<(), DbError> {
        // A running backup renews its fence by taking it again.
        self.conn
            .prepare_cached(
                "INSERT INTO backup_fences (id, created_at, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at",
            )?
            .execute(params![id, crate::db::now_ms(), expires_at])?;
        Ok(())
    }

    fn release_backup_fence(&self, id: &str) -> Result<(), DbError> {
        self.conn.prepare_cached("DELETE FROM backup_fences WHERE id = ?1")?.execute([id])?;
        Ok(())
    }

    fn backup_fence_active(&self, now: i64) -> Result<bool, DbError> {
        Ok(self.conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM backup_fences WHERE expires_at > ?1)")?.query_row([now], |r| r.get(0))?)
    }

    fn clear_backup_fences(&self) -> Result<usize, DbError> {
        Ok(self.conn.prepare_cached("DELETE FROM backup_fences")?.execute([])?)
    }

    fn record_backup(&self, run: &BackupRun) -> Result<(), DbError> {
        self.conn
            .prepare_cached(
                "INSERT INTO backup_runs (id, finished_at, destination, blobs, bytes, blobs_copied, bytes_copied)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![run.id, run.finished_at, run.destination, run.blobs, run.bytes, run.blobs_copied, run.bytes_copied])?;
        Ok(())
    }

    fn last_backup_at(&self) -> Result<Option<i64>, DbError> {
        Ok(self.conn.prepare_cached("SELECT max(finished_at) FROM backup_runs")?.query_row([], |r| r.get(0)).optional()?.flatten())
    }

    fn all_blobs(&self, after: &str, limit: u32) -> Result<Vec<(Digest, u64)>, DbError> {
        let mut stmt = self.conn.prepare_cached("SELECT digest, size FROM blobs WHERE digest > ?1 ORDER BY digest LIMIT ?2")?;
        let rows = stmt.query_map(params![after, limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn referenced_blobs_without_row(&self, limit: u32) -> Result<Vec<Digest>, DbError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT r.target_digest FROM manifest_references r
             WHERE r.kind = 'blob' AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = r.target_digest)
             ORDER BY r.target_digest LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn stage_pointers(&self) -> Result<Vec<StagePointer>, DbError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.name, rel.stage, rel.sequence, rel.digest,
                    EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = rel.repository_id AND m.digest = rel.digest),
                    (SELECT t.digest FROM tags t WHERE t.repository_id = rel.repository_id AND t.name = rel.stage)
             FROM releases rel JOIN repositories p ON p.id = rel.repository_id
             WHERE rel.sequence = (SELECT max(x.sequence) FROM releases x
                                   WHERE x.repository_id = rel.repository_id AND x.stage = rel.stage)
             ORDER BY p.name, rel.stage",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(StagePointer {
                repository: r.get(0)?,
                stage: r.get(1)?,
                sequence: r.get(2)?,
                digest: r.get(3)?,
                manifest_present: r.get(4)?,
                tag_target: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn metadata_counts(&self) -> Result<MetadataCounts, DbError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT (SELECT count(*) FROM repositories), (SELECT count(*) FROM manifests), (SELECT count(*) FROM tags),
                    (SELECT count(*) FROM releases), (SELECT count(*) FROM audit_log)",
            )?
            .query_row([], |r| {
                Ok(MetadataCounts {
                    repositories: r.get(0)?,
                    manifests: r.get(1)?,
                    tags: r.get(2)?,
                    releases: r.get(3)?,
                    audit_rows: r.get(4)?,
                })
            })?)
    }
}

impl super::engine::Engine {
    /// See [`Db::snapshot_into`](crate::db::Db::snapshot_into).
    pub(crate) async fn snapshot_into<T, E, F>(&self, dest: std::path::PathBuf, view: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&dyn crate::db::Tx) -> Result<T, E> + Send + 'static,
    {
        self.run_read(move |conn| {
            let tx = conn.unchecked_transaction().map_err(DbError::from)?;
            let value = view(&SqliteTx::new(&tx))?;
            crate::db::create_private(&dest)?;
            copy_to(&tx, &dest)?;
            Ok(value)
        })
        .await
    }

    pub(crate) async fn integrity_problems(&self) -> Result<Vec<String>, DbError> {
        self.run_read(integrity_problems).await
    }
}

/// Copies the database `conn` reads to the new file `dest` in one step of
/// the online backup API. If `conn` is inside a read transaction, the copy
/// is that transaction's snapshot (SQLite reuses an open read transaction of
/// the source), so it is consistent with what was read in it.
fn copy_to(conn: &rusqlite::Connection, dest: &std::path::Path) -> Result<(), DbError> {
    let mut target = rusqlite::Connection::open(dest)?;
    {
        let backup = rusqlite::backup::Backup::new(conn, &mut target)?;
        // -1: every page in one step, so the copy never restarts.
        match backup.step(-1)? {
            rusqlite::backup::StepResult::Done => {}
            other => return Err(DbError::Snapshot(format!("the backup step stopped early: {other:?}"))),
        }
    }
    // The copy keeps WAL mode; fold it into the one file and leave no -wal.
    target.execute_batch("PRAGMA journal_mode = DELETE;")?;
    Ok(())
}

fn integrity_problems(conn: &rusqlite::Connection) -> Result<Vec<String>, DbError> {
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let rows: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(rows.into_iter().filter(|r| r != "ok").collect())
}
