//! Blob bytes in an object store (local filesystem or S3-compatible).
//!
//! Layering: `storage` is called by the use-cases in `registry`; it never
//! calls up and knows nothing about metadata or HTTP. It holds bytes only:
//! whether a blob "exists" is decided by the database, never by listing here.
//! Every body is streamed; memory per transfer is bounded by a few part
//! buffers, never the blob.

mod backup;
pub mod layout;
mod local;
mod s3;
mod staged;
mod timing;
mod upload;

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{BoxStream, LocalBoxStream};
use futures::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart};

pub use self::local::LocalFile;
pub use self::staged::StagedBlob;
pub use self::upload::{Appended, Appender, SealedUpload};
use crate::config::{Backend, Config};
use crate::domain::DigestHasher;

/// Parts in flight at once per upload: memory per upload is about
/// (this + 1) × part size. Bodies up to one part go in a single PUT.
const PARTS_IN_FLIGHT: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("object not found: {0}")]
    NotFound(String),
    #[error("storage configuration: {0}")]
    Config(String),
    #[error("reading {0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0} is being written by another request")]
    Busy(String),
    #[error(
        "no S3 credentials: set storage.s3.access_key_id and storage.s3.secret_access_key \
         (or WHARF_STORAGE__S3__ACCESS_KEY_ID and WHARF_STORAGE__S3__SECRET_ACCESS_KEY), or AWS_ACCESS_KEY_ID \
         and AWS_SECRET_ACCESS_KEY in the environment; on a cloud instance with a role, \
         set storage.s3.use_instance_metadata = true"
    )]
    MissingCredentials,
    #[error("{given} is set in the environment but {missing} is not")]
    PartialEnvCredentials { given: &'static str, missing: &'static str },
    #[error("cannot use {store} (check storage.s3 endpoint, bucket, region and credentials): {cause}")]
    Unusable { store: String, cause: String },
}

/// Why streaming a client body into storage stopped.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("request body: {0}")]
    Body(std::io::Error),
    #[error("body exceeds the limit of {0} bytes")]
    TooLarge(u64),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A client body: actix payloads are not `Send`, so this is a local stream.
pub type BodyStream = LocalBoxStream<'static, Result<Bytes, std::io::Error>>;
/// Bytes read back from storage.
pub type ByteStream = BoxStream<'static, Result<Bytes, StorageError>>;

#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// The same store when it is the local filesystem: reads then go to the
    /// file directly, in large chunks (object_store's local reads use 8 KiB
    /// chunks, one blocking task each, which caps a pull far below the disk).
    local: Option<Arc<LocalFileSystem>>,
    /// The same S3 store with few retries, for the start-up check, and a
    /// description of it for its error message.
    probe: Option<(Arc<dyn ObjectStore>, String)>,
    part_size: usize,
    /// On the filesystem: fsync a blob's file and directory before it is
    /// reported placed (object stores are durable once a write returns).
    fsync: bool,
    /// `filesystem` or `s3`, the backend label of the storage metrics.
    backend: &'static str,
}

impl BlobStore {
    pub fn from_config(config: &Config) -> Result<Self, StorageError> {
        let part_size = match config.storage.backend {
            Backend::Filesystem => local::LOCAL_PART_SIZE,
            Backend::S3 => s3::S3_PART_SIZE,
        };
        let mut local = None;
        let mut probe = None;
        let store: Arc<dyn ObjectStore> = match config.storage.backend {
            Backend::Filesystem => {
                let root = config.blob_path();
                std::fs::create_dir_all(&root).map_err(|e| StorageError::Config(format!("{}: {e}", root.display())))?;
                let fs = Arc::new(LocalFileSystem::new_with_prefix(&root)?.with_automatic_cleanup(true).with_fsync(config.storage.fsync));
                local = Some(fs.clone());
                fs
            }
            Backend::S3 => {
                let (store, check) = s3::build(&config.storage.s3)?;
                probe = Some(check);
                store
            }
        };
        let fsync = local.is_some() && config.storage.fsync;
        let backend = if local.is_some() { "filesystem" } else { "s3" };
        Ok(Self { store, local, probe, part_size, fsync, backend })
    }

