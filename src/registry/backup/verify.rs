//! `wharf backup verify`: a backup is checked as a restore would need it,
//! and each piece of damage is named.

use std::path::Path;

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::{open_destination, read_manifest, BackupError, BackupManifest, COPIES_IN_FLIGHT, LIST_BATCH};
use crate::config::backup::Destination;
use crate::config::S3Config;
use crate::db::{Db, DbError, PgTools};
use crate::domain::Digest;
use crate::storage::{layout, BlobStore, StorageError};

/// Problems of one kind reported at most this often (the count says the rest).
const MAX_PER_KIND: usize = 20;

#[derive(Debug, Clone, Serialize)]
pub struct VerifyOutcome {
    pub location: String,
    pub manifest: BackupManifest,
    pub blobs_checked: u64,
    pub bytes_checked: u64,
    /// Empty when the backup is sound.
    pub problems: Vec<String>,
    /// The snapshot's blobs, for restore.
    #[serde(skip)]
    pub(crate) blobs: Vec<(Digest, u64)>,
}

/// How a PostgreSQL backup's dump is checked: with which tools, and where
/// it may be restored to be read (a scratch database, emptied by the
/// restore's `--clean`); without one, `pg_restore --list` and the blob list.
#[derive(Debug, Clone, Default)]
pub struct PgCheck {
    pub tools: PgTools,
    pub scratch_url: Option<String>,
}

/// Checks the newest finished snapshot of `dest` (or `snapshot`). The
/// metadata file is left at `work/wharf.db` as downloaded (and checked
/// through a copy, since opening a database may write to it).
pub async fn verify(
    dest: &Destination,
    s3: &S3Config,
    snapshot: Option<&str>,
    work: &Path,
    pg: &PgCheck,
) -> Result<VerifyOutcome, BackupError> {
    let location = dest.to_string();
    let store = open_destination(dest, s3, false).await?;
    let manifest = read_manifest(&store, &location, snapshot).await?;
    let id = manifest.snapshot.clone();
    let mut problems = Vec::new();

    let file = work.join("wharf.db");
    let metadata_key = layout::backup_metadata(&id);
    let downloaded = match store.get_file(&metadata_key, &file).await {
        Ok(got) => Some(got),
        Err(StorageError::NotFound(_)) => {
            problems.push(format!("database missing: {metadata_key}"));
            None
        }
        Err(e) => return Err(e.into()),
    };
    let mut blobs = None;
    if let Some((sha, size)) = downloaded {
        if size != manifest.metadata.size {
            problems.push(format!(
                "database truncated/corrupt: {metadata_key} is {size} bytes, the manifest records {}",
                manifest.metadata.size
            ));
        } else if sha.to_string() != manifest.metadata.sha256 {
            problems.push(format!(
                "database truncated/corrupt: {metadata_key} hashes to {sha}, the manifest records {}",
                manifest.metadata.sha256
            ));
        }
        blobs = if manifest.engine == "postgres" {
            check_dump(&file, &manifest, pg, &mut problems).await?
        } else {
            check_metadata(&file, &work.join("check.db"), &manifest, &mut problems).await?
        };
    }
    // An unreadable database still leaves the blob list to check blobs by.
    let blobs = match blobs {
        Some(blobs) => blobs,
        None => blob_list(&store, &id, &mut problems).await?,
    };
    if blobs.len() as u64 != manifest.blobs {
        problems.push(format!("the snapshot references {} blobs, the manifest records {}", blobs.len(), manifest.blobs));
    }
    let (blobs_checked, bytes_checked) = check_blobs(&store, &blobs, &mut problems).await?;
    Ok(VerifyOutcome { location, manifest, blobs_checked, bytes_checked, problems, blobs })
}

/// Opens a copy of the metadata and checks it; returns its blobs if it could be read.
async fn check_metadata(
    file: &Path,
    copy: &Path,
    manifest: &BackupManifest,
    problems: &mut Vec<String>,
) -> Result<Option<Vec<(Digest, u64)>>, BackupError> {
    std::fs::copy(file, copy).map_err(super::io(copy.display().to_string()))?;
    let corrupt = |e: &dyn std::fmt::Display| format!("database truncated/corrupt: {e}");
    let db = match Db::open_existing(copy, 1) {
        Ok(db) => db,
        Err(e) => {
            problems.push(corrupt(&e));
            return Ok(None);
        }
    };
    match db.integrity_problems().await {
        Ok(found) => problems.extend(found.iter().take(MAX_PER_KIND).map(|p| corrupt(p))),
        Err(e) => {
            problems.push(corrupt(&e));
            return Ok(None);
        }
    }
    check_db(&db, manifest, problems).await
}

