//! `wharf restore`: a verified backup back into a stopped data directory.
//! The caller holds the data directory's lock (no server runs on it).
//!
//! Order: the whole backup is verified first (a damaged one is refused
//! before anything is overwritten); then blobs go back, then the metadata
//! replaces the database in one rename (PostgreSQL: `pg_restore
//! --single-transaction --clean --if-exists` into `database.url`, all or
//! nothing); then the restored data is checked
//! as a server would need it: every blob re-hashed, every stage's current
//! release present and its tag pointing at it, the audit chain verifying up
//! to the head the manifest records.

use serde::Serialize;

use super::verify::{all_blobs, check_blobs};
use super::{io, open_destination, verify, BackupError, PgCheck, Scratch};
use crate::config::backup::Destination;
use crate::config::Config;
use crate::db::{Db, DbError};
use crate::storage::{layout, BlobStore};

#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub location: String,
    pub snapshot: String,
    pub database: String,
    /// Blobs copied back, and those the store already held at their size.
    pub blobs_copied: u64,
    pub blobs_present: u64,
    pub bytes_copied: u64,
    /// Blobs re-hashed in the store after the restore.
    pub blobs_verified: u64,
    pub stage_pointers_checked: u64,
    pub audit_rows: u64,
    pub audit_head: String,
}

/// `pg.scratch_url`: where a PostgreSQL dump is test-restored while verifying.
pub async fn restore(config: &Config, dest: &Destination, snapshot: Option<&str>, pg: &PgCheck) -> Result<RestoreReport, BackupError> {
    let target = BlobStore::from_config(config)?;
    target.check().await?;
    let scratch = Scratch::new(&config.data_dir, "restore")?;
    let verified = verify(dest, &config.storage.s3, snapshot, &scratch.0, pg).await?;
    if !verified.problems.is_empty() {
        return Err(BackupError::Damaged { location: verified.location, problems: verified.problems });
    }
    let manifest = &verified.manifest;
    let engine = if config.postgres_url().is_some() { "postgres" } else { "sqlite" };
    if manifest.engine != engine {
        return Err(BackupError::Refused(format!(
            "backup {} holds a {} database and this configuration uses {engine}; restore it with a matching database setting",
            manifest.snapshot, manifest.engine
        )));
    }
    let source = open_destination(dest, &config.storage.s3, false).await?;

    // Blobs first: metadata that names them must never be in place without them.
    let (mut blobs_copied, mut blobs_present, mut bytes_copied) = (0u64, 0u64, 0u64);
    for (digest, size) in &verified.blobs {
        let key = layout::blob(digest);
        if target.size(&key).await? == Some(*size) {
            blobs_present += 1;
            continue;
        }
        let (computed, copied) = source.copy_to(&target, &key, digest.algorithm()).await?;
        if computed != *digest || copied != *size {
            target.delete(&key).await?;
            return Err(BackupError::Damaged {
                location: verified.location.clone(),
                problems: vec![format!("blob {digest} content hashes to {computed} ({copied} bytes) (it changed after the check)")],
            });
        }
        blobs_copied += 1;
        bytes_copied += size;
    }

    let (db, database) = match config.postgres_url() {
        Some(url) => (restore_postgres(url, &scratch.0.join("wharf.db"), pg).await?, "database.url".to_owned()),
        None => (restore_sqlite(config, &scratch)?, config.database_path().display().to_string()),
    };
    tracing::info!(database = %database, snapshot = %manifest.snapshot, "metadata restored; checking");

    // The snapshot holds its own backup's fence: no backup runs here now.
    db.write(|tx| tx.clear_backup_fences()).await?;
    let (blobs, orphans, pointers, chain) = db
        .read(|tx| -> Result<_, DbError> {
            Ok((all_blobs(tx)?, tx.referenced_blobs_without_row(20)?, tx.stage_pointers()?, crate::registry::audit::verify_chain(tx)?))
        })
        .await?;
    let mut problems = Vec::new();
    let (blobs_verified, _) = check_blobs(&target, &blobs, &mut problems).await?;
    problems.extend(orphans.iter().map(|d| format!("a manifest references blob {d}, which has no row")));
    for p in &pointers {
        if !p.manifest_present {
            problems.push(format!(
                "{}: stage {} release {} is {}, which the repository does not hold",
                p.repository, p.stage, p.sequence, p.digest
            ));
        } else if let Some(target) = p.tag_target.as_ref().filter(|t| **t != p.digest) {
            problems.push(format!(
                "{}: tag {} points at {target}, but the stage's current release {} is {}",
                p.repository, p.stage, p.sequence, p.digest
            ));
        }
    }
    if let Some(broken) = &chain.first_broken {
        problems.push(format!("audit chain broken at row {}: {}", broken.id, broken.reason));
    } else if chain.head_hash != manifest.audit.head {
        problems.push(format!("audit chain head is {}, the manifest records {}", chain.head_hash, manifest.audit.head));
    }
    if !problems.is_empty() {
        return Err(BackupError::RestoreCheck { problems });
    }
    Ok(RestoreReport {
        location: verified.location.clone(),
        snapshot: manifest.snapshot.clone(),
        database,
        blobs_copied,
        blobs_present,
        bytes_copied,
        blobs_verified,
        stage_pointers_checked: pointers.len() as u64,
        audit_rows: chain.rows_checked,
        audit_head: chain.head_hash,
    })
}

/// The dump into `database.url` in one transaction; then opened (which
/// applies any migration newer than the backup).
async fn restore_postgres(url: &str, dump: &std::path::Path, pg: &PgCheck) -> Result<Db, BackupError> {
    let (u, f, tools) = (url.to_owned(), dump.to_owned(), pg.tools.clone());
    let restored = tokio::task::spawn_blocking(move || crate::db::pg_restore_dump(&u, &f, &tools))
        .await
        .map_err(|e| DbError::Panicked(e.to_string()))?;
    if let Err(e) = restored {
        return Err(BackupError::Refused(format!("restoring the metadata into database.url failed; the database is unchanged: {e}")));
    }
    let u = url.to_owned();
    Ok(tokio::task::spawn_blocking(move || Db::open_postgres(&u, 1)).await.map_err(|e| DbError::Panicked(e.to_string()))??)
}

/// The snapshot file beside the database, renamed over it in one step.
fn restore_sqlite(config: &Config, scratch: &Scratch) -> Result<Db, BackupError> {
    let database = config.database_path();
    let mut staged = database.clone().into_os_string();
    staged.push(".restoring");
    let staged = std::path::PathBuf::from(staged);
    std::fs::copy(scratch.0.join("wharf.db"), &staged).map_err(io(staged.display().to_string()))?;
    std::fs::File::open(&staged).and_then(|f| f.sync_all()).map_err(io(staged.display().to_string()))?;
    for file in crate::db::files(&database) {
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(file.display().to_string())(e)),
            _ => {}
        }
    }
    std::fs::rename(&staged, &database).map_err(io(database.display().to_string()))?;
    Ok(Db::open_existing(&database, 1)?)
}
