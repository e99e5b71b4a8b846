//! The filesystem backend's specifics: an upload file grown in place under
//! a lock, joins through `copy_file_range` with fsync, and blob files handed
//! over as files so the HTTP layer can `sendfile` them.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;

use super::{next_counted, BlobStore, BodyStream, ByteStream, StorageError, WriteError};
use crate::domain::DigestHasher;

/// Part size on the local filesystem, where parts are just positioned writes.
pub(super) const LOCAL_PART_SIZE: usize = 1024 * 1024;
/// Bytes per file read when serving a local blob, and reads kept ahead.
const LOCAL_READ_CHUNK: usize = 1024 * 1024;
const LOCAL_READ_AHEAD: usize = 2;

impl BlobStore {
    /// Opens (creating) the upload file at `key` for appending, holding an
    /// exclusive lock on it; [`StorageError::Busy`] if another holds it.
    pub(super) async fn open_append(&self, key: &Path) -> Result<AppendFile, StorageError> {
        let local = self.local.as_ref().ok_or_else(|| StorageError::Config("appending needs the filesystem backend".into()))?;
        let path = local.path_to_filesystem(key)?;
        let name = key.to_string();
        let opened = tokio::task::spawn_blocking(move || -> std::io::Result<Option<std::fs::File>> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
            match file.try_lock() {
                Ok(()) => Ok(Some(file)),
                Err(std::fs::TryLockError::WouldBlock) => Ok(None),
                Err(std::fs::TryLockError::Error(e)) => Err(e),
            }
        })
        .await
        .map_err(|e| StorageError::Io(name.clone(), std::io::Error::other(e)))?
        .map_err(|e| StorageError::Io(name.clone(), e))?;
        match opened {
            Some(file) => Ok(AppendFile { file: Arc::new(file), name }),
            None => Err(StorageError::Busy(name)),
        }
    }
}

/// A local upload file, locked against other writers until dropped. Bytes
/// are written at explicit offsets, so a write cut short leaves only bytes
/// past the recorded size, which the next write or [`AppendFile::truncate`]
/// cuts off.
pub(super) struct AppendFile {
    file: Arc<std::fs::File>,
    name: String,
}

/// Body chunks go to a writer thread in batches of about this many bytes
/// (one wake-up per batch, not per network read), with this many batches
/// queued: memory per upload stays near 5 MiB.
const WRITE_BATCH: usize = 1024 * 1024;
const WRITE_QUEUE: usize = 4;

/// What the writer thread of [`stream_to_file`] receives.
enum ToWriter {
    Batch(Vec<Bytes>),
    /// The body ended whole: the thread may finish the file.
    End,
}

/// Streams `body` into a file on a blocking thread, feeding every byte to
/// `hasher` on this task (hashing and writing overlap). `open` gives the
/// thread its file and the offset to write from; once the body has ended whole, `finish`
/// runs on it there, so a sync costs no extra hand-off. With `writeback`,
/// each batch's pages are sent towards the disk as soon as they are written
/// (`sync_file_range`): the final fsync of a large blob then waits for the
/// last few MiB, not for all of it, and the disk works while bytes arrive.
/// Returns the bytes streamed.
pub(super) async fn stream_to_file<T: Send + 'static>(
    name: &str,
    open: impl FnOnce() -> std::io::Result<(Arc<std::fs::File>, u64, T)> + Send + 'static,
    mut body: BodyStream,
    hasher: &mut DigestHasher,
    max_bytes: u64,
    writeback: bool,
    finish: impl FnOnce(&std::fs::File, u64) -> std::io::Result<()> + Send + 'static,
) -> Result<(u64, T), WriteError> {
    use std::os::unix::fs::FileExt;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<ToWriter>(WRITE_QUEUE);
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<T> {
        let (file, mut position, opened) = open()?;
        while let Some(message) = rx.blocking_recv() {
            match message {
                ToWriter::Batch(batch) => {
                    let start = position;
                    for chunk in batch {
                        file.write_all_at(&chunk, position)?;
                        position += chunk.len() as u64;
                    }
                    if writeback {
                        start_writeback(&file, start, position - start);
                    }
                }
                ToWriter::End => {
                    finish(&file, position)?;
                    return Ok(opened);
                }
            }
        }
        Err(std::io::Error::new(std::io::ErrorKind::Interrupted, "the body ended early"))
    });
    let mut total: u64 = 0;
    let streamed: Result<(), WriteError> = async {
        let (mut batch, mut batch_len) = (Vec::new(), 0);
        while let Some(chunk) = next_counted(&mut body, &mut total, max_bytes, hasher).await? {
            batch_len += chunk.len();
            batch.push(chunk);
            if batch_len >= WRITE_BATCH {
                batch_len = 0;
                if tx.send(ToWriter::Batch(std::mem::take(&mut batch))).await.is_err() {
                    return Ok(()); // the writer failed; its error is reported below
                }
            }
        }
        if !batch.is_empty() && tx.send(ToWriter::Batch(batch)).await.is_err() {
            return Ok(());
        }
        let _ = tx.send(ToWriter::End).await;
        Ok(())
    }
    .await;
    drop(tx);
    let written = writer.await.map_err(|e| StorageError::Io(name.to_owned(), std::io::Error::other(e)))?;
    // The body's own error first: the writer then only saw it end early.
    streamed?;
    let opened = written.map_err(|e| StorageError::Io(name.to_owned(), e))?;
    Ok((total, opened))
}

