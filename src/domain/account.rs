//! The kinds of account Wharf knows.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A person who logs in with a password, or a robot (CI) that logs in with
/// a generated token. Stored and shown as `user` / `robot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    User,
    Robot,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Robot => "robot",
        }
    }

    /// The word for a list of them: `users`, `robots`.
    pub fn plural(self) -> &'static str {
        match self {
            Self::User => "users",
            Self::Robot => "robots",
        }
    }
}

impl fmt::Display for AccountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored kind that is neither `user` nor `robot`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown account kind {0:?}")]
pub struct UnknownAccountKind(pub String);

impl FromStr for AccountKind {
    type Err = UnknownAccountKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Self::User),
            "robot" => Ok(Self::Robot),
            other => Err(UnknownAccountKind(other.to_owned())),
        }
    }
}

/// What a grant lets an account do on the repositories its glob covers;
/// what each role allows is decided in `auth::roles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Reader,
    Developer,
    Releaser,
    Auditor,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "reader" => Self::Reader,
            "developer" => Self::Developer,
            "releaser" => Self::Releaser,
            "auditor" => Self::Auditor,
            "admin" => Self::Admin,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reader => "reader",
            Self::Developer => "developer",
            Self::Releaser => "releaser",
            Self::Auditor => "auditor",
            Self::Admin => "admin",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in [AccountKind::User, AccountKind::Robot] {
            assert_eq!(kind.to_string().parse::<AccountKind>(), Ok(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(kind.as_str()));
        }
        assert_eq!("admin".parse::<AccountKind>(), Err(UnknownAccountKind("admin".into())));
        assert!("User".parse::<AccountKind>().is_err());
    }
}
