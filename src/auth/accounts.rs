//! Account and grant management: users and robots, their grants, and
//! every change to them with its audit row in the same transaction.

use serde::Serialize;
use serde_json::json;

use super::{secrets, Auth, AuthError, Role, Tx, ANONYMOUS};
use crate::db::{
    accounts::{AccountRow, GrantRow},
    DbError,
};
use crate::domain::{AccountKind, Actor, AuditAction, AuditEntry, RepoGlob, Stage};

#[derive(Debug, Clone, Serialize)]
pub struct AccountInfo {
    pub name: String,
    pub kind: AccountKind,
    pub admin: bool,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    /// A disabled account cannot log in and its tokens are refused.
    pub disabled: bool,
}

impl TryFrom<AccountRow> for AccountInfo {
    type Error = DbError;

    fn try_from(a: AccountRow) -> Result<Self, DbError> {
        Ok(Self {
            name: a.name,
            kind: a.kind,
            admin: a.admin,
            expires_at: a.expires_at,
            created_at: a.created_at,
            disabled: a.disabled_at.is_some(),
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct GrantInfo {
    pub id: i64,
    pub account: String,
    pub repository: String,
    pub role: String,
    pub stages: Vec<String>,
    pub created_at: i64,
}

impl From<GrantRow> for GrantInfo {
    fn from(g: GrantRow) -> Self {
        let stages = g.stages.iter().map(ToString::to_string).collect();
        Self {
            id: g.id,
            account: g.account,
            repository: g.repository_glob,
            role: g.role.as_str().to_owned(),
            stages,
            created_at: g.created_at,
        }
    }
}

fn valid_account_name(name: &str) -> Result<(), AuthError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name != ANONYMOUS
        && name != "system"
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(AuthError::Invalid(format!("account names are 1-64 of [a-z0-9._-], starting with a letter or digit (not {name:?})")))
    }
}

/// Hashes a password off the async workers: argon2 is slow on purpose.
async fn hash_password(password: &str) -> Result<String, AuthError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || secrets::hash_password(&password))
        .await
        .map_err(|e| AuthError::Setup(e.to_string()))?
        .map_err(AuthError::Invalid)
}

impl Auth {
    /// Creates a user; `actor` is recorded in the audit log.
    pub async fn create_user(&self, actor: &Actor, name: &str, password: &str, admin: bool) -> Result<AccountInfo, AuthError> {
        valid_account_name(name)?;
        let hash = hash_password(password).await?;
        self.insert_account(actor, name, AccountKind::User, hash, admin, None).await
    }

    /// Creates a robot account; the token is returned once and only its hash kept.
    pub async fn create_robot(&self, actor: &Actor, name: &str, expires_at: Option<i64>) -> Result<(AccountInfo, String), AuthError> {
        valid_account_name(name)?;
        let (token, hash) = secrets::new_robot_token();
        let info = self.insert_account(actor, name, AccountKind::Robot, hash, false, expires_at).await?;
        Ok((info, token))
    }

    async fn insert_account(
        &self,
        actor: &Actor,
        name: &str,
        kind: AccountKind,
        hash: String,
        admin: bool,
        expires_at: Option<i64>,
    ) -> Result<AccountInfo, AuthError> {
        let (actor, name) = (actor.clone(), name.to_owned());
        self.inner
            .db
            .write(move |tx| -> Result<AccountInfo, AuthError> {
                tx.insert_account(&name, kind, &hash, admin, expires_at)?.ok_or_else(|| AuthError::Conflict(format!("account {name}")))?;
                let entry = AuditEntry::new(&actor, AuditAction::AccountCreate)
                    .reference(&name)
                    .details(json!({"kind": kind, "admin": admin, "expires_at": expires_at}));
                tx.append_audit(&entry)?;
                let row = tx.account_by_name(&name)?.ok_or_else(|| AuthError::NotFound(format!("account {name}")))?;
                Ok(row.try_into()?)
            })
            .await
    }

    pub async fn delete_account(&self, actor: &Actor, name: &str, kind: AccountKind) -> Result<(), AuthError> {
        self.account_change(actor, name, kind, AuditAction::AccountDelete, json!({"kind": kind}), move |tx, name| {
            tx.delete_account(name, kind)
        })
        .await
    }

    pub async fn list_accounts(&self, kind: AccountKind) -> Result<Vec<AccountInfo>, AuthError> {
        self.inner
            .db
            .read(move |conn| -> Result<_, AuthError> {
                let rows = conn.list_accounts(kind)?;
                Ok(rows.into_iter().map(AccountInfo::try_from).collect::<Result<_, _>>()?)
            })
            .await
    }

    pub async fn create_grant(
        &self,
        actor: &Actor,
        account: &str,
        glob: &str,
        role: &str,
        stages: Vec<String>,
    ) -> Result<GrantInfo, AuthError> {
        let parsed = Role::parse(role)
            .ok_or_else(|| AuthError::Invalid(format!("unknown role {role:?}: reader, developer, releaser, auditor or admin")))?;
        RepoGlob::parse(glob).map_err(|e| AuthError::Invalid(format!("repository glob {glob:?}: {e}")))?;
        if let Some(bad) = stages.iter().find(|s| !self.inner.stages.contains(s)) {
            return Err(AuthError::Invalid(format!("stage {bad:?} is not configured")));
        }
        if parsed != Role::Releaser && !stages.is_empty() {
            return Err(AuthError::Invalid("only releaser grants list stages".into()));
        }
        let typed_stages =
            stages.iter().map(|s| Stage::parse(s)).collect::<Result<Vec<_>, _>>().map_err(|e| AuthError::Invalid(e.to_string()))?;
        let (actor, account, glob) = (actor.clone(), account.to_owned(), glob.to_owned());
        self.inner
            .db
            .write(move |tx| -> Result<GrantInfo, AuthError> {
                let acct = tx.account_by_name(&account)?.ok_or_else(|| AuthError::NotFound(format!("account {account}")))?;
                let id = tx.insert_grant(acct.id, &glob, parsed, &typed_stages)?;
                let entry = AuditEntry::new(&actor, AuditAction::GrantCreate)
                    .reference(&account)
                    .details(json!({"id": id, "repository": glob, "role": parsed, "stages": stages}));
                tx.append_audit(&entry)?;
                let row = tx.grant_by_id(id)?.ok_or_else(|| AuthError::NotFound(format!("grant {id}")))?;
                Ok(row.into())
            })
            .await
    }

