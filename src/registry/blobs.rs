//! Blob read and delete use-cases.

use std::ops::Range;

use super::protection::protected_set;
use super::{audited_write, deny, record, Outcome, Registry, RegistryError};
use crate::domain::{Actor, AuditAction, AuditEntry, Digest, RepoName};
use crate::storage::{layout, BlobBody};

/// An inclusive byte range as a client asks for it (`bytes=a-b`, `a-`, `-n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    From { start: u64, end: Option<u64> },
    Suffix(u64),
}

impl ByteRange {
    /// The half-open range within a blob of `size` bytes, if satisfiable.
    pub fn resolve(self, size: u64) -> Option<Range<u64>> {
        match self {
            ByteRange::From { start, end } => {
                if start >= size {
                    return None;
                }
                let end = end.map_or(size - 1, |e| e.min(size - 1));
                (end >= start).then_some(start..end + 1)
            }
            ByteRange::Suffix(n) => (n > 0 && size > 0).then(|| size.saturating_sub(n)..size),
        }
    }
}

/// A blob body ready to send.
pub struct BlobContent {
    pub size: u64,
    /// The half-open byte range sent, when a range was asked for.
    pub range: Option<Range<u64>>,
    pub body: BlobBody,
}

impl Registry {
    /// Size of a blob this repository may serve.
    pub async fn stat_blob(&self, repo: &RepoName, digest: &Digest) -> Result<u64, RegistryError> {
        let (name, d) = (repo.clone(), digest.clone());
        self.db
            .read(move |tx| -> Result<u64, RegistryError> {
                let unknown = || RegistryError::BlobUnknown(d.to_string());
                let repo_id = tx.repository_id(&name)?.ok_or_else(unknown)?;
                tx.linked_blob_size(repo_id, &d)?.ok_or_else(unknown)
            })
            .await
    }

    /// Opens a blob (or a range of it) for streaming.
    pub async fn read_blob(&self, repo: &RepoName, digest: &Digest, range: Option<ByteRange>) -> Result<BlobContent, RegistryError> {
        let size = self.stat_blob(repo, digest).await?;
        let range = match range {
            Some(r) => Some(r.resolve(size).ok_or(RegistryError::RangeNotSatisfiable { size })?),
            None => None,
        };
        // An empty blob may have no object behind it on some stores; serve it directly.
        let body = if size == 0 {
            BlobBody::empty()
        } else {
            // Never more than the recorded size, whatever the file holds.
            self.blobs.open(&layout::blob(digest), Some(range.clone().unwrap_or(0..size))).await?
        };
        Ok(BlobContent { size, range, body })
    }

    /// `DELETE /v2/<name>/blobs/<digest>`: the repository stops serving it;
    /// garbage collection frees the bytes once nothing references them. A
    /// blob the one protection rule protects is refused.
    pub async fn delete_blob(&self, actor: &Actor, repo: &RepoName, digest: &Digest) -> Result<(), RegistryError> {
        if !self.config.allow_delete {
            return Err(RegistryError::DeleteDisabled);
        }
        let (repo_name, digest, actor, policy) = (repo.clone(), digest.clone(), actor.clone(), self.policy.clone());
        audited_write(&self.db, move |tx| {
            let (name, d) = (repo_name.as_str(), digest.as_str());
            let unknown = || RegistryError::BlobUnknown(d.to_owned());
            let repo_id = tx.repository_id(&repo_name)?.ok_or_else(unknown)?;
            if tx.linked_blob_size(repo_id, &digest)?.is_none() {
                return Err(unknown());
            }
            if let Some(p) = protected_set(tx, &policy, repo_id)?.blob(d) {
                return deny(tx, &actor, name, Some(d), p.refusal(d));
            }
            tx.unlink_blob(repo_id, &digest)?;
            record(tx, &AuditEntry::new(&actor, AuditAction::BlobDelete).repository(name).digest(d))?;
            Ok(Outcome::Done(()))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::ByteRange;

    #[test]
    fn ranges_resolve_like_http() {
        assert_eq!(ByteRange::From { start: 10, end: Some(19) }.resolve(100), Some(10..20));
        assert_eq!(ByteRange::From { start: 90, end: Some(200) }.resolve(100), Some(90..100));
        assert_eq!(ByteRange::From { start: 5, end: None }.resolve(10), Some(5..10));
        assert_eq!(ByteRange::Suffix(3).resolve(10), Some(7..10));
        assert_eq!(ByteRange::From { start: 100, end: None }.resolve(100), None);
        assert_eq!(ByteRange::From { start: 5, end: Some(4) }.resolve(100), None);
        assert_eq!(ByteRange::Suffix(0).resolve(10), None);
    }
}
