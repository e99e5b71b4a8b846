//! Who did what: the actor of a request and the audit record of a change,
//! with the hash that chains each record to the one before it.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::RepoName;

/// The identity behind a request and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub source: String,
}

impl Actor {
    /// Until access control exists every request is anonymous.
    pub fn anonymous(source: impl Into<String>) -> Self {
        Self { name: "anonymous".into(), source: source.into() }
    }
    /// Changes Wharf makes on its own (start-up policy, scheduled jobs).
    pub fn system() -> Self {
        Self { name: "system".into(), source: "local".into() }
    }
}

/// Every kind of audited event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    ManifestPush,
    ManifestDelete,
    TagCreate,
    TagMove,
    TagDelete,
    BlobDelete,
    Promotion,
    PromotionDenied,
    Rollback,
    RollbackDenied,
    AccessDenied,
    PolicyChange,
    AccountCreate,
    AccountDelete,
    /// Password change, token rotation, disable, enable, unlock.
    AccountUpdate,
    GrantCreate,
    GrantDelete,
    BlobCollect,
    UploadExpire,
    /// One finished GC run (not a dry run): who ran it, where, what it freed.
    GcRun,
    /// One finished retention run (not a dry run).
    RetentionRun,
}

impl AuditAction {
    pub const ALL: [AuditAction; 21] = [
        Self::ManifestPush,
        Self::ManifestDelete,
        Self::TagCreate,
        Self::TagMove,
        Self::TagDelete,
        Self::BlobDelete,
        Self::Promotion,
        Self::PromotionDenied,
        Self::Rollback,
        Self::RollbackDenied,
        Self::AccessDenied,
        Self::PolicyChange,
        Self::AccountCreate,
        Self::AccountDelete,
        Self::AccountUpdate,
        Self::GrantCreate,
        Self::GrantDelete,
        Self::BlobCollect,
        Self::UploadExpire,
        Self::GcRun,
        Self::RetentionRun,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ManifestPush => "manifest.push",
            Self::ManifestDelete => "manifest.delete",
            Self::TagCreate => "tag.create",
            Self::TagMove => "tag.move",
            Self::TagDelete => "tag.delete",
            Self::BlobDelete => "blob.delete",
            Self::Promotion => "promotion",
            Self::PromotionDenied => "promotion.denied",
            Self::Rollback => "rollback",
            Self::RollbackDenied => "rollback.denied",
            Self::AccessDenied => "access.denied",
            Self::PolicyChange => "policy.change",
            Self::AccountCreate => "account.create",
            Self::AccountDelete => "account.delete",
            Self::AccountUpdate => "account.update",
            Self::GrantCreate => "grant.create",
            Self::GrantDelete => "grant.delete",
            Self::BlobCollect => "gc.blob",
            Self::UploadExpire => "gc.upload",
            Self::GcRun => "gc.run",
            Self::RetentionRun => "retention.run",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// An audit row to append: who did what to which repository, reference and
/// digest, with details. Id, time and chain hash are added when it is stored.
///
/// ```
/// # use wharf::domain::{Actor, AuditAction, AuditEntry};
/// let entry = AuditEntry::new(&Actor::system(), AuditAction::TagDelete).repository("app").reference("v1");
/// assert_eq!(entry.reference.as_deref(), Some("v1"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub actor: Actor,
    pub action: AuditAction,
    pub repository: Option<String>,
    pub reference: Option<String>,
    pub digest: Option<String>,
    /// A JSON object; `{}` unless set.
    pub details: Value,
}

impl AuditEntry {
    pub fn new(actor: &Actor, action: AuditAction) -> Self {
        Self {
            actor: actor.clone(),
            action,
            repository: None,
            reference: None,
            digest: None,
            details: Value::Object(serde_json::Map::new()),
        }
    }

    pub fn repository(mut self, repository: impl AuditField) -> Self {
        self.repository = repository.into_field();
        self
    }

    /// The tag, stage, account or upload the action was about.
    pub fn reference(mut self, reference: impl AuditField) -> Self {
        self.reference = reference.into_field();
        self
    }

