//! Blob upload use-cases: start, append a chunk, status, complete, cancel,
//! monolithic push and cross-repository mount.
//!
//! Order on completion (as in CNCF distribution's blob writer): verify the
//! digest, move the bytes to their content address, then record metadata,
//! then clean up. Until the metadata row exists the blob is invisible.
//!
//! A whole blob in one request whose digest came with it (`POST ?digest=`
//! with a body, or a `PUT ?digest=` with a body on a session that has no
//! bytes yet: how docker, crane and most clients push a small blob) skips
//! the upload's parts: its bytes go straight towards their content address
//! ([`StagedBlob`](crate::storage::StagedBlob)), and the session row is
//! only deleted with the record. One file, written once; one database write
//! and four reads fewer per blob (a `POST ?digest=` opens no session either).

use super::{Registry, RegistryError};
use crate::db::uploads::{Upload, UploadPart};
use crate::db::DbError;
use crate::domain::{Algorithm, Digest, DigestHasher, RepoName, UploadId};
use crate::storage::{Appended, BodyStream, StorageError};

/// Claim attempts 50 ms apart before an upload gives up on a digest that
/// garbage collection is deleting.
const CLAIM_ATTEMPTS: u32 = 600;

/// Where an upload session stands.
#[derive(Debug, Clone)]
pub struct UploadStatus {
    pub id: String,
    /// Bytes received so far.
    pub size: u64,
}

/// The result of a mount request.
pub enum MountOutcome {
    Mounted,
    /// The blob could not be mounted; a normal upload session was opened instead.
    Started(UploadStatus),
}

impl Registry {
    /// `POST /v2/<name>/blobs/uploads/`: opens an upload session.
    pub async fn start_upload(&self, repo: &RepoName) -> Result<UploadStatus, RegistryError> {
        let id = UploadId::new();
        let state = DigestHasher::new(Algorithm::Sha256).save();
        let (name, upload_id) = (repo.clone(), id.clone());
        // A session lost to a power failure loses no bytes: the client's
        // next request on it gets BLOB_UPLOAD_UNKNOWN and starts over.
        self.db
            .write_deferred(move |tx| -> Result<(), RegistryError> {
                let repo_id = tx.ensure_repository(&name)?;
                tx.create_upload(&upload_id, repo_id, &state)?;
                Ok(())
            })
            .await?;
        tracing::debug!(repository = %repo, upload = %id, "upload started");
        Ok(UploadStatus { id: id.to_string(), size: 0 })
    }

    /// `POST ...?mount=<digest>&from=<repo>`: links a blob another repository
    /// has. Without `from`, any repository holding the blob may serve it.
    pub async fn mount_blob(&self, repo: &RepoName, digest: &Digest, from: Option<&RepoName>) -> Result<MountOutcome, RegistryError> {
        let (name, d, source) = (repo.clone(), digest.clone(), from.cloned());
        let mounted = self
            .db
            .write(move |tx| -> Result<bool, RegistryError> {
                let available = match &source {
                    Some(source) => match tx.repository_id(source)? {
                        Some(source_id) => tx.linked_blob_size(source_id, &d)?.is_some(),
                        None => false,
                    },
                    None => tx.blob_size(&d)?.is_some(),
                };
                if available {
                    let repo_id = tx.ensure_repository(&name)?;
                    tx.link_blob(repo_id, &d)?;
                    tx.touch_blob(&d)?;
                }
                Ok(available)
            })
            .await?;
        if mounted {
            Ok(MountOutcome::Mounted)
        } else {
            Ok(MountOutcome::Started(self.start_upload(repo).await?))
        }
    }

    /// `POST ...?digest=<digest>` with a body: the whole blob in one request,
    /// with no session.
    pub async fn push_blob(&self, repo: &RepoName, digest: &Digest, body: BodyStream) -> Result<(), RegistryError> {
        self.store_whole_blob(repo, digest, body, None).await
    }

