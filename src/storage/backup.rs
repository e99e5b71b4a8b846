//! A backup destination as a store: a local directory or an S3 prefix, with
//! the same streaming as the blob store, plus moving whole local files
//! (the metadata snapshot) in and out of it.

use std::path::Path as FsPath;
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use tokio::io::AsyncWriteExt;

use super::{BlobStore, StorageError};
use crate::config::backup::Destination;
use crate::config::S3Config;
use crate::domain::{Algorithm, Digest, DigestHasher};

impl BlobStore {
    /// The store of a backup destination. A directory is created if
    /// missing (when `create`); S3 uses `s3`'s endpoint, region and
    /// credentials with the destination's bucket and prefix.
    pub fn for_backup(dest: &Destination, s3: &S3Config, create: bool) -> Result<Self, StorageError> {
        match dest {
            Destination::Directory(dir) => {
                if create {
                    std::fs::create_dir_all(dir).map_err(|e| StorageError::Io(dir.display().to_string(), e))?;
                } else if !dir.is_dir() {
                    return Err(StorageError::NotFound(format!("backup directory {}", dir.display())));
                }
                let fs = Arc::new(LocalFileSystem::new_with_prefix(dir)?.with_automatic_cleanup(true).with_fsync(true));
                Ok(Self {
                    store: fs.clone(),
                    local: Some(fs),
                    probe: None,
                    part_size: super::local::LOCAL_PART_SIZE,
                    fsync: true,
                    backend: "filesystem",
                })
            }
            Destination::S3 { bucket, prefix } => {
                let s3 = S3Config { bucket: bucket.clone(), prefix: prefix.clone(), ..s3.clone() };
                let (store, probe) = super::s3::build(&s3)?;
                Ok(Self { store, local: None, probe: Some(probe), part_size: super::s3::S3_PART_SIZE, fsync: false, backend: "s3" })
            }
        }
    }

    /// Copies `key` of `self` to the same key of `to`, streaming, and
    /// returns what the bytes hash to (with `algorithm`) and their length.
    /// The copy is placed whole or not at all; a caller that finds the
    /// wrong digest deletes it.
    pub async fn copy_to(&self, to: &BlobStore, key: &Path, algorithm: Algorithm) -> Result<(Digest, u64), StorageError> {
        let source = self.read(key, None).await?;
        let body = source.map_err(|e| std::io::Error::other(e.to_string())).boxed_local();
        let mut hasher = DigestHasher::new(algorithm);
        let size = to.write_stream(key, body, &mut hasher, u64::MAX).await.map_err(|e| match e {
            super::WriteError::Storage(e) => e,
            other => StorageError::Io(key.to_string(), std::io::Error::other(other.to_string())),
        })?;
        Ok((hasher.finish(), size))
    }

    /// Reads `key` through and returns what it hashes to, and its length.
    pub async fn hash(&self, key: &Path, algorithm: Algorithm) -> Result<(Digest, u64), StorageError> {
        let mut stream = self.read(key, None).await?;
        let mut hasher = DigestHasher::new(algorithm);
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok((hasher.finish(), size))
    }

    /// Streams the local file `path` to `key`; returns its sha256 and length.
    pub async fn put_file(&self, path: &FsPath, key: &Path) -> Result<(Digest, u64), StorageError> {
        let name = path.display().to_string();
        let file = tokio::fs::File::open(path).await.map_err(|e| StorageError::Io(name, e))?;
        let body = tokio_util::io::ReaderStream::new(file).boxed_local();
        let mut hasher = DigestHasher::new(Algorithm::Sha256);
        let size = self.write_stream(key, body, &mut hasher, u64::MAX).await.map_err(|e| match e {
            super::WriteError::Storage(e) => e,
            other => StorageError::Io(key.to_string(), std::io::Error::other(other.to_string())),
        })?;
        Ok((hasher.finish(), size))
    }

    /// Streams `key` into the new local file `path` (mode 0600: metadata
    /// holds secrets); returns its sha256 and length.
    pub async fn get_file(&self, key: &Path, path: &FsPath) -> Result<(Digest, u64), StorageError> {
        let name = path.display().to_string();
        let io = |e| StorageError::Io(name.clone(), e);
        let mut file = tokio::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).await.map_err(io)?;
        let mut stream = self.read(key, None).await?;
        let mut hasher = DigestHasher::new(Algorithm::Sha256);
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.sync_all().await.map_err(io)?;
        Ok((hasher.finish(), size))
    }

    /// Writes a small object whole (a manifest, a list).
    pub async fn put_bytes(&self, key: &Path, bytes: Bytes) -> Result<(), StorageError> {
        self.store.put(key, PutPayload::from(bytes)).await?;
        Ok(())
    }

    /// Reads a small object whole.
    pub async fn get_bytes(&self, key: &Path) -> Result<Bytes, StorageError> {
        let result = self.store.get(key).await.map_err(|e| super::not_found(key, e))?;
        Ok(result.bytes().await?)
    }
}