    /// Whether the store answers a listing of its top level (readiness):
    /// on S3 through the client with few retries, so an outage shows soon.
    pub async fn ping(&self) -> Result<(), StorageError> {
        let store = self.probe.as_ref().map_or(&self.store, |(probe, _)| probe).clone();
        timing::timed(self.backend, "ping", async move { store.list_with_delimiter(None).await.map(drop).map_err(StorageError::from) })
            .await
    }

    /// Streams `body` to `key`, feeding every byte to `hasher`. Returns the
    /// number of bytes written. On any error nothing is left at `key`.
    pub async fn write_stream(&self, key: &Path, body: BodyStream, hasher: &mut DigestHasher, max_bytes: u64) -> Result<u64, WriteError> {
        timing::timed(self.backend, "put", self.write_stream_untimed(key, body, hasher, max_bytes)).await
    }

    async fn write_stream_untimed(
        &self,
        key: &Path,
        body: BodyStream,
        hasher: &mut DigestHasher,
        max_bytes: u64,
    ) -> Result<u64, WriteError> {
        let (staged, total) = self.stage_in_store(key, body, hasher, max_bytes).await?;
        self.complete_in_store(key, staged).await?;
        Ok(total)
    }

    /// Streams the object (or a byte range of it).
    pub async fn read(&self, key: &Path, range: Option<Range<u64>>) -> Result<ByteStream, StorageError> {
        Ok(self.open(key, range).await?.into_stream())
    }

    /// Opens the object (or a byte range of it) for serving: a local file is
    /// handed over as a file, so the HTTP layer can send it without copying.
    pub async fn open(&self, key: &Path, range: Option<Range<u64>>) -> Result<BlobBody, StorageError> {
        timing::timed(self.backend, "open", self.open_untimed(key, range)).await
    }

    async fn open_untimed(&self, key: &Path, range: Option<Range<u64>>) -> Result<BlobBody, StorageError> {
        if let Some(local) = &self.local {
            return Ok(BlobBody::File(local::open_local_file(local.path_to_filesystem(key)?, key, range).await?));
        }
        let options = GetOptions { range: range.map(GetRange::Bounded), ..Default::default() };
        let result = self.store.get_opts(key, options).await.map_err(|e| not_found(key, e))?;
        Ok(BlobBody::Stream(result.into_stream().map_err(StorageError::from).boxed()))
    }

    /// Moves an object; on the filesystem this is an atomic rename. With
    /// fsync on, the file's bytes reach the disk before the rename, and the
    /// store fsyncs the directory entry after it (`with_fsync`), so a blob
    /// that is recorded afterwards survives a crash of the machine.
    async fn rename(&self, from: &Path, to: &Path) -> Result<(), StorageError> {
        timing::timed(self.backend, "rename", self.rename_untimed(from, to)).await
    }

    async fn rename_untimed(&self, from: &Path, to: &Path) -> Result<(), StorageError> {
        if let (Some(local), true) = (&self.local, self.fsync) {
            let path = local.path_to_filesystem(from)?;
            let name = from.to_string();
            tokio::task::spawn_blocking(move || std::fs::File::open(&path)?.sync_all())
                .await
                .map_err(|e| StorageError::Io(name.clone(), std::io::Error::other(e)))?
                .map_err(|e| StorageError::Io(name, e))?;
        }
        // On S3 this is a copy and a delete; `to` is a content address.
        self.retry_conflicts(to, || async { self.store.rename(from, to).await.map_err(|e| not_found(from, e)) }).await
    }

    /// Writes the concatenation of `parts` to `to`, streaming.
    async fn concat(&self, parts: &[Path], to: &Path) -> Result<(), StorageError> {
        timing::timed(self.backend, "concat", self.concat_untimed(parts, to)).await
    }

