//! Signed promotions: finds a digest's cosign signatures (the
//! `sha256-<hex>.sig` tag and OCI 1.1 referrers), reads their payloads from
//! storage (bounded), and asks the pure gate (`governance::signatures`).
//! The verdict is recorded with the release (`db::Signatures`); rollback
//! re-uses it, history shows it.

use futures::StreamExt;

use super::manifests::parse;
use super::{Registry, RegistryError, Tx};
use crate::config::signatures::IndexPolicy;
use crate::config::GateConfig;
use crate::db::RepoId;
use crate::domain::{Digest, RepoName, Stage, Tag};
use crate::governance::gates::GateFailure;
use crate::governance::signatures::{self, Candidate, Verdict, COSIGN_SIGNATURE_ARTIFACT_TYPE, MAX_SIGNATURES, SBOM_ARTIFACT_TYPES};
use crate::storage::layout;

/// Referrers looked at per subject.
const MAX_REFERRERS: u32 = 256;

/// cosign's tag for the signatures of `digest`: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &Digest) -> Option<Tag> {
    Tag::parse(&format!("{}.sig", digest.as_str().replacen(':', "-", 1))).ok()
}

/// A recorded verdict, with what today's configuration says of its keys.
#[derive(Debug, Clone)]
pub struct RecordedVerdict {
    pub verdict: Verdict,
    /// Fingerprints of the signers whose key is now configured as revoked.
    pub revoked: Vec<String>,
}

impl Registry {
    /// Runs the stage's signature and SBOM gates on `digest` (its manifest
    /// is `media_type`/`content`): `Ok(None)` when the stage has neither.
    pub(crate) async fn signature_gates(
        &self,
        repo: &RepoName,
        gate: &GateConfig,
        digest: &Digest,
        media_type: &str,
        content: &[u8],
    ) -> Result<Option<Result<Verdict, Vec<GateFailure>>>, RegistryError> {
        if gate.require_signature.is_none() && !gate.require_sbom {
            return Ok(None);
        }
        let now = crate::domain::now_ms();
        let mut verdict = Verdict { verified_at: now, ..Default::default() };
        let mut failed = Vec::new();
        if let Some(sig) = &gate.require_signature {
            let parsed = parse(Some(media_type), content)?;
            let subjects: Vec<Digest> = match sig.index {
                IndexPolicy::Platforms if !parsed.children.is_empty() => parsed.children.into_iter().map(|c| c.digest).collect(),
                _ => vec![digest.clone()],
            };
            for subject in subjects.iter().take(MAX_SIGNATURES) {
                let candidates = self.signature_candidates(repo, subject).await?;
                match signatures::verify(sig, repo.as_str(), subject.as_str(), &candidates, now) {
                    Ok(signers) => verdict.signers.extend(signers),
                    Err(f) => failed.extend(f),
                }
            }
        }
        if gate.require_sbom {
            verdict.sboms = self.sbom_referrers(repo, digest).await?;
            if verdict.sboms.is_empty() {
                failed.push(GateFailure::SbomMissing { subject: digest.to_string() });
            }
        }
        metrics::counter!("wharf_signature_checks_total", "outcome" => if failed.is_empty() { "passed" } else { "refused" }).increment(1);
        Ok(Some(if failed.is_empty() { Ok(verdict) } else { Err(failed) }))
    }

    /// The signature manifests of `subject`: the cosign tag's target and the
    /// cosign signature referrers, each turned into candidates (one per
    /// signature layer) with its payload read from storage.
    async fn signature_candidates(&self, repo: &RepoName, subject: &Digest) -> Result<Vec<Candidate>, RegistryError> {
        let (name, subject) = (repo.clone(), subject.clone());
        let manifests = self
            .db
            .read(move |tx| -> Result<Vec<(Digest, Vec<u8>)>, RegistryError> {
                let Some(repo_id) = tx.repository_id(&name)? else { return Ok(vec![]) };
                let mut digests = Vec::new();
                if let Some(target) = signature_tag(&subject).map(|t| tx.tag_target(repo_id, &t)).transpose()?.flatten() {
                    digests.push(target);
                }
                for r in tx.referrers(repo_id, &subject, MAX_REFERRERS)? {
                    let t = r.artifact_type.as_deref();
                    if (t == Some(COSIGN_SIGNATURE_ARTIFACT_TYPE) || t == Some(signatures::SIMPLE_SIGNING_MEDIA_TYPE))
                        && !digests.contains(&r.digest)
                    {
                        digests.push(r.digest);
                    }
                }
                let mut out = Vec::new();
                for d in digests.into_iter().take(MAX_SIGNATURES) {
                    if let Some(m) = tx.manifest(repo_id, &d)? {
                        out.push((d, m.content));
                    }
                }
                Ok(out)
            })
            .await?;
        let mut candidates = Vec::new();
        for (manifest, content) in manifests {
            let layers = match signatures::signature_layers(&content) {
                Ok(layers) => layers,
                Err(why) => {
                    candidates.push(Candidate { manifest: manifest.to_string(), payload: Err(why), signature: String::new() });
                    continue;
                }
            };
            for layer in layers {
                if candidates.len() >= MAX_SIGNATURES {
                    return Ok(candidates);
                }
                let payload = self.read_payload(repo, &layer.payload_digest).await;
                candidates.push(Candidate { manifest: manifest.to_string(), payload, signature: layer.signature });
            }
        }
        Ok(candidates)
    }

