//! Blob bytes in an object store (local filesystem or S3-compatible).
//!
//! Layering: `storage` is called by the use-cases in `registry`; it never
//! calls up and knows nothing about metadata or HTTP. It holds bytes only:
//! whether a blob "exists" is decided by the database, never by listing here.
//! Every body is streamed; memory per transfer is bounded by a few part
//! buffers, never the blob.

pub mod layout;

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{BoxStream, LocalBoxStream};
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AwsCredential};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    BackoffConfig, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, StaticCredentialProvider, WriteMultipart,
};

use crate::config::{Backend, Config, S3Config};
use crate::domain::DigestHasher;

/// Part size for multipart uploads to S3, which requires at least 5 MiB.
const S3_PART_SIZE: usize = 8 * 1024 * 1024;
/// Part size on the local filesystem, where parts are just positioned writes.
const LOCAL_PART_SIZE: usize = 1024 * 1024;
/// Parts in flight at once per upload: memory per upload is about
/// (this + 1) × part size. Bodies up to one part go in a single PUT.
const PARTS_IN_FLIGHT: usize = 2;
/// Attempts at a write to one of Wharf's own keys that the store refused
/// with `409 Conflict` (see [`BlobStore::retry_conflicts`]).
const CONFLICT_ATTEMPTS: u32 = 5;
/// The start-up check gives up after this long, whatever the cause.
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);

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
}

/// Bytes per file read when serving a local blob, and reads kept ahead.
const LOCAL_READ_CHUNK: usize = 1024 * 1024;
const LOCAL_READ_AHEAD: usize = 2;

