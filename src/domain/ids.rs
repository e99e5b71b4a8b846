//! Identifiers that are not OCI names: upload sessions and stages.

use std::fmt;

use super::{InvalidInput, Tag};

/// A string that is not an upload id Wharf handed out. (Its own type: the
/// HTTP layer answers it with `BLOB_UPLOAD_UNKNOWN`, not as bad OCI input.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid upload id: {0}")]
pub struct InvalidUploadId(pub String);

/// An upload session's id, a UUID in its hyphenated lowercase form (the
/// `<uuid>` of `/v2/<name>/blobs/uploads/<uuid>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UploadId(String);

impl UploadId {
    /// A fresh random id.
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
    pub fn parse(s: &str) -> Result<Self, InvalidUploadId> {
        match uuid::Uuid::try_parse(s) {
            // Canonical form only, so one session has one spelling (and one storage key).
            Ok(u) if u.to_string() == s => Ok(Self(s.to_owned())),
            _ => Err(InvalidUploadId(super::names::truncate(s))),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for UploadId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A promotion stage such as `prod`. A stage name is also a reserved tag in
/// every repository, so it follows the tag grammar.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Stage(String);

impl Stage {
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        Tag::parse(s)?;
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The tag that resolves to this stage's current release.
    pub fn tag(&self) -> Tag {
        Tag::parse(&self.0).expect("a stage name is a valid tag")
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_ids_are_canonical_uuids() {
        let id = UploadId::new();
        assert_eq!(UploadId::parse(id.as_str()).as_ref(), Ok(&id));
        for bad in ["", "x", "../etc", &id.as_str().to_uppercase(), &id.as_str().replace('-', "")] {
            assert!(UploadId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stages_follow_the_tag_grammar() {
        assert_eq!(Stage::parse("prod").map(|s| s.tag().as_str().to_owned()), Ok("prod".to_owned()));
        assert!(Stage::parse("a/b").is_err());
    }
}