    /// A whole blob whose digest came with it: staged towards its content
    /// address, verified, placed under a claim and recorded. `session` is
    /// the upload a `PUT` completes, deleted with the record (and on a
    /// digest mismatch, as any completion does).
    async fn store_whole_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        body: BodyStream,
        session: Option<UploadId>,
    ) -> Result<(), RegistryError> {
        let mut hasher = DigestHasher::new(digest.algorithm());
        let staged = self.blobs.stage_blob(digest, body, &mut hasher, self.config.max_blob_bytes).await?;
        let computed = hasher.finish();
        if &computed != digest {
            staged.discard().await;
            if let Some(id) = &session {
                self.forget_upload(id).await;
            }
            return Err(RegistryError::DigestMismatch { given: digest.to_string(), computed: computed.to_string() });
        }
        let size = staged.size();
        let (claim_id, stored) = self.claim_blob(digest).await?;
        let placed = if stored {
            staged.discard().await;
            Ok(())
        } else {
            staged.place().await
        };
        if let Err(e) = placed {
            self.release_claim(&claim_id).await;
            return Err(e.into());
        }
        self.record_blob(repo, digest, size, session, claim_id).await
    }

    /// `GET /v2/<name>/blobs/uploads/<id>`.
    pub async fn upload_status(&self, repo: &RepoName, id: &str) -> Result<UploadStatus, RegistryError> {
        let row = self.load_upload(repo, id).await?;
        Ok(UploadStatus { id: row.id.to_string(), size: row.size })
    }

    /// `PATCH /v2/<name>/blobs/uploads/<id>`: appends a chunk. `start` is the
    /// first byte offset from `Content-Range`, if the client sent one.
    /// `range` is the request's `Content-Range` (first and last byte), if any.
    pub async fn append_upload(
        &self,
        repo: &RepoName,
        id: &str,
        range: Option<(u64, u64)>,
        body: BodyStream,
    ) -> Result<UploadStatus, RegistryError> {
        let row = self.load_upload(repo, id).await?;
        if let Some((start, _)) = range {
            if start != row.size {
                return Err(RegistryError::RangeInvalid { current: row.size, requested: start });
            }
        }
        let (size, _) = self.append_part(row, body, range).await?;
        Ok(UploadStatus { id: id.to_owned(), size })
    }

    /// `PUT /v2/<name>/blobs/uploads/<id>?digest=<digest>`, with an optional
    /// last chunk as body.
    pub async fn complete_upload(
        &self,
        repo: &RepoName,
        id: &str,
        digest: &Digest,
        range: Option<(u64, u64)>,
        body: Option<BodyStream>,
    ) -> Result<(), RegistryError> {
        let row = self.load_upload(repo, id).await?;
        if let Some((start, _)) = range {
            if start != row.size {
                return Err(RegistryError::RangeInvalid { current: row.size, requested: start });
            }
        }
        let id = row.id.clone();
        let (size, hasher) = match body {
            // The whole blob in this request.
            Some(body) if row.size == 0 && range.is_none() => return self.store_whole_blob(repo, digest, body, Some(id)).await,
            Some(body) => self.append_part(row, body, range).await?,
            None => {
                let hasher = DigestHasher::restore(&row.hasher_state).ok_or(DbError::Corrupt("uploads.hasher_state"))?;
                (row.size, hasher)
            }
        };
        let upload_id = id.clone();
        let rows = self.db.read(move |tx| tx.upload_parts(&upload_id)).await?;
        // Only the parts the hash covers: a concurrent append recorded since
        // the hash was loaded must not slip into the blob.
        let mut covered = 0u64;
        let mut parts: Vec<String> = Vec::new();
        for part in rows {
            if covered >= size {
                break;
            }
            covered += part.size;
            parts.push(part.object_key);
        }
        if covered != size {
            return Err(RegistryError::UploadInvalid(format!("the upload's parts hold {covered} bytes, not {size}")));
        }
        // Sealed to the end, so no append can land while the blob is
        // checked and placed.
        let mut sealed = match self.blobs.seal_upload(id.as_str(), parts, size).await {
            Err(StorageError::Busy(_)) => return Err(RegistryError::RangeInvalid { current: size, requested: size }),
            other => other?,
        };

        // The running hash is of the session's algorithm; another one needs a re-read.
        let computed = if hasher.algorithm() == digest.algorithm() {
            hasher.finish()
        } else {
            sealed.hash(DigestHasher::new(digest.algorithm())).await?.finish()
        };
        if &computed != digest {
            self.forget_upload(&id).await;
            sealed.discard().await;
            return Err(RegistryError::DigestMismatch { given: digest.to_string(), computed: computed.to_string() });
        }

        // The claim keeps garbage collection off this digest until the row
        // below is written, so the bytes checked or placed here stay.
        let (claim_id, stored) = self.claim_blob(digest).await?;
        if !stored {
            if let Err(e) = sealed.place(digest).await {
                self.release_claim(&claim_id).await;
                return Err(e.into());
            }
        }
        self.record_blob(repo, digest, size, Some(id), claim_id).await?;
        sealed.finish().await;
        Ok(())
    }

    /// Records blob `digest`, placed at its address under claim `claim_id`,
    /// as linked to `repo`, deleting upload `session` and the claim with it.
    async fn record_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        session: Option<UploadId>,
        claim_id: String,
    ) -> Result<(), RegistryError> {
        let (name, d) = (repo.clone(), digest.clone());
        self.db
            .write(move |tx| -> Result<(), RegistryError> {
                tx.insert_blob(&d, size)?;
                tx.touch_blob(&d)?;
                let repo_id = tx.ensure_repository(&name)?;
                tx.link_blob(repo_id, &d)?;
                if let Some(upload_id) = &session {
                    tx.delete_upload(upload_id)?;
                }
                tx.release_claim(&claim_id)?;
                Ok(())
            })
            .await?;
        tracing::info!(repository = %repo, digest = %digest, size, "blob stored");
        metrics::counter!("wharf_registry_blobs_stored_total").increment(1);
        metrics::counter!("wharf_registry_blob_bytes_stored_total").increment(size);
        Ok(())
    }

    /// Takes a claim on `digest`, waiting while garbage collection is
    /// deleting that digest's bytes (one batch: normally milliseconds).
    /// Returns the claim and whether the blob is stored already (its bytes
    /// then need no placing).
    async fn claim_blob(&self, digest: &Digest) -> Result<(String, bool), RegistryError> {
        let claim_id = uuid::Uuid::new_v4().to_string();
        for _ in 0..CLAIM_ATTEMPTS {
            let (c, d) = (claim_id.clone(), digest.clone());
            // A claim only matters while this upload runs; the record that
            // releases it is synced, and makes it durable if it ever was.
            let claimed = self
                .db
                .write_deferred(move |tx| -> Result<Option<bool>, DbError> {
                    if !tx.claim_blob(&c, &d)? {
                        return Ok(None);
                    }
                    Ok(Some(tx.blob_size(&d)?.is_some()))
                })
                .await?;
            if let Some(stored) = claimed {
                return Ok((claim_id, stored));
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Err(RegistryError::Busy(format!("garbage collection is deleting {digest}; try again")))
    }

    async fn release_claim(&self, claim_id: &str) {
        let c = claim_id.to_owned();
        if let Err(e) = self.db.write_deferred(move |tx| tx.release_claim(&c)).await {
            tracing::warn!(claim = %claim_id, error = %e, "could not release a blob claim; it expires on its own");
        }
    }

    /// `DELETE /v2/<name>/blobs/uploads/<id>`.
    pub async fn cancel_upload(&self, repo: &RepoName, id: &str) -> Result<(), RegistryError> {
        let row = self.load_upload(repo, id).await?;
        let upload_id = row.id.clone();
        let parts = self.db.read(move |tx| tx.upload_parts(&upload_id)).await?;
        let parts: Vec<String> = parts.into_iter().map(|p| p.object_key).collect();
        self.forget_upload(&row.id).await;
        self.blobs.discard_upload(row.id.as_str(), &parts).await;
        Ok(())
    }

    /// The session `id` names in `repo`; an id Wharf never handed out is as
    /// unknown as a finished session.
    async fn load_upload(&self, repo: &RepoName, id: &str) -> Result<Upload, RegistryError> {
        let upload_id = UploadId::parse(id).map_err(|_| RegistryError::UploadUnknown(id.to_owned()))?;
        let name = repo.clone();
        self.db
            .read(move |tx| -> Result<_, RegistryError> {
                let unknown = || RegistryError::UploadUnknown(upload_id.to_string());
                let row = tx.upload(&upload_id)?.ok_or_else(unknown)?;
                let repo_id = tx.repository_id(&name)?;
                if repo_id != Some(row.repository) {
                    return Err(unknown());
                }
                Ok(row)
            })
            .await
    }

    /// Streams `body` into the upload at its recorded size and records it,
    /// unless another request appended first (then 416). With a
    /// `Content-Range`, a body of another length is refused and its bytes
    /// dropped.
    async fn append_part(&self, row: Upload, body: BodyStream, range: Option<(u64, u64)>) -> Result<(u64, DigestHasher), RegistryError> {
        let room = self.config.max_blob_bytes.saturating_sub(row.size);
        let appender = match self.blobs.open_upload(row.id.as_str()).await {
            Err(StorageError::Busy(_)) => {
                // Read the body all the same: a client still sending when
                // the answer comes would see a reset instead of the 416.
                drain(body, room).await;
                return Err(RegistryError::RangeInvalid { current: row.size, requested: row.size });
            }
            other => other?,
        };
        // Once opened, the recorded size is final in place (the upload is
        // locked). `row` may predate another request's append; writing at its
        // size would overwrite those bytes.
        let upload_id = row.id.clone();
        let current = self.db.read(move |tx| tx.upload(&upload_id)).await?;
        let row = match current {
            Some(now) if now.size == row.size && now.repository == row.repository => now,
            Some(now) => {
                drain(body, room).await;
                return Err(RegistryError::RangeInvalid { current: now.size, requested: row.size });
            }
            None => {
                // Cancelled or completed meanwhile.
                appender.abandon().await;
                return Err(RegistryError::UploadUnknown(row.id.to_string()));
            }
        };
        let mut hasher = DigestHasher::restore(&row.hasher_state).ok_or(DbError::Corrupt("uploads.hasher_state"))?;
        let appended = appender.append(row.size, body, &mut hasher, room).await?;
        let recorded = self.record_part(&row, &appended, range, &hasher).await;
        if !matches!(recorded, Ok(true)) {
            appender.unrecorded().await?;
        }
        recorded?;
        Ok((row.size + appended.size, hasher))
    }

    /// Checks the bytes an append wrote against the request's `Content-Range`
    /// and records them as the upload's next part. `Ok(false)`: nothing was
    /// written, so nothing recorded. A lost race with another append is 416.
    async fn record_part(
        &self,
        row: &Upload,
        appended: &Appended,
        range: Option<(u64, u64)>,
        hasher: &DigestHasher,
    ) -> Result<bool, RegistryError> {
        let written = appended.size;
        if let Some((start, end)) = range {
            let declared = end - start + 1;
            if written != declared {
                return Err(RegistryError::UploadInvalid(format!(
                    "Content-Range {start}-{end} announces {declared} bytes but the body has {written}"
                )));
            }
        }
        if written == 0 {
            return Ok(false);
        }
        let part = UploadPart { object_key: appended.key.clone(), size: written };
        let state = hasher.save();
        let (upload_id, expected) = (row.id.clone(), row.size);
        let won = self.db.write(move |tx| tx.append_upload_part(&upload_id, expected, &part, &state)).await?;
        if !won {
            return Err(RegistryError::RangeInvalid { current: row.size, requested: row.size });
        }
        Ok(true)
    }

    /// Removes the session; a failure is logged, not returned, since
    /// garbage collection removes abandoned sessions later.
    async fn forget_upload(&self, id: &UploadId) {
        let upload_id = id.clone();
        if let Err(e) = self.db.write(move |tx| tx.delete_upload(&upload_id)).await {
            tracing::warn!(upload = %id, error = %e, "could not delete upload session");
        }
    }
}

/// Reads and drops a request body, up to `limit` bytes.
async fn drain(mut body: BodyStream, limit: u64) {
    use futures::StreamExt;
    let mut seen = 0u64;
    while let Some(Ok(chunk)) = body.next().await {
        seen += chunk.len() as u64;
        if seen > limit {
            break;
        }
    }
}