    pub async fn list_grants(&self) -> Result<Vec<GrantInfo>, AuthError> {
        self.inner.db.read(|conn| Ok(conn.all_grants()?.into_iter().map(GrantInfo::from).collect())).await
    }

    pub async fn delete_grant(&self, actor: &Actor, id: i64) -> Result<(), AuthError> {
        let actor = actor.clone();
        self.inner
            .db
            .write(move |tx| -> Result<(), AuthError> {
                let grant = tx.grant_by_id(id)?.ok_or_else(|| AuthError::NotFound(format!("grant {id}")))?;
                tx.delete_grant(id)?;
                let entry = AuditEntry::new(&actor, AuditAction::GrantDelete)
                    .reference(&grant.account)
                    .details(json!({"id": id, "repository": grant.repository_glob, "role": grant.role}));
                tx.append_audit(&entry)?;
                Ok(())
            })
            .await
    }

    /// Sets a user's password (its own, or anyone's by an admin: the caller
    /// decides); bearer tokens issued before stop working.
    pub async fn set_password(&self, actor: &Actor, name: &str, password: &str) -> Result<(), AuthError> {
        let hash = hash_password(password).await?;
        let kind = AccountKind::User;
        self.update_account(actor, name, kind, "password", move |tx, name| tx.set_account_secret(name, kind, &hash)).await
    }

    /// Gives a robot a new token; the old one (and bearer tokens issued
    /// before) stop working at once.
    pub async fn rotate_robot_token(&self, actor: &Actor, name: &str) -> Result<String, AuthError> {
        let (token, hash) = secrets::new_robot_token();
        let kind = AccountKind::Robot;
        self.update_account(actor, name, kind, "token", move |tx, name| tx.set_account_secret(name, kind, &hash)).await?;
        Ok(token)
    }

    /// Disables (no login, tokens refused) or enables an account.
    pub async fn set_disabled(&self, actor: &Actor, name: &str, kind: AccountKind, disabled: bool) -> Result<(), AuthError> {
        let change = if disabled { "disable" } else { "enable" };
        self.update_account(actor, name, kind, change, move |tx, name| tx.set_account_disabled(name, kind, disabled)).await
    }

    /// Clears a user's failed-login lock-out, from every source, on every node.
    pub async fn unlock(&self, actor: &Actor, name: &str) -> Result<(), AuthError> {
        self.update_account(actor, name, AccountKind::User, "unlock", |tx, name| {
            let exists = tx.account_by_name(name)?.is_some_and(|a| a.kind == AccountKind::User);
            if exists {
                let (account, every_source) = super::limiter::unlock_keys(name);
                tx.clear_login_failures(&[&account], Some(&every_source))?;
            }
            Ok(exists)
        })
        .await
    }

    /// One account update and its `account.update` audit row.
    async fn update_account<F>(&self, actor: &Actor, name: &str, kind: AccountKind, change: &'static str, apply: F) -> Result<(), AuthError>
    where
        F: FnOnce(&dyn Tx, &str) -> Result<bool, DbError> + Send + 'static,
    {
        self.account_change(actor, name, kind, AuditAction::AccountUpdate, json!({"kind": kind, "change": change}), apply).await
    }

    /// One account change and its audit row, in one transaction; `apply`
    /// answers whether the account exists.
    async fn account_change<F>(
        &self,
        actor: &Actor,
        name: &str,
        kind: AccountKind,
        action: AuditAction,
        details: serde_json::Value,
        apply: F,
    ) -> Result<(), AuthError>
    where
        F: FnOnce(&dyn Tx, &str) -> Result<bool, DbError> + Send + 'static,
    {
        let (actor, name) = (actor.clone(), name.to_owned());
        self.inner
            .db
            .write(move |tx| -> Result<(), AuthError> {
                if !apply(tx, &name)? {
                    return Err(AuthError::NotFound(format!("{kind} {name}")));
                }
                tx.append_audit(&AuditEntry::new(&actor, action).reference(&name).details(details))?;
                Ok(())
            })
            .await
    }

    /// On an empty database, creates the `admin` account from a password
    /// given by the operator (WHARF_ADMIN_PASSWORD). Never a default password.
    pub async fn bootstrap_admin(&self, password: Option<String>) -> Result<Option<String>, AuthError> {
        let count = self.inner.db.read(|conn| Ok::<_, AuthError>(conn.account_count()?)).await?;
        match (count, password) {
            (0, Some(password)) => match self.create_user(&Actor::system(), "admin", &password, true).await {
                Ok(_) => Ok(Some("admin".into())),
                // Nodes started together on an empty database: another one
                // created it between the count and the insert.
                Err(AuthError::Conflict(_)) => Ok(None),
                Err(e) => Err(e),
            },
            _ => Ok(None),
        }
    }

    pub async fn account_count(&self) -> Result<i64, AuthError> {
        self.inner.db.read(|conn| Ok::<_, AuthError>(conn.account_count()?)).await
    }
}
