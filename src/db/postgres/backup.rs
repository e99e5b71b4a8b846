//! Backups on PostgreSQL are not implemented yet (`Db::snapshot_into`
//! refuses them): no fence ever holds GC here, no run is ever recorded, and
//! the reads a backup makes of its own snapshot say so.

use super::PgTx;
use crate::db::backup::{BackupRun, MetadataCounts, StagePointer};
use crate::db::{Backups, DbError, POSTGRES_BACKUP};
use crate::domain::Digest;

fn unsupported<T>() -> Result<T, DbError> {
    Err(DbError::Snapshot(POSTGRES_BACKUP.into()))
}

impl Backups for PgTx<'_> {
    fn take_backup_fence(&self, _id: &str, _expires_at: i64) -> Result<(), DbError> {
        unsupported()
    }

    fn release_backup_fence(&self, _id: &str) -> Result<(), DbError> {
        Ok(())
    }

    fn backup_fence_active(&self, _now: i64) -> Result<bool, DbError> {
        Ok(false)
    }

    fn clear_backup_fences(&self) -> Result<usize, DbError> {
        Ok(0)
    }

    fn record_backup(&self, _run: &BackupRun) -> Result<(), DbError> {
        unsupported()
    }

    fn last_backup_at(&self) -> Result<Option<i64>, DbError> {
        Ok(None)
    }

    fn all_blobs(&self, _after: &str, _limit: u32) -> Result<Vec<(Digest, u64)>, DbError> {
        unsupported()
    }

    fn referenced_blobs_without_row(&self, _limit: u32) -> Result<Vec<Digest>, DbError> {
        unsupported()
    }

    fn stage_pointers(&self) -> Result<Vec<StagePointer>, DbError> {
        unsupported()
    }

    fn metadata_counts(&self) -> Result<MetadataCounts, DbError> {
        unsupported()
    }
}