/// Asks the kernel to start writing `len` bytes at `offset` of `file` to
/// disk, without waiting. Only a hint: a failure shows in the fsync after.
fn start_writeback(file: &std::fs::File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else { return };
    // SAFETY: a plain system call on a file descriptor `file` keeps open for
    // the call's duration; no memory is passed.
    let _ = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE) };
}

impl AppendFile {
    /// Streams `body` into the file from `offset`, feeding every byte to
    /// `hasher`. The file ends where the body does. Returns the bytes
    /// written; with an error, what was written is past the recorded size.
    pub(super) async fn write_at(
        &self,
        offset: u64,
        body: BodyStream,
        hasher: &mut DigestHasher,
        max_bytes: u64,
        writeback: bool,
    ) -> Result<u64, WriteError> {
        let file = self.file.clone();
        let open = move || Ok((file, offset, ()));
        let finish = |file: &std::fs::File, end: u64| file.set_len(end);
        let (total, ()) = stream_to_file(&self.name, open, body, hasher, max_bytes, writeback, finish).await?;
        Ok(total)
    }

    /// Cuts the file to `len` bytes (dropping bytes of writes cut short).
    pub(super) async fn truncate(&self, len: u64) -> Result<(), StorageError> {
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || file.set_len(len))
            .await
            .map_err(|e| StorageError::Io(self.name.clone(), std::io::Error::other(e)))?
            .map_err(|e| StorageError::Io(self.name.clone(), e))
    }
}