    /// A signature payload blob, at most `MAX_PAYLOAD_BYTES`; why not, else.
    async fn read_payload(&self, repo: &RepoName, digest: &str) -> Result<Vec<u8>, String> {
        let digest = Digest::parse(digest).map_err(|_| "invalid payload digest".to_owned())?;
        let size = match self.stat_blob(repo, &digest).await {
            Ok(size) => size,
            Err(RegistryError::BlobUnknown(_)) => return Err(format!("payload {digest} is not in the repository")),
            Err(e) => return Err(format!("payload {digest}: {e}")),
        };
        if size > signatures::MAX_PAYLOAD_BYTES {
            return Err(format!("payload {digest} is larger than {} bytes", signatures::MAX_PAYLOAD_BYTES));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        let mut stream = self.blobs.read(&layout::blob(&digest), None).await.map_err(|e| format!("payload {digest}: {e}"))?;
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.map_err(|e| format!("payload {digest}: {e}"))?);
            if bytes.len() as u64 > signatures::MAX_PAYLOAD_BYTES {
                return Err(format!("payload {digest} is larger than {} bytes", signatures::MAX_PAYLOAD_BYTES));
            }
        }
        Ok(bytes)
    }

    /// SPDX and CycloneDX referrers of `subject`.
    async fn sbom_referrers(&self, repo: &RepoName, subject: &Digest) -> Result<Vec<String>, RegistryError> {
        let (name, subject) = (repo.clone(), subject.clone());
        self.db
            .read(move |tx| -> Result<_, RegistryError> {
                let Some(repo_id) = tx.repository_id(&name)? else { return Ok(vec![]) };
                Ok(tx
                    .referrers(repo_id, &subject, MAX_REFERRERS)?
                    .into_iter()
                    .filter(|r| r.artifact_type.as_deref().is_some_and(|t| SBOM_ARTIFACT_TYPES.contains(&t)))
                    .map(|r| r.digest.to_string())
                    .collect())
            })
            .await
    }

    /// The verdicts recorded with these releases (`None`: none recorded).
    pub async fn release_verdicts(
        &self,
        repo: &RepoName,
        releases: Vec<(Stage, i64)>,
    ) -> Result<Vec<Option<RecordedVerdict>>, RegistryError> {
        let name = repo.clone();
        let policy = self.policy.clone();
        self.db
            .read(move |tx| -> Result<_, RegistryError> {
                let Some(repo_id) = tx.repository_id(&name)? else { return Ok(vec![None; releases.len()]) };
                releases
                    .iter()
                    .map(|(stage, seq)| {
                        Ok(read_verdict(tx, repo_id, stage, *seq)?.map(|verdict| {
                            let revoked = verdict
                                .signers
                                .iter()
                                .filter(|s| policy.is_revoked(&s.fingerprint))
                                .map(|s| s.fingerprint.clone())
                                .collect();
                            RecordedVerdict { verdict, revoked }
                        }))
                    })
                    .collect()
            })
            .await
    }

    /// Sets `wharf_releases_signed_by_revoked_key`: current releases (of
    /// any stage, any repository) verified with a key now revoked.
    pub async fn refresh_revoked_gauge(&self) -> Result<usize, RegistryError> {
        let policy = self.policy.clone();
        let count = self
            .db
            .read(move |tx| -> Result<usize, RegistryError> {
                Ok(tx
                    .current_verdicts()?
                    .iter()
                    .filter_map(|v| serde_json::from_str::<Verdict>(v).ok())
                    .filter(|v| v.signers.iter().any(|s| policy.is_revoked(&s.fingerprint)))
                    .count())
            })
            .await?;
        metrics::gauge!("wharf_releases_signed_by_revoked_key").set(count as f64);
        Ok(count)
    }
}

/// A recorded verdict; one that no longer parses reads as none.
pub(crate) fn read_verdict(tx: &dyn Tx, repo_id: RepoId, stage: &Stage, sequence: i64) -> Result<Option<Verdict>, RegistryError> {
    Ok(tx.verdict(repo_id, stage, sequence)?.and_then(|v| serde_json::from_str(&v).ok()))
}

/// Records `verdict` with a release.
pub(crate) fn record_verdict(tx: &dyn Tx, repo_id: RepoId, stage: &Stage, sequence: i64, verdict: &Verdict) -> Result<(), RegistryError> {
    let text = serde_json::to_string(verdict).map_err(|e| RegistryError::BadRequest(format!("verdict: {e}")))?;
    Ok(tx.record_verdict(repo_id, stage, sequence, &text)?)
}
