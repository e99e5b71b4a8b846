//! What an image diff compares: a reference to one side, and a platform.

use std::fmt;

use super::{InvalidInput, Reference, Tag};

/// One side of a diff: a tag (stage tags included), a digest, or
/// `<stage>@<n>`, release number `n` from the stage's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    Reference(Reference),
    Release { stage: Tag, sequence: i64 },
}

/// A reference or platform a diff cannot use.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum InvalidDiffInput {
    #[error(transparent)]
    Input(#[from] InvalidInput),
    #[error("invalid release reference {0:?}: expected <stage>@<release number>")]
    Release(String),
    #[error("invalid platform {0:?}: expected <os>/<architecture>[/<variant>]")]
    Platform(String),
}

impl ImageRef {
    /// `@` cannot occur in a tag or a digest, so it marks a release.
    pub fn parse(s: &str) -> Result<Self, InvalidDiffInput> {
        match s.split_once('@') {
            Some((stage, n)) => {
                let sequence = n.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| InvalidDiffInput::Release(s.to_owned()))?;
                let stage = Tag::parse(stage).map_err(|_| InvalidDiffInput::Release(s.to_owned()))?;
                Ok(ImageRef::Release { stage, sequence })
            }
            None => Ok(ImageRef::Reference(Reference::parse(s)?)),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageRef::Reference(r) => r.fmt(f),
            ImageRef::Release { stage, sequence } => write!(f, "{stage}@{sequence}"),
        }
    }
}

/// `os/architecture[/variant]`, as an index's platform field names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn parse(s: &str) -> Result<Self, InvalidDiffInput> {
        let bad = || InvalidDiffInput::Platform(s.chars().take(80).collect());
        let word = |w: &str| !w.is_empty() && w.len() <= 64 && w.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        let parts: Vec<&str> = s.split('/').collect();
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| word(p)) {
            return Err(bad());
        }
        Ok(Self { os: parts[0].to_owned(), architecture: parts[1].to_owned(), variant: parts.get(2).map(|v| (*v).to_owned()) })
    }

    /// Whether an index entry's platform is this one (a variant is only
    /// compared when this platform names one).
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        self.os == os && self.architecture == architecture && (self.variant.is_none() || self.variant.as_deref() == variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tags_digests_and_releases() {
        assert!(matches!(ImageRef::parse("v1"), Ok(ImageRef::Reference(Reference::Tag(_)))));
        assert!(matches!(ImageRef::parse(&format!("sha256:{}", "a".repeat(64))), Ok(ImageRef::Reference(Reference::Digest(_)))));
        assert_eq!(ImageRef::parse("prod@3").unwrap().to_string(), "prod@3");
        for bad in ["prod@0", "prod@x", "@1", "a/b@1", "prod@-1"] {
            assert!(matches!(ImageRef::parse(bad), Err(InvalidDiffInput::Release(_))), "{bad}");
        }
    }

    #[test]
    fn parses_platforms() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert!(p.matches("linux", "arm64", Some("v8")));
        assert!(Platform::parse("linux/amd64").unwrap().matches("linux", "amd64", Some("v2")));
        for bad in ["linux", "linux/", "a/b/c/d", "linux/am d64"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }
}