    async fn concat_untimed(&self, parts: &[Path], to: &Path) -> Result<(), StorageError> {
        if let Some(local) = &self.local {
            let sources = parts.iter().map(|p| local.path_to_filesystem(p)).collect::<Result<Vec<_>, _>>()?;
            let target = local.path_to_filesystem(to)?;
            let tmp = local.path_to_filesystem(&layout::temporary_beside(to))?;
            let (name, fsync) = (to.to_string(), self.fsync);
            return tokio::task::spawn_blocking(move || local::concat_local_files(&sources, &target, &tmp, fsync))
                .await
                .map_err(|e| StorageError::Io(name.clone(), std::io::Error::other(e)))?
                .map_err(|e| StorageError::Io(name, e));
        }
        // The parts stay until the blob is recorded, so a refused join can start over.
        self.retry_conflicts(to, || self.concat_remote(parts, to)).await
    }

    async fn concat_remote(&self, parts: &[Path], to: &Path) -> Result<(), StorageError> {
        let upload = self.store.put_multipart(to).await?;
        let mut upload = WriteMultipart::new_with_chunk_size(upload, self.part_size);
        let copied: Result<(), StorageError> = async {
            for part in parts {
                let mut stream = self.read(part, None).await?;
                while let Some(chunk) = stream.next().await {
                    upload.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                    upload.put(chunk?);
                }
            }
            Ok(())
        }
        .await;
        match copied {
            Ok(()) => Ok(upload.finish().await.map(|_| ())?),
            Err(e) => {
                let _ = upload.abort().await;
                Err(e)
            }
        }
    }

    /// Hashes the concatenation of `parts` with a fresh hasher.
    async fn hash_objects(&self, parts: &[Path], mut hasher: DigestHasher) -> Result<DigestHasher, StorageError> {
        for part in parts {
            let mut stream = self.read(part, None).await?;
            while let Some(chunk) = stream.next().await {
                hasher.update(&chunk?);
            }
        }
        Ok(hasher)
    }

    /// Deletes an object; a missing object is not an error.
    pub async fn delete(&self, key: &Path) -> Result<(), StorageError> {
        timing::timed(self.backend, "delete", async {
            match self.store.delete(key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// Every object under `prefix`: key, size and last modification, in
    /// pages as the store returns them (nothing is collected up front).
    pub fn list(&self, prefix: &Path) -> BoxStream<'static, Result<StoredObject, StorageError>> {
        self.store
            .list(Some(prefix))
            .map_ok(|meta| StoredObject { key: meta.location, size: meta.size, modified_ms: meta.last_modified.timestamp_millis() })
            .map_err(StorageError::from)
            .boxed()
    }

    /// Object size, or `None` if absent.
    pub async fn size(&self, key: &Path) -> Result<Option<u64>, StorageError> {
        timing::timed(self.backend, "head", async {
            match self.store.head(key).await {
                Ok(meta) => Ok(Some(meta.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }
}

/// The body's next chunk, counted into `total` against `max_bytes` and fed
/// to `hasher`.
async fn next_counted(
    body: &mut BodyStream,
    total: &mut u64,
    max_bytes: u64,
    hasher: &mut DigestHasher,
) -> Result<Option<Bytes>, WriteError> {
    let Some(chunk) = body.next().await else {
        return Ok(None);
    };
    let chunk = chunk.map_err(WriteError::Body)?;
    *total += chunk.len() as u64;
    if *total > max_bytes {
        return Err(WriteError::TooLarge(max_bytes));
    }
    hasher.update(&chunk);
    Ok(Some(chunk))
}

/// One listed object.
#[derive(Debug, Clone)]
pub struct StoredObject {
    pub key: Path,
    pub size: u64,
    pub modified_ms: i64,
}

/// Bytes to serve: a stream, or a range of a local file.
pub enum BlobBody {
    Stream(ByteStream),
    File(LocalFile),
}

impl BlobBody {
    pub fn empty() -> Self {
        BlobBody::Stream(futures::stream::empty().boxed())
    }

    pub fn into_stream(self) -> ByteStream {
        match self {
            BlobBody::Stream(stream) => stream,
            BlobBody::File(file) => file.into_stream(),
        }
    }
}

fn not_found(key: &Path, e: object_store::Error) -> StorageError {
    match e {
        object_store::Error::NotFound { .. } => StorageError::NotFound(key.to_string()),
        other => StorageError::Store(other),
    }
}