/// Concatenates local files into `target` through a temporary file and a
/// rename, so `target` appears whole or not at all. `io::copy` between files
/// uses copy_file_range on Linux: the bytes never pass through user space.
/// With `fsync`, the file and the directories naming it are synced too.
pub(super) fn concat_local_files(sources: &[PathBuf], target: &std::path::Path, tmp: &std::path::Path, fsync: bool) -> std::io::Result<()> {
    let written = (|| {
        let mut out = create_with_dirs(tmp, fsync)?;
        for source in sources {
            std::io::copy(&mut std::fs::File::open(source)?, &mut out)?;
        }
        if fsync {
            out.sync_all()?;
        }
        rename_synced(tmp, target, fsync)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    written
}

/// Attempts at creating a temporary file whose directory garbage collection
/// keeps removing (it removes a fan-out directory its last delete emptied).
const CREATE_ATTEMPTS: usize = 8;

/// Creates `path`, and the directories above it that are missing (the
/// first blob of a fan-out directory); with `fsync`, each new directory's
/// entry is synced in its parent at once, before any blob can depend on it.
pub(super) fn create_with_dirs(path: &std::path::Path, fsync: bool) -> std::io::Result<std::fs::File> {
    let create = || std::fs::OpenOptions::new().write(true).create_new(true).open(path);
    let mut attempt = 1;
    loop {
        match create() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempt < CREATE_ATTEMPTS => {
                let dir = path.parent().ok_or(e)?;
                let missing: Vec<PathBuf> = dir.ancestors().take_while(|d| !d.exists()).map(PathBuf::from).collect();
                std::fs::create_dir_all(dir)?;
                if fsync {
                    for new_dir in &missing {
                        if let Some(parent) = new_dir.parent() {
                            std::fs::File::open(parent)?.sync_all()?;
                        }
                    }
                }
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Renames the synced `temporary` to `target`; with `fsync`, syncs the
/// directory now naming it.
pub(super) fn rename_synced(temporary: &std::path::Path, target: &std::path::Path, fsync: bool) -> std::io::Result<()> {
    if let Err(e) = std::fs::rename(temporary, target) {
        let _ = std::fs::remove_file(temporary);
        return Err(e);
    }
    if fsync {
        if let Some(dir) = target.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
    }
    Ok(())
}

/// An open local file and the byte range of it to serve.
#[derive(Debug)]
pub struct LocalFile {
    pub file: std::fs::File,
    pub offset: u64,
    pub len: u64,
    /// The object key, for error messages.
    pub name: String,
}

pub(super) async fn open_local_file(path: PathBuf, key: &Path, range: Option<Range<u64>>) -> Result<LocalFile, StorageError> {
    let name = key.to_string();
    let opened = tokio::task::spawn_blocking(move || -> std::io::Result<(std::fs::File, u64)> {
        let file = std::fs::File::open(&path)?;
        let size = file.metadata()?.len();
        Ok((file, size))
    })
    .await
    .map_err(|e| StorageError::Io(name.clone(), std::io::Error::other(e)))?;
    let (file, size) = opened.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => StorageError::NotFound(name.clone()),
        _ => StorageError::Io(name.clone(), e),
    })?;
    let (offset, len) = match range {
        Some(r) => (r.start, r.end.min(size).saturating_sub(r.start)),
        None => (0, size),
    };
    Ok(LocalFile { file, offset, len, name })
}

impl LocalFile {
    /// Streams the range. One blocking task reads ahead up to
    /// [`LOCAL_READ_AHEAD`] chunks of [`LOCAL_READ_CHUNK`] while the socket
    /// sends, so disk reads and network writes overlap; memory per stream
    /// stays at a few MiB. A client that goes away drops the receiver and
    /// ends the task.
    pub fn into_stream(self) -> ByteStream {
        use std::io::{Read, Seek};
        let LocalFile { mut file, offset, len, name } = self;
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(LOCAL_READ_AHEAD);
        tokio::task::spawn_blocking(move || {
            if let Err(e) = file.seek(std::io::SeekFrom::Start(offset)) {
                let _ = tx.blocking_send(Err(e));
                return;
            }
            let mut remaining = len;
            while remaining > 0 {
                let want = LOCAL_READ_CHUNK.min(remaining as usize);
                // read_to_end fills spare capacity without zeroing it first (a
                // profile showed memset of fresh buffers at a fifth of pull CPU).
                let mut buf = Vec::with_capacity(want);
                let item = match (&mut file).take(want as u64).read_to_end(&mut buf) {
                    Ok(0) => Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "blob file is shorter than recorded")),
                    Ok(n) => {
                        remaining -= n as u64;
                        Ok(Bytes::from(buf))
                    }
                    Err(e) => Err(e),
                };
                let failed = item.is_err();
                if tx.blocking_send(item).is_err() || failed {
                    break;
                }
            }
        });
        let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        stream.map_err(move |e| StorageError::Io(name.clone(), e)).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A join lands whole at its target, in fan-out directories it creates,
    /// and leaves no temporary file; a missing source leaves nothing.
    #[test]
    fn a_join_is_whole_at_its_target_or_absent() {
        let dir = tempfile::tempdir().unwrap();
        let sources: Vec<PathBuf> = ["a", "b"].iter().map(|n| dir.path().join(n)).collect();
        std::fs::write(&sources[0], b"hello ").unwrap();
        std::fs::write(&sources[1], b"world").unwrap();
        let fan_out = dir.path().join("blobs/sha256/ab");
        let (target, tmp) = (fan_out.join("ab12"), fan_out.join(".partial-1"));
        concat_local_files(&sources, &target, &tmp, true).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"hello world");
        assert!(!tmp.exists());

        let (other, tmp) = (fan_out.join("ab34"), fan_out.join(".partial-2"));
        let missing = [sources[0].clone(), dir.path().join("gone")];
        assert!(concat_local_files(&missing, &other, &tmp, true).is_err());
        assert!(!other.exists() && !tmp.exists());
    }
}
