//! The upload protocol, per backend: an upload is appended to request by
//! request, then placed at its content address once verified.
//!
//! On the filesystem an upload grows one file in place
//! (`uploads/<id>/data`), written at explicit offsets under an exclusive
//! lock. On an object store each append is an object of its own
//! (`uploads/<id>/<part id>`), and placing joins them.
//!
//! Storage keeps no state of its own: what an append wrote comes back as a
//! value ([`Appended`]) for the caller to record, and completion is handed
//! the recorded part keys back.

use object_store::path::Path;

use super::local::AppendFile;
use super::{layout, BlobStore, BodyStream, StorageError, WriteError};
use crate::domain::{Digest, DigestHasher};

/// One request's append to an upload.
pub struct Appender<'a> {
    blobs: &'a BlobStore,
    key: Path,
    /// The upload's file, locked, on the filesystem.
    file: Option<AppendFile>,
}

/// What an append wrote, for the caller to record as the upload's next part.
#[derive(Debug)]
pub struct Appended {
    /// The object holding the bytes: the same one for every append in place.
    pub key: String,
    pub size: u64,
}

/// An upload's recorded bytes, taken for completion.
pub struct SealedUpload<'a> {
    blobs: &'a BlobStore,
    upload_id: String,
    parts: Vec<Path>,
    /// On the filesystem, the upload file's lock: no append lands while the
    /// blob is checked and placed.
    _lock: Option<AppendFile>,
    /// Whether placing moved the parts away, leaving nothing to delete.
    moved: bool,
}

impl BlobStore {
    /// Opens upload `upload_id` for one append. On the filesystem this takes
    /// the upload file's lock ([`StorageError::Busy`] while another request
    /// holds it), so the size the caller reads next stays final until it
    /// records the append; on an object store it names a fresh part.
    pub async fn open_upload(&self, upload_id: &str) -> Result<Appender<'_>, StorageError> {
        if self.local.is_some() {
            let key = layout::upload_data(upload_id);
            let file = self.open_append(&key).await?;
            return Ok(Appender { blobs: self, key, file: Some(file) });
        }
        let key = layout::upload_part(upload_id, &uuid::Uuid::new_v4().to_string());
        Ok(Appender { blobs: self, key, file: None })
    }

    /// Takes upload `upload_id` for completion: `part_keys` are its recorded
    /// parts, in order, covering `size` bytes. In place, this takes the
    /// file's lock ([`StorageError::Busy`] while an append runs) and cuts
    /// the bytes of appends cut short.
    pub async fn seal_upload(&self, upload_id: &str, part_keys: Vec<String>, size: u64) -> Result<SealedUpload<'_>, StorageError> {
        let mut parts: Vec<Path> = part_keys.into_iter().map(Path::from).collect();
        // An upload grown in place records its one file once per append.
        parts.dedup();
        let lock = match parts.as_slice() {
            [only] if self.local.is_some() && *only == layout::upload_data(upload_id) => {
                let file = self.open_append(only).await?;
                file.truncate(size).await?;
                Some(file)
            }
            _ => None,
        };
        Ok(SealedUpload { blobs: self, upload_id: upload_id.to_owned(), parts, _lock: lock, moved: false })
    }

    /// Deletes an upload's bytes: its recorded parts, then the file an
    /// upload in place has from its opening on (recorded or not). Stops at
    /// the first failure.
    pub async fn delete_upload(&self, upload_id: &str, part_keys: &[String]) -> Result<(), StorageError> {
        for key in upload_keys(upload_id, part_keys.iter().map(|k| Path::from(k.as_str()))) {
            self.delete(&key).await?;
        }
        Ok(())
    }

    /// [`Self::delete_upload`] for an upload being dropped: failures are
    /// logged, not returned, since garbage collection removes strays later.
    pub async fn discard_upload(&self, upload_id: &str, part_keys: &[String]) {
        self.discard_keys(upload_id, part_keys.iter().map(|k| Path::from(k.as_str()))).await;
    }

    async fn discard_keys(&self, upload_id: &str, parts: impl IntoIterator<Item = Path>) {
        for key in upload_keys(upload_id, parts) {
            if let Err(e) = self.delete(&key).await {
                tracing::warn!(key = %key, error = %e, "could not delete upload part");
            }
        }
    }
}

