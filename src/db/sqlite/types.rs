//! Domain types as SQLite values: bound as their text, read back through
//! their parser, so a value that does not parse surfaces as an error (a
//! corrupt row) rather than as a bad value further up.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::db::RepoId;
use crate::domain::{AccountKind, Digest, ReleaseReason, RepoName, Role, Stage, Tag, UploadId};

macro_rules! text_value {
    ($ty:ty) => {
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }
        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                <$ty>::parse(text).map_err(|e| FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

text_value!(Digest);
text_value!(RepoName);
text_value!(Tag);
text_value!(Stage);
text_value!(UploadId);

impl ToSql for RepoId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

impl FromSql for RepoId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        i64::column_result(value).map(RepoId)
    }
}

/// Closed sets of words (enums) as SQLite text; an unknown word is a corrupt row.
macro_rules! word_value {
    ($ty:ty, $what:literal, $parse:expr) => {
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }
        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                let parse: fn(&str) -> Option<$ty> = $parse;
                parse(text).ok_or_else(|| FromSqlError::Other(format!("unknown {} {text:?}", $what).into()))
            }
        }
    };
}

word_value!(ReleaseReason, "release reason", ReleaseReason::parse);
word_value!(Role, "role", Role::parse);
word_value!(AccountKind, "account kind", |s| s.parse().ok());