impl BlobStore {
    pub fn from_config(config: &Config) -> Result<Self, StorageError> {
        let part_size = match config.storage.backend {
            Backend::Filesystem => LOCAL_PART_SIZE,
            Backend::S3 => S3_PART_SIZE,
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
                let s3 = &config.storage.s3;
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(&s3.bucket)
                    .with_region(&s3.region)
                    .with_virtual_hosted_style_request(!s3.path_style)
                    .with_allow_http(s3.allow_http);
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                // An explicit provider whenever Wharf has keys: left without
                // one, object_store falls back to the instance-metadata
                // service, which only `use_instance_metadata` may reach.
                if let Some(credential) = s3_credentials(s3, |k| std::env::var(k).ok())? {
                    builder = builder.with_credentials(Arc::new(StaticCredentialProvider::new(credential)));
                }
                // The check fails fast: two quick retries, not the default
                // ten with backoff up to minutes.
                let quick = RetryConfig {
                    backoff: BackoffConfig { init_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(1), base: 2.0 },
                    max_retries: 2,
                    retry_timeout: Duration::from_secs(10),
                };
                let with_prefix = |s: Arc<dyn ObjectStore>| -> Arc<dyn ObjectStore> {
                    if s3.prefix.is_empty() {
                        s
                    } else {
                        Arc::new(PrefixStore::new(s, s3.prefix.as_str()))
                    }
                };
                let where_ = s3.endpoint.as_deref().map_or_else(|| format!("AWS S3 in {}", s3.region), |e| e.to_owned());
                probe = Some((
                    with_prefix(Arc::new(builder.clone().with_retry(quick).build()?)),
                    format!("S3 bucket {:?} at {where_}", s3.bucket),
                ));
                with_prefix(Arc::new(builder.build()?))
            }
        };
        let fsync = local.is_some() && config.storage.fsync;
        Ok(Self { store, local, probe, part_size, fsync })
    }

    /// Proves the store can be used before the server takes requests: on
    /// S3, one listing of the top of Wharf's prefix (a page of at most a few
    /// keys: `blobs/` and `uploads/`), bounded by [`CHECK_TIMEOUT`]. A wrong
    /// endpoint, a missing bucket or refused credentials then fail start-up
    /// with the cause named, instead of a 500 on every push. The filesystem
    /// root was already created by [`Self::from_config`].
    pub async fn check(&self) -> Result<(), StorageError> {
        let Some((probe, store)) = &self.probe else {
            return Ok(());
        };
        let unusable = |cause: String| StorageError::Unusable { store: store.clone(), cause };
        match tokio::time::timeout(CHECK_TIMEOUT, probe.list_with_delimiter(None)).await {
            Ok(Ok(_)) => Ok(()),
            Err(_) => Err(unusable(format!("no answer within {CHECK_TIMEOUT:?}"))),
            // object_store reports every failed listing as a generic error
            // whose text holds the server's answer (NoSuchBucket,
            // InvalidAccessKeyId, SignatureDoesNotMatch, ...) or the
            // transport's; it is passed on whole.
            Ok(Err(e)) => Err(unusable(with_causes(&e))),
        }
    }

    /// Runs a write to one of Wharf's own keys, retrying when the store
    /// answers `409 Conflict` (object_store's `AlreadyExists`). Wharf never
    /// writes create-only: every key it writes is unique by construction (an
    /// upload part named by a fresh UUID) or holds bytes fixed by its name
    /// (a content address), so a conflict can never mean another writer's
    /// different data. Some S3 servers still answer 409: versitygw's posix
    /// backend does when a write's parent directory is removed under it by a
    /// concurrent delete of the last object beside it. A retry succeeds.
    async fn retry_conflicts<T, F, Fut>(&self, key: &Path, mut write: F) -> Result<T, StorageError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StorageError>>,
    {
        let mut attempt = 1;
        loop {
            match write().await {
                Err(StorageError::Store(object_store::Error::AlreadyExists { source, .. })) if attempt < CONFLICT_ATTEMPTS => {
                    tracing::warn!(key = %key, attempt, error = %source, "the object store answered 409 Conflict to a write of a unique key; retrying");
                    tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Streams `body` to `key`, feeding every byte to `hasher`. Returns the
    /// number of bytes written. On any error nothing is left at `key`.
    pub async fn write_stream(
        &self,
        key: &Path,
        mut body: BodyStream,
        hasher: &mut DigestHasher,
        max_bytes: u64,
    ) -> Result<u64, WriteError> {
        let mut total: u64 = 0;
        let mut pending: Vec<Bytes> = Vec::new();
        let mut pending_len = 0usize;
        let mut multipart: Option<WriteMultipart> = None;

        let result: Result<(), WriteError> = async {
            while let Some(chunk) = next_counted(&mut body, &mut total, max_bytes, hasher).await? {
                match multipart.as_mut() {
                    Some(upload) => {
                        upload.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(StorageError::from)?;
                        upload.put(chunk);
                    }
                    None => {
                        pending_len += chunk.len();
                        pending.push(chunk);
                        if pending_len >= self.part_size {
                            let upload = self.store.put_multipart(key).await.map_err(StorageError::from)?;
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

        match (result, multipart) {
            (Ok(()), Some(upload)) => {
                upload.finish().await.map_err(StorageError::from)?;
            }
            (Ok(()), None) => {
                let payload = PutPayload::from_iter(pending);
                self.retry_conflicts(key, || async { Ok(self.store.put(key, payload.clone()).await?) }).await?;
            }
            (Err(e), Some(upload)) => {
                if let Err(abort) = upload.abort().await {
                    tracing::warn!(key = %key, error = %abort, "aborting multipart upload failed");
                }
                return Err(e);
            }
            (Err(e), None) => return Err(e),
        }
        Ok(total)
    }

    /// Streams the object (or a byte range of it).
    pub async fn read(&self, key: &Path, range: Option<Range<u64>>) -> Result<ByteStream, StorageError> {
        Ok(self.open(key, range).await?.into_stream())
    }

    /// Opens the object (or a byte range of it) for serving: a local file is
    /// handed over as a file, so the HTTP layer can send it without copying.
    pub async fn open(&self, key: &Path, range: Option<Range<u64>>) -> Result<BlobBody, StorageError> {
        if let Some(local) = &self.local {
            return Ok(BlobBody::File(open_local_file(local.path_to_filesystem(key)?, key, range).await?));
        }
        let options = GetOptions { range: range.map(GetRange::Bounded), ..Default::default() };
        let result = self.store.get_opts(key, options).await.map_err(|e| not_found(key, e))?;
        Ok(BlobBody::Stream(result.into_stream().map_err(StorageError::from).boxed()))
    }

    /// True on the local filesystem, where an upload grows one file in place
    /// ([`AppendFile`]) instead of gaining an object per chunk that must be
    /// copied together at the end.
    pub fn appends_in_place(&self) -> bool {
        self.local.is_some()
    }

    /// Opens (creating) the upload file at `key` for appending, holding an
    /// exclusive lock on it; [`StorageError::Busy`] if another holds it.
    pub async fn open_append(&self, key: &Path) -> Result<AppendFile, StorageError> {
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

    /// Moves an object; on the filesystem this is an atomic rename. With
    /// fsync on, the file's bytes reach the disk before the rename, and the
    /// store fsyncs the directory entry after it (`with_fsync`), so a blob
    /// that is recorded afterwards survives a crash of the machine.
    pub async fn rename(&self, from: &Path, to: &Path) -> Result<(), StorageError> {
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
    pub async fn concat(&self, parts: &[Path], to: &Path) -> Result<(), StorageError> {
        if let Some(local) = &self.local {
            let sources = parts.iter().map(|p| local.path_to_filesystem(p)).collect::<Result<Vec<_>, _>>()?;
            let target = local.path_to_filesystem(to)?;
            let (name, fsync) = (to.to_string(), self.fsync);
            return tokio::task::spawn_blocking(move || concat_local_files(&sources, &target, fsync))
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
    pub async fn hash_objects(&self, parts: &[Path], mut hasher: DigestHasher) -> Result<DigestHasher, StorageError> {
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
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
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
        match self.store.head(key).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// The static credentials for S3: the config's keys, else the standard AWS
/// environment variables (read through `env`). `None` only when neither has
/// any and `use_instance_metadata` lets object_store ask the cloud.
fn s3_credentials(s3: &S3Config, env: impl Fn(&str) -> Option<String>) -> Result<Option<AwsCredential>, StorageError> {
    if let (Some(key_id), Some(secret_key)) = (&s3.access_key_id, &s3.secret_access_key) {
        return Ok(Some(AwsCredential { key_id: key_id.clone(), secret_key: secret_key.clone(), token: None }));
    }
    let var = |k| env(k).filter(|v: &String| !v.is_empty());
    const ID: &str = "AWS_ACCESS_KEY_ID";
    const SECRET: &str = "AWS_SECRET_ACCESS_KEY";
    match (var(ID), var(SECRET)) {
        (Some(key_id), Some(secret_key)) => Ok(Some(AwsCredential { key_id, secret_key, token: var("AWS_SESSION_TOKEN") })),
        (Some(_), None) => Err(StorageError::PartialEnvCredentials { given: ID, missing: SECRET }),
        (None, Some(_)) => Err(StorageError::PartialEnvCredentials { given: SECRET, missing: ID }),
        (None, None) if s3.use_instance_metadata => Ok(None),
        (None, None) => Err(StorageError::MissingCredentials),
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

/// A local upload file, locked against other writers until dropped. Bytes
/// are written at explicit offsets, so a write cut short leaves only bytes
/// past the recorded size, which the next write or [`AppendFile::truncate`]
/// cuts off.
pub struct AppendFile {
    file: Arc<std::fs::File>,
    name: String,
}

/// Body chunks go to an append's writer thread in batches of about this
/// many bytes (one wake-up per batch, not per network read), with this many
/// batches queued: memory per upload stays near 5 MiB.
const APPEND_BATCH: usize = 1024 * 1024;
const APPEND_QUEUE: usize = 4;

impl AppendFile {
    /// Streams `body` into the file from `offset`, feeding every byte to
    /// `hasher` (on this task, while a blocking thread writes: hashing and
    /// writing overlap). The file ends where the body does. Returns the bytes
    /// written; with an error, what was written is past the recorded size.
    pub async fn write_at(&self, offset: u64, mut body: BodyStream, hasher: &mut DigestHasher, max_bytes: u64) -> Result<u64, WriteError> {
        use std::os::unix::fs::FileExt;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Bytes>>(APPEND_QUEUE);
        let file = self.file.clone();
        let writer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut position = offset;
            while let Some(batch) = rx.blocking_recv() {
                for chunk in batch {
                    file.write_all_at(&chunk, position)?;
                    position += chunk.len() as u64;
                }
            }
            file.set_len(position)
        });
        let mut total: u64 = 0;
        let streamed: Result<(), WriteError> = async {
            let (mut batch, mut batch_len) = (Vec::new(), 0);
            while let Some(chunk) = next_counted(&mut body, &mut total, max_bytes, hasher).await? {
                batch_len += chunk.len();
                batch.push(chunk);
                if batch_len >= APPEND_BATCH {
                    batch_len = 0;
                    if tx.send(std::mem::take(&mut batch)).await.is_err() {
                        return Ok(()); // the writer failed; its error is reported below
                    }
                }
            }
            if !batch.is_empty() {
                let _ = tx.send(batch).await;
            }
            Ok(())
        }
        .await;
        drop(tx);
        let written = writer.await.map_err(|e| StorageError::Io(self.name.clone(), std::io::Error::other(e)))?;
        streamed?;
        written.map_err(|e| StorageError::Io(self.name.clone(), e))?;
        Ok(total)
    }

    /// Cuts the file to `len` bytes (dropping bytes of writes cut short).
    pub async fn truncate(&self, len: u64) -> Result<(), StorageError> {
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
fn concat_local_files(sources: &[std::path::PathBuf], target: &std::path::Path, fsync: bool) -> std::io::Result<()> {
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = target.with_file_name(format!(".concat-{}", uuid::Uuid::new_v4()));
    let written = (|| {
        let mut out = std::fs::File::create(&tmp)?;
        for source in sources {
            std::io::copy(&mut std::fs::File::open(source)?, &mut out)?;
        }
        if fsync {
            out.sync_all()?;
        }
        std::fs::rename(&tmp, target)?;
        if fsync {
            // The blob's directory, and its parent in case the directory is new.
            for dir in target.ancestors().skip(1).take(2) {
                std::fs::File::open(dir)?.sync_all()?;
            }
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
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

/// An open local file and the byte range of it to serve.
#[derive(Debug)]
pub struct LocalFile {
    pub file: std::fs::File,
    pub offset: u64,
    pub len: u64,
    /// The object key, for error messages.
    pub name: String,
}

async fn open_local_file(path: std::path::PathBuf, key: &Path, range: Option<Range<u64>>) -> Result<LocalFile, StorageError> {
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

/// An error's message followed by those of its sources that it does not
/// already include (object_store's say "error sending request" and leave
/// "Connection refused" to a source).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = cause.source();
    }
    message
}

fn not_found(key: &Path, e: object_store::Error) -> StorageError {
    match e {
        object_store::Error::NotFound { .. } => StorageError::NotFound(key.to_string()),
        other => StorageError::Store(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| vars.iter().find(|(name, _)| name == k).map(|(_, v)| v.clone())
    }

    /// An in-memory store that answers `409 Conflict` (as versitygw does
    /// when a directory is removed under a write) to the next `conflicts`
    /// writes, then works.
    #[derive(Debug)]
    struct Conflicting {
        inner: object_store::memory::InMemory,
        conflicts: std::sync::atomic::AtomicU32,
    }

    impl Conflicting {
        fn refuse(&self, location: &Path) -> object_store::Result<()> {
            use std::sync::atomic::Ordering;
            if self.conflicts.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
                return Err(object_store::Error::AlreadyExists { path: location.to_string(), source: "409 Conflict".into() });
            }
            Ok(())
        }
    }

    impl std::fmt::Display for Conflicting {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Conflicting")
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for Conflicting {
        async fn put_opts(
            &self,
            location: &Path,
            payload: PutPayload,
            opts: object_store::PutOptions,
        ) -> object_store::Result<object_store::PutResult> {
            self.refuse(location)?;
            self.inner.put_opts(location, payload, opts).await
        }
        async fn put_multipart_opts(
            &self,
            location: &Path,
            opts: object_store::PutMultipartOptions,
        ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }
        async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<object_store::GetResult> {
            self.inner.get_opts(location, options).await
        }
        fn delete_stream(
            &self,
            locations: BoxStream<'static, object_store::Result<Path>>,
        ) -> BoxStream<'static, object_store::Result<Path>> {
            self.inner.delete_stream(locations)
        }
        fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
            self.inner.list(prefix)
        }
        async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<object_store::ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }
        async fn copy_opts(&self, from: &Path, to: &Path, options: object_store::CopyOptions) -> object_store::Result<()> {
            self.refuse(to)?;
            self.inner.copy_opts(from, to, options).await
        }
    }

    /// A store over [`Conflicting`], and a handle to set its refusals.
    fn conflicting() -> (BlobStore, Arc<Conflicting>) {
        let store = Arc::new(Conflicting { inner: object_store::memory::InMemory::new(), conflicts: 0.into() });
        (BlobStore { store: store.clone(), local: None, probe: None, part_size: S3_PART_SIZE, fsync: false }, store)
    }

    async fn write(blobs: &BlobStore, key: &Path, data: &'static [u8]) -> Result<u64, WriteError> {
        let body: BodyStream = Box::pin(futures::stream::iter([Ok(Bytes::from_static(data))]));
        blobs.write_stream(key, body, &mut DigestHasher::new(crate::domain::Algorithm::Sha256), 1024).await
    }

    async fn contents(blobs: &BlobStore, key: &Path) -> Vec<u8> {
        let chunks: Vec<Bytes> = blobs.read(key, None).await.unwrap().try_collect().await.unwrap();
        chunks.concat()
    }

    #[tokio::test]
    async fn writes_of_unique_keys_are_retried_after_a_conflict() {
        use std::sync::atomic::Ordering;
        let (blobs, store) = conflicting();
        let part = layout::upload_part("u1", "p1");
        store.conflicts.store(2, Ordering::SeqCst);
        assert_eq!(write(&blobs, &part, b"part bytes").await.unwrap(), 10);
        assert_eq!(contents(&blobs, &part).await, b"part bytes");
        assert_eq!(store.conflicts.load(Ordering::SeqCst), 0, "both conflicts were met");

        // The move to the content address (a copy and a delete on S3) too.
        let target = Path::from("blobs/sha256/ab/abcd");
        store.conflicts.store(2, Ordering::SeqCst);
        blobs.rename(&part, &target).await.unwrap();
        assert_eq!(contents(&blobs, &target).await, b"part bytes");
        assert_eq!(blobs.size(&part).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_store_that_keeps_refusing_fails_the_write() {
        use std::sync::atomic::Ordering;
        let (blobs, store) = conflicting();
        let part = layout::upload_part("u1", "p1");
        store.conflicts.store(CONFLICT_ATTEMPTS, Ordering::SeqCst);
        let refused = write(&blobs, &part, b"part bytes").await;
        assert!(matches!(refused, Err(WriteError::Storage(StorageError::Store(object_store::Error::AlreadyExists { .. })))), "{refused:?}");
        assert_eq!(store.conflicts.load(Ordering::SeqCst), 0, "gave up after {CONFLICT_ATTEMPTS} attempts");
        assert_eq!(blobs.size(&part).await.unwrap(), None);
    }

    #[test]
    fn config_keys_win_over_the_environment() {
        let s3 = S3Config { access_key_id: Some("cfg-id".into()), secret_access_key: Some("cfg-secret".into()), ..Default::default() };
        let c = s3_credentials(&s3, env(&[("AWS_ACCESS_KEY_ID", "env-id"), ("AWS_SECRET_ACCESS_KEY", "env-secret")])).unwrap().unwrap();
        assert_eq!((c.key_id.as_str(), c.secret_key.as_str(), c.token), ("cfg-id", "cfg-secret", None));
    }

    #[test]
    fn the_standard_aws_environment_is_used_without_config_keys() {
        let vars = env(&[("AWS_ACCESS_KEY_ID", "env-id"), ("AWS_SECRET_ACCESS_KEY", "env-secret"), ("AWS_SESSION_TOKEN", "tok")]);
        let c = s3_credentials(&S3Config::default(), vars).unwrap().unwrap();
        assert_eq!((c.key_id.as_str(), c.secret_key.as_str(), c.token.as_deref()), ("env-id", "env-secret", Some("tok")));
    }

    #[test]
    fn no_credentials_is_an_error_unless_instance_metadata_is_allowed() {
        let empty = env(&[("AWS_ACCESS_KEY_ID", "")]);
        assert!(matches!(s3_credentials(&S3Config::default(), &empty), Err(StorageError::MissingCredentials)));
        let cloud = S3Config { use_instance_metadata: true, ..Default::default() };
        assert!(s3_credentials(&cloud, &empty).unwrap().is_none());
        let half = env(&[("AWS_ACCESS_KEY_ID", "env-id")]);
        assert!(matches!(s3_credentials(&cloud, half), Err(StorageError::PartialEnvCredentials { missing: "AWS_SECRET_ACCESS_KEY", .. })));
    }
}
