//! A whole blob whose digest came with its body (a monolithic push): the
//! bytes go straight towards their content address instead of through an
//! upload's parts, then wait, staged, for the caller to verify the digest
//! and take its claim before they are placed.
//!
//! - Filesystem: a temporary file beside the address, written and synced,
//!   renamed to the address on placing (one file, one directory sync).
//! - Object store: a body within one part stays in memory and is one `PUT`
//!   on placing; a larger one is a multipart upload to the address itself,
//!   completed on placing. Until then the address holds nothing new, and a
//!   discarded upload is aborted.
//!
//! A staged blob dropped without being placed or discarded (its request
//! was cancelled) cleans up after itself in the background; what a crash
//! leaves is a temporary file that the stray sweep removes.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};

use super::local::{create_with_dirs, rename_synced, stream_to_file};
use super::{layout, next_counted, BlobStore, BodyStream, StorageError, WriteError, PARTS_IN_FLIGHT};
use crate::domain::{Digest, DigestHasher};

/// Bytes written towards a content address, not yet placed there.
pub struct StagedBlob<'a> {
    blobs: &'a BlobStore,
    target: Path,
    size: u64,
    /// `None` once placed or discarded.
    state: Option<Staged>,
}

enum Staged {
    /// A synced temporary file beside the blob's file.
    File { temporary: PathBuf, target: PathBuf },
    /// Bytes on their way through the object store.
    InStore(InStore),
}

/// Bytes staged through the object store, for [`BlobStore::complete_in_store`].
pub(super) enum InStore {
    /// A body within one part, for a single `PUT`.
    Buffered(Vec<Bytes>),
    /// A multipart upload to the target, every part but the last sent.
    Multipart(WriteMultipart),
}

impl BlobStore {
    /// Streams `body`, which claims to be blob `digest`, towards its content
    /// address, feeding every byte to `hasher` and refusing more than
    /// `max_bytes`. Nothing is at the address until [`StagedBlob::place`];
    /// after an error nothing is left anywhere.
    pub async fn stage_blob(
        &self,
        digest: &Digest,
        body: BodyStream,
        hasher: &mut DigestHasher,
        max_bytes: u64,
    ) -> Result<StagedBlob<'_>, WriteError> {
        let target = layout::blob(digest);
        let (state, size) = super::timing::timed(self.backend, "stage", self.stage(&target, body, hasher, max_bytes)).await?;
        Ok(StagedBlob { blobs: self, target, size, state: Some(state) })
    }

    async fn stage(&self, target: &Path, body: BodyStream, hasher: &mut DigestHasher, max_bytes: u64) -> Result<(Staged, u64), WriteError> {
        if let Some(local) = &self.local {
            let temporary = local.path_to_filesystem(&layout::temporary_beside(target)).map_err(StorageError::from)?;
            let target = local.path_to_filesystem(target).map_err(StorageError::from)?;
            let (path, fsync) = (temporary.clone(), self.fsync);
            let open = move || Ok((Arc::new(create_with_dirs(&path, fsync)?), 0, ()));
            let finish = move |file: &std::fs::File, _: u64| if fsync { file.sync_all() } else { Ok(()) };
            let name = target.display().to_string();
            return match stream_to_file(&name, open, body, hasher, max_bytes, fsync, finish).await {
                Ok((size, ())) => Ok((Staged::File { temporary, target }, size)),
                Err(e) => {
                    remove_in_background(temporary);
                    Err(e)
                }
            };
        }
        let (in_store, size) = self.stage_in_store(target, body, hasher, max_bytes).await?;
        Ok((Staged::InStore(in_store), size))
    }

    /// Streams `body` towards `target` through the object store: kept in
    /// memory up to one part, a multipart upload to `target` beyond. After
    /// an error nothing is left; [`BlobStore::complete_in_store`] finishes it.
    pub(super) async fn stage_in_store(
        &self,
        target: &Path,
        mut body: BodyStream,
        hasher: &mut DigestHasher,
        max_bytes: u64,
    ) -> Result<(InStore, u64), WriteError> {
        let mut total = 0u64;
        let mut pending: Vec<Bytes> = Vec::new();
        let mut pending_len = 0usize;
        let mut multipart: Option<WriteMultipart> = None;
        let streamed: Result<(), WriteError> = async {
            while let Some(chunk) = next_counted(&mut body, &mut total, max_bytes, hasher).await? {
                match multipart.as_mut() {
                    Some(upload) => {
                        upload.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(StorageError::from)?;
                        upload.put(chunk);
                    }
                    None => {
                        pending_len += chunk.len();
                        pending.push(chunk);
                        if pending_len > self.part_size {
                            let upload = self.store.put_multipart(target).await.map_err(StorageError::from)?;
                            let mut upload = WriteMultipart::new_with_chunk_size(upload, self.part_size);
                            for b in pending.drain(..) {
                                upload.put(b);
                            }
                            multipart = Some(upload);
                        }
                    }
                }
            }
            Ok(())
        }
        .await;
        match (streamed, multipart) {
            (Ok(()), Some(upload)) => Ok((InStore::Multipart(upload), total)),
            (Ok(()), None) => Ok((InStore::Buffered(pending), total)),
            (Err(e), Some(upload)) => {
                abort(upload, target).await;
                Err(e)
            }
            (Err(e), None) => Err(e),
        }
    }

    /// Puts bytes staged in the store at `target`: one `PUT` of what was
    /// kept in memory, or the multipart upload's completion.
    pub(super) async fn complete_in_store(&self, target: &Path, staged: InStore) -> Result<(), StorageError> {
        match staged {
            InStore::Buffered(chunks) => {
                let payload = PutPayload::from_iter(chunks);
                self.retry_conflicts(target, || async { Ok(self.store.put(target, payload.clone()).await.map(drop)?) }).await
            }
            InStore::Multipart(upload) => Ok(upload.finish().await.map(drop)?),
        }
    }
}