fn upload_keys(upload_id: &str, parts: impl IntoIterator<Item = Path>) -> impl Iterator<Item = Path> {
    parts.into_iter().chain([layout::upload_data(upload_id)])
}

impl Appender<'_> {
    /// Streams `body` into the upload from `offset` (its recorded size),
    /// feeding every byte to `hasher`, refusing more than `max_bytes`. After
    /// an error there is nothing to record: an object store keeps nothing,
    /// and bytes written in place lie past the recorded size, cut off by the
    /// next append or the completion.
    pub async fn append(&self, offset: u64, body: BodyStream, hasher: &mut DigestHasher, max_bytes: u64) -> Result<Appended, WriteError> {
        let size = match &self.file {
            Some(file) => {
                super::timing::timed(self.blobs.backend, "append", file.write_at(offset, body, hasher, max_bytes, self.blobs.fsync)).await?
            }
            None => self.blobs.write_stream(&self.key, body, hasher, max_bytes).await?,
        };
        Ok(Appended { key: self.key.to_string(), size })
    }

    /// Drops the bytes of an append the caller did not record: a part is
    /// deleted; bytes in place already lie past the recorded size.
    pub async fn unrecorded(&self) -> Result<(), StorageError> {
        match self.file {
            Some(_) => Ok(()),
            None => self.blobs.delete(&self.key).await,
        }
    }

    /// The upload is gone (cancelled or completed since the caller loaded
    /// it): removes the file that opening it in place created.
    pub async fn abandon(self) {
        if self.file.is_some() {
            if let Err(e) = self.blobs.delete(&self.key).await {
                tracing::warn!(key = %self.key, error = %e, "could not delete upload part");
            }
        }
    }
}

