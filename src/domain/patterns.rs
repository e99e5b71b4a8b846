//! Patterns from the configuration and from grants, compiled once when they
//! are read: a repository glob and a tag pattern. A bad one is refused where
//! it is read (config load, grant creation), never skipped later.

use std::fmt;

use globset::{GlobBuilder, GlobMatcher};
use regex::Regex;

/// Why a pattern does not compile.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum InvalidPattern {
    #[error("repository glob must be 1 to 255 characters")]
    GlobLength,
    /// The glob library's explanation.
    #[error("{0}")]
    Glob(String),
    /// The regex library's explanation.
    #[error("{0}")]
    Regex(String),
}

/// A repository glob: `*` stays within one path segment, `**` crosses
/// segments (`team-a/*`, `team-a/**`, `**`).
#[derive(Clone)]
pub struct RepoGlob {
    source: String,
    matcher: GlobMatcher,
}

impl RepoGlob {
    pub fn parse(glob: &str) -> Result<Self, InvalidPattern> {
        if glob.is_empty() || glob.len() > 255 {
            return Err(InvalidPattern::GlobLength);
        }
        let matcher = GlobBuilder::new(glob).literal_separator(true).build().map_err(|e| InvalidPattern::Glob(e.to_string()))?;
        Ok(Self { source: glob.to_owned(), matcher: matcher.compile_matcher() })
    }

    pub fn is_match(&self, repository: &str) -> bool {
        self.matcher.is_match(repository)
    }

    /// The glob as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// A regular expression over tag names (unanchored, as written).
#[derive(Clone)]
pub struct TagPattern {
    source: String,
    regex: Regex,
}

impl TagPattern {
    pub fn parse(pattern: &str) -> Result<Self, InvalidPattern> {
        let regex = Regex::new(pattern).map_err(|e| InvalidPattern::Regex(e.to_string()))?;
        Ok(Self { source: pattern.to_owned(), regex })
    }

    pub fn is_match(&self, tag: &str) -> bool {
        self.regex.is_match(tag)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// Both are read from and written to configuration as their source text;
/// reading compiles them, so a bad one fails the load and names itself.
macro_rules! pattern_common {
    ($ty:ident, $what:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.source)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($ty), self.source)
            }
        }

        impl PartialEq for $ty {
            fn eq(&self, other: &Self) -> bool {
                self.source == other.source
            }
        }

        impl Eq for $ty {}

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.source)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let source = String::deserialize(deserializer)?;
                $ty::parse(&source).map_err(|e| serde::de::Error::custom(format!(concat!("invalid ", $what, " {:?}: {}"), source, e)))
            }
        }
    };
}

pattern_common!(RepoGlob, "repository glob");
pattern_common!(TagPattern, "tag pattern");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_keep_star_within_a_segment() {
        let g = RepoGlob::parse("team/*").expect("valid");
        assert!(g.is_match("team/app") && !g.is_match("team/a/b") && !g.is_match("other/app"));
        assert!(RepoGlob::parse("team/**").expect("valid").is_match("team/a/b"));
        assert_eq!(g.as_str(), "team/*");
    }

    #[test]
    fn invalid_patterns_are_refused() {
        assert_eq!(RepoGlob::parse("").err(), Some(InvalidPattern::GlobLength));
        assert!(matches!(RepoGlob::parse("a/["), Err(InvalidPattern::Glob(_))));
        assert!(matches!(TagPattern::parse("("), Err(InvalidPattern::Regex(_))));
    }

    #[test]
    fn deserializing_compiles_and_names_the_pattern() {
        let ok: TagPattern = serde_json::from_str(r#""^v\\d+$""#).expect("valid");
        assert!(ok.is_match("v12") && !ok.is_match("latest"));
        let err = serde_json::from_str::<TagPattern>(r#""(""#).expect_err("invalid");
        assert!(err.to_string().contains(r#"invalid tag pattern "(""#), "{err}");
        assert_eq!(serde_json::to_string(&ok).expect("serialize"), r#""^v\\d+$""#);
    }
}