impl StagedBlob<'_> {
    /// The bytes staged.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Puts the bytes at their content address. The caller has verified
    /// them and holds a claim on the digest. On the filesystem the rename's
    /// directory is synced, so a blob recorded afterwards survives a crash
    /// of the machine.
    pub async fn place(mut self) -> Result<(), StorageError> {
        let Some(state) = self.state.take() else { return Ok(()) };
        let blobs = self.blobs;
        let target = self.target.clone();
        super::timing::timed(blobs.backend, "place", async move {
            match state {
                Staged::File { temporary, target: path } => {
                    let (name, fsync) = (target.to_string(), blobs.fsync);
                    tokio::task::spawn_blocking(move || rename_synced(&temporary, &path, fsync))
                        .await
                        .map_err(|e| StorageError::Io(name.clone(), std::io::Error::other(e)))?
                        .map_err(|e| StorageError::Io(name, e))
                }
                Staged::InStore(in_store) => blobs.complete_in_store(&target, in_store).await,
            }
        })
        .await
    }

    /// Drops the bytes without placing them (they did not match their
    /// digest, or the blob is stored already).
    pub async fn discard(mut self) {
        match self.state.take() {
            Some(Staged::File { temporary, .. }) => {
                let name = temporary.display().to_string();
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || remove_if_present(&temporary)).await {
                    tracing::warn!(file = %name, error = %e, "could not delete a staged blob file");
                }
            }
            Some(Staged::InStore(InStore::Multipart(upload))) => abort(upload, &self.target).await,
            Some(Staged::InStore(InStore::Buffered(_))) | None => {}
        }
    }
}

impl Drop for StagedBlob<'_> {
    fn drop(&mut self) {
        match self.state.take() {
            Some(Staged::File { temporary, .. }) => remove_in_background(temporary),
            Some(Staged::InStore(InStore::Multipart(upload))) => {
                let target = self.target.clone();
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move { abort(upload, &target).await });
                }
            }
            Some(Staged::InStore(InStore::Buffered(_))) | None => {}
        }
    }
}

fn remove_if_present(path: &std::path::Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes a temporary file off the caller's thread; a failure leaves it to
/// the stray sweep.
fn remove_in_background(path: PathBuf) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn_blocking(move || {
            if let Err(e) = remove_if_present(&path) {
                tracing::warn!(file = %path.display(), error = %e, "could not delete a staged blob file");
            }
        });
    }
}

async fn abort(upload: WriteMultipart, target: &Path) {
    if let Err(e) = upload.abort().await {
        tracing::warn!(key = %target, error = %e, "aborting a staged multipart upload failed");
    }
}