impl SealedUpload<'_> {
    /// Hashes the upload's bytes with `hasher`, from the start.
    pub async fn hash(&self, hasher: DigestHasher) -> Result<DigestHasher, StorageError> {
        self.blobs.hash_objects(&self.parts, hasher).await
    }

    /// Moves the bytes to `digest`'s content address: a rename of a single
    /// part, a join of several. The caller has verified them, holds a claim
    /// on the digest and knows its blob is not stored yet.
    pub async fn place(&mut self, digest: &Digest) -> Result<(), WriteError> {
        let target = layout::blob(digest);
        match self.parts.as_slice() {
            [] => {
                let empty: BodyStream = Box::pin(futures::stream::empty());
                self.blobs.write_stream(&target, empty, &mut DigestHasher::new(digest.algorithm()), 0).await?;
            }
            [only] => {
                self.blobs.rename(only, &target).await?;
                self.moved = true;
            }
            many => self.blobs.concat(many, &target).await?,
        }
        Ok(())
    }

    /// Deletes what is left of the upload once its blob is recorded: the
    /// parts, unless placing moved them. Failures are logged.
    pub async fn finish(self) {
        if !self.moved {
            for key in &self.parts {
                if let Err(e) = self.blobs.delete(key).await {
                    tracing::warn!(key = %key, error = %e, "could not delete upload part");
                }
            }
        }
    }

    /// Deletes the upload's bytes without placing them (they did not match
    /// their digest). Failures are logged.
    pub async fn discard(self) {
        self.blobs.discard_keys(&self.upload_id, self.parts.clone()).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use futures::TryStreamExt;
    use object_store::local::LocalFileSystem;

    use super::*;
    use crate::domain::Algorithm;

    fn in_place(dir: &std::path::Path) -> BlobStore {
        let fs = Arc::new(LocalFileSystem::new_with_prefix(dir).unwrap().with_automatic_cleanup(true));
        BlobStore {
            store: fs.clone(),
            local: Some(fs),
            probe: None,
            part_size: super::super::local::LOCAL_PART_SIZE,
            fsync: true,
            backend: "filesystem",
        }
    }

    fn in_parts() -> BlobStore {
        let store = Arc::new(object_store::memory::InMemory::new());
        BlobStore { store, local: None, probe: None, part_size: super::super::s3::S3_PART_SIZE, fsync: false, backend: "s3" }
    }

    fn body(data: &[u8]) -> BodyStream {
        Box::pin(futures::stream::iter([Ok(Bytes::copy_from_slice(data))]))
    }

    async fn contents(blobs: &BlobStore, key: &Path) -> Vec<u8> {
        let chunks: Vec<Bytes> = blobs.read(key, None).await.unwrap().try_collect().await.unwrap();
        chunks.concat()
    }

    /// Two appends, recorded as a caller would, then sealed, hashed and placed.
    async fn push_two_appends(blobs: &BlobStore) -> (Digest, Vec<String>) {
        let mut hasher = DigestHasher::new(Algorithm::Sha256);
        let mut recorded = Vec::new();
        let mut size = 0;
        for data in [&b"hello "[..], b"world"] {
            let appender = blobs.open_upload("u1").await.unwrap();
            let appended = appender.append(size, body(data), &mut hasher, 1024).await.unwrap();
            assert_eq!(appended.size, data.len() as u64);
            size += appended.size;
            recorded.push(appended.key);
        }
        let digest = hasher.finish();
        let mut sealed = blobs.seal_upload("u1", recorded.clone(), size).await.unwrap();
        assert_eq!(sealed.hash(DigestHasher::new(Algorithm::Sha256)).await.unwrap().finish(), digest);
        sealed.place(&digest).await.unwrap();
        sealed.finish().await;
        assert_eq!(contents(blobs, &layout::blob(&digest)).await, b"hello world");
        (digest, recorded)
    }

    #[tokio::test]
    async fn the_filesystem_grows_one_file_and_renames_it() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = in_place(dir.path());
        let (_, recorded) = push_two_appends(&blobs).await;
        let data = layout::upload_data("u1").to_string();
        assert_eq!(recorded, [data.clone(), data], "both appends went to the one file");
        assert_eq!(blobs.size(&layout::upload_data("u1")).await.unwrap(), None, "renamed away");
    }

    #[tokio::test]
    async fn an_object_store_gets_a_part_per_append_and_joins_them() {
        let blobs = in_parts();
        let (_, recorded) = push_two_appends(&blobs).await;
        assert_eq!(recorded.len(), 2);
        assert_ne!(recorded[0], recorded[1]);
        for key in &recorded {
            assert_eq!(blobs.size(&Path::from(key.as_str())).await.unwrap(), None, "{key} deleted after the join");
        }
    }

    #[tokio::test]
    async fn an_upload_in_place_has_one_writer_and_seals_at_the_recorded_size() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = in_place(dir.path());
        let appender = blobs.open_upload("u1").await.unwrap();
        assert!(matches!(blobs.open_upload("u1").await, Err(StorageError::Busy(_))));
        // Recorded: 5 bytes; the rest is a write that was not recorded.
        let appended = appender.append(0, body(b"hello world"), &mut DigestHasher::new(Algorithm::Sha256), 1024).await.unwrap();
        appender.unrecorded().await.unwrap();
        assert!(matches!(blobs.seal_upload("u1", vec![appended.key.clone()], 5).await, Err(StorageError::Busy(_))));
        drop(appender);
        let mut sealed = blobs.seal_upload("u1", vec![appended.key], 5).await.unwrap();
        assert!(matches!(blobs.open_upload("u1").await, Err(StorageError::Busy(_))), "sealed against appends");
        let digest = sealed.hash(DigestHasher::new(Algorithm::Sha256)).await.unwrap().finish();
        sealed.place(&digest).await.unwrap();
        sealed.finish().await;
        assert_eq!(contents(&blobs, &layout::blob(&digest)).await, b"hello");
    }

    #[tokio::test]
    async fn unrecorded_parts_and_discarded_uploads_leave_nothing() {
        let blobs = in_parts();
        let appender = blobs.open_upload("u1").await.unwrap();
        let appended = appender.append(0, body(b"abc"), &mut DigestHasher::new(Algorithm::Sha256), 1024).await.unwrap();
        let key = Path::from(appended.key.as_str());
        assert_eq!(blobs.size(&key).await.unwrap(), Some(3));
        appender.unrecorded().await.unwrap();
        assert_eq!(blobs.size(&key).await.unwrap(), None);

        let dir = tempfile::tempdir().unwrap();
        let blobs = in_place(dir.path());
        let appender = blobs.open_upload("u2").await.unwrap();
        let appended = appender.append(0, body(b"abc"), &mut DigestHasher::new(Algorithm::Sha256), 1024).await.unwrap();
        drop(appender);
        let sealed = blobs.seal_upload("u2", vec![appended.key], 3).await.unwrap();
        sealed.discard().await;
        assert_eq!(blobs.size(&layout::upload_data("u2")).await.unwrap(), None);
    }
}
