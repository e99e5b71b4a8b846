//! `accounts` and `grants` tables.

use super::DbError;
use crate::domain::{AccountKind, Role, Stage};

#[derive(Debug, Clone)]
pub struct AccountRow {
    pub id: i64,
    pub name: String,
    pub kind: AccountKind,
    pub secret_hash: String,
    pub admin: bool,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    /// When the password or token last changed (none: since creation).
    pub secret_changed_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct GrantRow {
    pub id: i64,
    pub account: String,
    pub repository_glob: String,
    pub role: Role,
    /// Stages a releaser grant covers (empty for other roles).
    pub stages: Vec<Stage>,
    pub created_at: i64,
}

/// Accounts and their grants (`accounts`, `grants`).
pub trait Accounts {
    fn account_count(&self) -> Result<i64, DbError>;
    fn account_by_name(&self, name: &str) -> Result<Option<AccountRow>, DbError>;
    /// Accounts of one kind, in name order.
    fn list_accounts(&self, kind: AccountKind) -> Result<Vec<AccountRow>, DbError>;
    /// Inserts an account; `None` if the name is taken.
    fn insert_account(
        &self,
        name: &str,
        kind: AccountKind,
        secret_hash: &str,
        admin: bool,
        expires_at: Option<i64>,
    ) -> Result<Option<i64>, DbError>;
    /// Deletes the account (its grants go with it).
    fn delete_account(&self, name: &str, kind: AccountKind) -> Result<bool, DbError>;
    /// Replaces an account's password or token hash; false if there is no such account.
    fn set_account_secret(&self, name: &str, kind: AccountKind, secret_hash: &str) -> Result<bool, DbError>;
    /// Disables (keeping the first time) or enables an account; false if there is no such account.
    fn set_account_disabled(&self, name: &str, kind: AccountKind, disabled: bool) -> Result<bool, DbError>;
    fn grants_of(&self, account_id: i64) -> Result<Vec<GrantRow>, DbError>;
    fn all_grants(&self) -> Result<Vec<GrantRow>, DbError>;
    fn insert_grant(&self, account_id: i64, glob: &str, role: Role, stages: &[Stage]) -> Result<i64, DbError>;
    fn grant_by_id(&self, id: i64) -> Result<Option<GrantRow>, DbError>;
    fn delete_grant(&self, id: i64) -> Result<bool, DbError>;
}