    pub fn digest(mut self, digest: impl AuditField) -> Self {
        self.digest = digest.into_field();
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// A text field of an [`AuditEntry`], given as it is at hand: a string or an
/// optional one (`None` leaves the field empty).
pub trait AuditField {
    fn into_field(self) -> Option<String>;
}

impl AuditField for &str {
    fn into_field(self) -> Option<String> {
        Some(self.to_owned())
    }
}

impl AuditField for String {
    fn into_field(self) -> Option<String> {
        Some(self)
    }
}

impl AuditField for &String {
    fn into_field(self) -> Option<String> {
        Some(self.clone())
    }
}

/// Validated names and digests, as their text.
macro_rules! text_field {
    ($($ty:ty),*) => {$(
        impl AuditField for &$ty {
            fn into_field(self) -> Option<String> {
                Some(self.as_str().to_owned())
            }
        }
    )*};
}
text_field!(super::Digest, super::RepoName, super::Tag, super::Stage, super::UploadId);

impl<T: AuditField> AuditField for Option<T> {
    fn into_field(self) -> Option<String> {
        self.and_then(AuditField::into_field)
    }
}

/// One row of the audit log, as hashed.
///
/// Fields stay the stored text rather than domain types on purpose: the hash
/// covers exactly these bytes, and the chain verifier must be able to read,
/// hash and report any row, including one whose action a newer Wharf wrote
/// or an attacker edited.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditRecord {
    pub id: i64,
    pub created_at: i64,
    pub actor: String,
    pub source: String,
    pub action: String,
    pub repository: Option<String>,
    pub reference: Option<String>,
    pub digest: Option<String>,
    /// A JSON object; serde_json keeps object keys sorted, so its text is canonical.
    pub details: Value,
}

/// A stored row: the record and the hash stored beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAudit {
    pub record: AuditRecord,
    pub hash: String,
}

/// Which audit rows a query asks for.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub repository: Option<RepoName>,
    pub action: Option<AuditAction>,
    pub actor: Option<String>,
    /// Unix milliseconds, inclusive.
    pub since: Option<i64>,
    /// Unix milliseconds, exclusive.
    pub until: Option<i64>,
    /// Only rows with an id below this (newest-first paging).
    pub before_id: Option<i64>,
}

/// The `previous hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl AuditRecord {
    /// The record `entry` becomes when appended after `head` (the newest
    /// row's id and hash; `None` for the first row), with its chain hash.
    /// Every engine appends through this, so the chain is computed one way.
    pub fn chained(entry: &AuditEntry, head: Option<(i64, String)>, created_at: i64) -> StoredAudit {
        let (id, previous) = match head {
            Some((id, hash)) => (id + 1, hash),
            None => (1, GENESIS_HASH.to_owned()),
        };
        let record = AuditRecord {
            id,
            created_at,
            actor: entry.actor.name.clone(),
            source: entry.actor.source.clone(),
            action: entry.action.as_str().to_owned(),
            repository: entry.repository.clone(),
            reference: entry.reference.clone(),
            digest: entry.digest.clone(),
            details: entry.details.clone(),
        };
        let hash = record.chain_hash(&previous);
        StoredAudit { record, hash }
    }

    /// Stored details text as hashed: a row whose details are not JSON was
    /// tampered with, so it is hashed as a string and fails verification.
    pub fn details_from_stored(text: String) -> Value {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    /// `sha256(previous hash ‖ canonical JSON of this record)`, hex.
    pub fn chain_hash(&self, previous: &str) -> String {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        let mut h = Sha256::new();
        h.update(previous.as_bytes());
        h.update(&canonical);
        hex::encode(h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(id: i64) -> AuditRecord {
        AuditRecord {
            id,
            created_at: 1,
            actor: "alice".into(),
            source: "127.0.0.1".into(),
            action: AuditAction::Promotion.as_str().into(),
            repository: Some("app".into()),
            reference: Some("prod".into()),
            digest: None,
            details: json!({"b": 1, "a": 2}),
        }
    }

    #[test]
    fn hash_depends_on_previous_and_every_field() {
        let base = record(1).chain_hash(GENESIS_HASH);
        assert_eq!(base, record(1).chain_hash(GENESIS_HASH));
        assert_ne!(base, record(1).chain_hash(&base));
        let mut changed = record(1);
        changed.actor = "mallory".into();
        assert_ne!(base, changed.chain_hash(GENESIS_HASH));
        assert_ne!(base, record(2).chain_hash(GENESIS_HASH));
    }

    #[test]
    fn details_key_order_does_not_matter() {
        let mut a = record(1);
        a.details = serde_json::from_str(r#"{"x":1,"y":2}"#).unwrap();
        let mut b = record(1);
        b.details = serde_json::from_str(r#"{"y":2,"x":1}"#).unwrap();
        assert_eq!(a.chain_hash(GENESIS_HASH), b.chain_hash(GENESIS_HASH));
    }

    #[test]
    fn entry_builder_sets_each_field_once() {
        let actor = Actor::anonymous("127.0.0.1");
        let entry = AuditEntry::new(&actor, AuditAction::TagMove)
            .repository("app")
            .reference(Some("v1"))
            .digest(None::<&str>)
            .details(json!({"from": "sha256:aa"}));
        assert_eq!(entry.actor, actor);
        assert_eq!(entry.action, AuditAction::TagMove);
        assert_eq!(entry.repository.as_deref(), Some("app"));
        assert_eq!(entry.reference.as_deref(), Some("v1"));
        assert_eq!(entry.digest, None);
        assert_eq!(entry.details, json!({"from": "sha256:aa"}));
        assert_eq!(AuditEntry::new(&actor, AuditAction::TagCreate).details, json!({}));
    }

    #[test]
    fn actions_round_trip() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(a));
        }
    }
}
