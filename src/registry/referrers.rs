//! The referrers API: manifests whose `subject` is a given digest.

use serde_json::{json, Map, Value};

use super::{Registry, RegistryError};
use crate::domain::{Digest, RepoName};

impl Registry {
    /// Descriptors of the referrers of `subject`, optionally only those of one
    /// artifact type. A subject that does not exist simply has none.
    pub async fn referrers(&self, repo: &RepoName, subject: &Digest, artifact_type: Option<String>) -> Result<Vec<Value>, RegistryError> {
        let (name, subject) = (repo.clone(), subject.clone());
        let limit = self.config.max_page_size * 10;
        let rows = self
            .db
            .read(move |tx| -> Result<_, RegistryError> {
                match tx.repository_id(&name)? {
                    Some(repo_id) => Ok(tx.referrers(repo_id, &subject, limit)?),
                    None => Ok(vec![]),
                }
            })
            .await?;
        Ok(rows
            .into_iter()
            .filter(|r| artifact_type.is_none() || r.artifact_type == artifact_type)
            .map(|r| {
                let mut d = Map::new();
                d.insert("mediaType".into(), json!(r.media_type));
                d.insert("digest".into(), json!(r.digest.as_str()));
                d.insert("size".into(), json!(r.size));
                if let Some(t) = r.artifact_type {
                    d.insert("artifactType".into(), json!(t));
                }
                if let Some(a) = r.annotations.and_then(|a| serde_json::from_str::<Value>(&a).ok()) {
                    d.insert("annotations".into(), a);
                }
                Value::Object(d)
            })
            .collect())
    }
}
