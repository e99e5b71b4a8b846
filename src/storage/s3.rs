//! The S3 backend's specifics: the client (credentials, retries, prefix),
//! the start-up check, and retries of writes a server refuses with
//! `409 Conflict`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AwsCredential, Checksum};
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ObjectStore, RetryConfig, StaticCredentialProvider};

use super::{BlobStore, StorageError};
use crate::config::{S3Config, S3Integrity};

/// Part size for multipart uploads to S3, which requires at least 5 MiB.
pub(super) const S3_PART_SIZE: usize = 8 * 1024 * 1024;
/// Attempts at a write to one of Wharf's own keys that the store refused
/// with `409 Conflict` (see [`BlobStore::retry_conflicts`]).
const CONFLICT_ATTEMPTS: u32 = 5;
/// The start-up check gives up after this long, whatever the cause.
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);

/// A store for the start-up check, and a description of it for its error message.
pub(super) type Probe = (Arc<dyn ObjectStore>, String);

/// The store for `s3`, and the same store with few retries for the check.
pub(super) fn build(s3: &S3Config) -> Result<(Arc<dyn ObjectStore>, Probe), StorageError> {
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&s3.bucket)
        .with_region(&s3.region)
        .with_virtual_hosted_style_request(!s3.path_style)
        .with_allow_http(s3.allow_http);
    builder = match s3.integrity {
        S3Integrity::Crc64nvme => builder.with_unsigned_payload(true).with_checksum_algorithm(Checksum::CRC64NVME),
        S3Integrity::Signed => builder.with_unsigned_payload(false),
    };
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
    let probe = (with_prefix(Arc::new(builder.clone().with_retry(quick).build()?)), format!("S3 bucket {:?} at {where_}", s3.bucket));
    Ok((with_prefix(Arc::new(builder.build()?)), probe))
}

impl BlobStore {
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
    pub(super) async fn retry_conflicts<T, F, Fut>(&self, key: &Path, mut write: F) -> Result<T, StorageError>
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use futures::stream::BoxStream;
    use futures::TryStreamExt;
    use object_store::{GetOptions, PutPayload};

    use super::*;
    use crate::domain::DigestHasher;
    use crate::storage::{layout, BodyStream, WriteError};

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
        (BlobStore { store: store.clone(), local: None, probe: None, part_size: S3_PART_SIZE, fsync: false, backend: "s3" }, store)
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