/// A PostgreSQL dump: it must list whole (`pg_restore --list`); with a
/// scratch database it is restored there and read as a SQLite snapshot is.
async fn check_dump(
    file: &Path,
    manifest: &BackupManifest,
    pg: &PgCheck,
    problems: &mut Vec<String>,
) -> Result<Option<Vec<(Digest, u64)>>, BackupError> {
    let corrupt = |e: &dyn std::fmt::Display| format!("database truncated/corrupt: {e}");
    let (f, tools) = (file.to_owned(), pg.tools.clone());
    let listed = blocking(move || crate::db::pg_dump_problems(&f, &tools)).await?;
    if !listed.is_empty() {
        problems.extend(listed.iter().map(|p| corrupt(p)));
        return Ok(None);
    }
    let Some(url) = pg.scratch_url.clone() else { return Ok(None) };
    let (f, tools, u) = (file.to_owned(), pg.tools.clone(), url.clone());
    if let Err(e) = blocking(move || crate::db::pg_restore_dump(&u, &f, &tools)).await {
        problems.push(corrupt(&e));
        return Ok(None);
    }
    let db = blocking(move || Db::open_postgres(&url, 1)).await?;
    check_db(&db, manifest, problems).await
}

/// A blocking database call off the async thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, DbError> + Send + 'static) -> Result<T, DbError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| DbError::Panicked(e.to_string()))?
}

/// The reads of a snapshot opened as a database: its blobs, references
/// without a blob row, and the audit chain against the manifest.
async fn check_db(db: &Db, manifest: &BackupManifest, problems: &mut Vec<String>) -> Result<Option<Vec<(Digest, u64)>>, BackupError> {
    let corrupt = |e: &dyn std::fmt::Display| format!("database truncated/corrupt: {e}");
    let read = db
        .read(|tx| -> Result<_, DbError> {
            let blobs = all_blobs(tx)?;
            let orphans = tx.referenced_blobs_without_row(MAX_PER_KIND as u32)?;
            let chain = crate::registry::audit::verify_chain(tx)?;
            Ok((blobs, orphans, chain))
        })
        .await;
    let (blobs, orphans, chain) = match read {
        Ok(read) => read,
        Err(e) => {
            problems.push(corrupt(&e));
            return Ok(None);
        }
    };
    problems.extend(orphans.iter().map(|d| format!("a manifest references blob {d}, which the snapshot has no row for")));
    if let Some(broken) = &chain.first_broken {
        problems.push(format!("audit chain broken at row {}: {}", broken.id, broken.reason));
    } else if chain.head_hash != manifest.audit.head || chain.rows_checked != manifest.audit.rows {
        problems.push(format!(
            "audit chain head is {} after {} rows; the manifest records {} after {} rows",
            chain.head_hash, chain.rows_checked, manifest.audit.head, manifest.audit.rows
        ));
    }
    Ok(Some(blobs))
}

pub(crate) fn all_blobs(tx: &dyn crate::db::Tx) -> Result<Vec<(Digest, u64)>, DbError> {
    let mut blobs: Vec<(Digest, u64)> = Vec::new();
    loop {
        let after = blobs.last().map(|(d, _)| d.to_string()).unwrap_or_default();
        let batch = tx.all_blobs(&after, LIST_BATCH)?;
        let done = (batch.len() as u32) < LIST_BATCH;
        blobs.extend(batch);
        if done {
            return Ok(blobs);
        }
    }
}

/// `blobs.txt` of the snapshot, when its database cannot be read.
async fn blob_list(store: &BlobStore, id: &str, problems: &mut Vec<String>) -> Result<Vec<(Digest, u64)>, BackupError> {
    let key = layout::backup_blob_list(id);
    let bytes = match store.get_bytes(&key).await {
        Ok(b) => b,
        Err(StorageError::NotFound(_)) => {
            problems.push(format!("blob list missing: {key}"));
            return Ok(Vec::new());
        }
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for line in String::from_utf8_lossy(&bytes).lines() {
        match line.split_once(' ').map(|(d, s)| (Digest::parse(d), s.parse::<u64>())) {
            Some((Ok(d), Ok(s))) => out.push((d, s)),
            _ => problems.push(format!("{key}: unreadable line {line:?}")),
        }
    }
    Ok(out)
}

/// Re-hashes every blob; returns how many blobs and bytes were read.
pub(crate) async fn check_blobs(store: &BlobStore, blobs: &[(Digest, u64)], problems: &mut Vec<String>) -> Result<(u64, u64), BackupError> {
    let checks = futures::stream::iter(blobs.iter().cloned()).map(|(digest, size)| async move {
        let key = layout::blob(&digest);
        match store.hash(&key, digest.algorithm()).await {
            Ok((computed, got)) if computed != digest => {
                Ok((got, Some(format!("blob {digest} content hashes to {computed} ({got} bytes)"))))
            }
            Ok((_, got)) if got != size => Ok((got, Some(format!("blob {digest} is {got} bytes, the metadata records {size}")))),
            Ok((_, got)) => Ok((got, None)),
            Err(StorageError::NotFound(_)) => Ok((0, Some(format!("blob {digest} is missing ({key})")))),
            Err(e) => Err(BackupError::from(e)),
        }
    });
    let mut checks = checks.buffer_unordered(COPIES_IN_FLIGHT);
    let (mut count, mut bytes, mut damaged) = (0u64, 0u64, 0usize);
    while let Some((got, problem)) = checks.try_next().await? {
        count += 1;
        bytes += got;
        if let Some(problem) = problem {
            damaged += 1;
            if damaged <= MAX_PER_KIND {
                problems.push(problem);
            }
        }
    }
    if damaged > MAX_PER_KIND {
        problems.push(format!("... and {} more damaged or missing blobs", damaged - MAX_PER_KIND));
    }
    Ok((count, bytes))
}
