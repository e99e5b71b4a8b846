//! Access control use-cases: who is asking (authentication by password,
//! robot token or registry bearer token), what they may do (roles and
//! grants), registry tokens, and account and grant management.
//!
//! Layering: called by `api` and the CLI; calls `db`. The role rules are a
//! pure function in `roles`.

mod limiter;
pub mod roles;
pub mod secrets;
pub mod tokens;

use std::sync::Arc;

use base64::Engine;
use serde::Serialize;
use serde_json::json;

use crate::config::Config;
use crate::db::{
    self,
    accounts::{AccountRow, GrantRow},
    audit::NewAuditEntry,
    Db, DbError,
};
use crate::domain::{Actor, AuditAction, RepoGlob};
use limiter::{LoginKeys, LoginLimiter};
pub use roles::{Action, Grant, Permissions, Role};
use tokens::{Access, TokenKeys};

/// The name under which unauthenticated requests act.
pub const ANONYMOUS: &str = "anonymous";
const SERVICE: &str = "wharf";
const MAX_SCOPES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required: {0}")]
    Unauthenticated(String),
    #[error("too many failed logins; try again in {retry_after_secs} seconds")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("denied: {0}")]
    Forbidden(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("auth setup: {0}")]
    Setup(String),
}

/// Who is asking, with everything needed to decide what they may do.
#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    /// False for anonymous requests (auth enabled, no credentials).
    pub authenticated: bool,
    pub permissions: Permissions,
    /// For bearer tokens: the access the token carries. Registry requests
    /// must be within it as well as within the account's grants.
    pub token_access: Option<Vec<Access>>,
}

impl Identity {
    pub fn actor(&self, source: &str) -> Actor {
        Actor { name: self.name.clone(), source: source.to_owned() }
    }
}

/// What `/auth/token` returns.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub token: String,
    pub access_token: String,
    pub expires_in: u64,
    pub issued_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountInfo {
    pub name: String,
    pub kind: String,
    pub admin: bool,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    /// A disabled account cannot log in and its tokens are refused.
    pub disabled: bool,
}

impl From<AccountRow> for AccountInfo {
    fn from(a: AccountRow) -> Self {
        Self {
            name: a.name,
            kind: a.kind,
            admin: a.admin,
            expires_at: a.expires_at,
            created_at: a.created_at,
            disabled: a.disabled_at.is_some(),
        }
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
        let stages = serde_json::from_str(&g.stages).unwrap_or_default();
        Self { id: g.id, account: g.account, repository: g.repository_glob, role: g.role, stages, created_at: g.created_at }
    }
}

struct Inner {
    db: Db,
    enabled: bool,
    keys: TokenKeys,
    ttl_secs: i64,
    realm: Option<String>,
    anonymous: Vec<Grant>,
    limiter: LoginLimiter,
    stages: Vec<String>,
}

#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
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

fn grant_from_row(g: &GrantRow) -> Option<Grant> {
    let role = Role::parse(&g.role)?;
    let stages: Vec<String> = serde_json::from_str(&g.stages).unwrap_or_default();
    RepoGlob::parse(&g.repository_glob).ok().map(|glob| Grant::new(glob, role, stages))
}

impl Auth {
    /// Loads (or creates) the token-signing key and sets up the policy.
    pub fn new(db: Db, config: &Config) -> Result<Self, AuthError> {
        let key_path = config.token_key_path();
        let key = match std::fs::read(&key_path) {
            Ok(k) if k.len() >= 32 => k,
            Ok(_) => return Err(AuthError::Setup(format!("{} holds fewer than 32 bytes", key_path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = secrets::new_signing_key();
                write_private(&key_path, &key).map_err(|e| AuthError::Setup(format!("{}: {e}", key_path.display())))?;
                key
            }
            Err(e) => return Err(AuthError::Setup(format!("{}: {e}", key_path.display()))),
        };
        let anonymous = config.auth.anonymous_pull.iter().map(|glob| Grant::new(glob.clone(), Role::Reader, vec![])).collect();
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                enabled: config.auth.enabled,
                keys: TokenKeys::new(&key, SERVICE),
                ttl_secs: config.auth.token_ttl.as_secs() as i64,
                realm: config.auth.realm.clone(),
                anonymous,
                limiter: LoginLimiter::new(config.auth.max_failed_logins, config.auth.lockout),
                stages: config.governance.stages.clone(),
            }),
        })
    }

    pub fn enabled(&self) -> bool {
        self.inner.enabled
    }

    pub fn realm(&self) -> Option<&str> {
        self.inner.realm.as_deref()
    }

    pub fn service(&self) -> &'static str {
        SERVICE
    }

    fn anonymous(&self) -> Identity {
        if !self.inner.enabled {
            // Auth off: everything is allowed, and recorded as anonymous.
            return Identity { name: ANONYMOUS.into(), authenticated: true, permissions: Permissions::superuser(), token_access: None };
        }
        let permissions = Permissions { superuser: false, grants: self.inner.anonymous.clone() };
        Identity { name: ANONYMOUS.into(), authenticated: false, permissions, token_access: None }
    }

    /// Identifies the caller from its `Authorization` header (or none).
    pub async fn authenticate(&self, authorization: Option<&str>, source: &str) -> Result<Identity, AuthError> {
        let Some(header) = authorization.map(str::trim) else { return Ok(self.anonymous()) };
        if !self.inner.enabled {
            return Ok(self.anonymous());
        }
        if let Some(b64) = header.strip_prefix("Basic ").or_else(|| header.strip_prefix("basic ")) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
                .and_then(|d| String::from_utf8(d).ok())
                .ok_or_else(|| AuthError::Unauthenticated("malformed Basic credentials".into()))?;
            let (user, secret) = decoded.split_once(':').ok_or_else(|| AuthError::Unauthenticated("malformed Basic credentials".into()))?;
            return self.login(user, secret, source).await;
        }
        if let Some(token) = header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")) {
            let claims = self.inner.keys.verify(token.trim()).map_err(|e| AuthError::Unauthenticated(e.to_string()))?;
            if claims.sub == ANONYMOUS {
                let mut id = self.anonymous();
                id.token_access = Some(claims.access);
                return Ok(id);
            }
            let mut id = self.load_identity(claims.sub.clone(), Some(claims.iat)).await?.ok_or_else(|| {
                AuthError::Unauthenticated(
                    "the token's account is gone or disabled, or its secret changed since the token was issued".into(),
                )
            })?;
            id.token_access = Some(claims.access);
            return Ok(id);
        }
        Err(AuthError::Unauthenticated("unsupported Authorization scheme".into()))
    }

    /// Checks a user password or robot token, under the failed-login limits.
    pub async fn login(&self, user: &str, secret: &str, source: &str) -> Result<Identity, AuthError> {
        let keys = LoginKeys::new(user, source);
        if let Some(wait) = self.inner.limiter.locked_for(&keys) {
            return Err(AuthError::TooManyAttempts { retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0) });
        }
        if self.inner.limiter.slowed(&keys) {
            // Failures from other sources only slow this account down (see limiter).
            tokio::time::sleep(limiter::SLOW_DOWN).await;
        }
        let (name, secret_owned) = (user.to_owned(), secret.to_owned());
        let now = db::now_ms();
        let (valid, disabled) = self
            .inner
            .db
            .read(move |conn| -> Result<(bool, bool), AuthError> {
                let Some(account) = db::accounts::by_name(conn, &name)? else {
                    // Spend the same time as a real check, so timing does not reveal which names exist.
                    let _ = secrets::verify_password(
                        &secret_owned,
                        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3Jv0rqf7OX2HEH0BY+0xXk4/4VdxrRLITp0Oqi8frjA",
                    );
                    return Ok((false, false));
                };
                if account.expires_at.is_some_and(|e| e <= now) {
                    return Ok((false, false));
                }
                let valid = match account.kind.as_str() {
                    "robot" => secrets::verify_token(&secret_owned, &account.secret_hash),
                    _ => secrets::verify_password(&secret_owned, &account.secret_hash),
                };
                Ok((valid, account.disabled_at.is_some()))
            })
            .await?;
        if !valid {
            self.inner.limiter.record_failure(&keys);
            self.audit(
                &Actor { name: user.to_owned(), source: source.to_owned() },
                AuditAction::AccessDenied,
                None,
                json!({"reason": "invalid credentials"}),
            )
            .await?;
            tracing::warn!(account = user, source, "failed login");
            return Err(AuthError::Unauthenticated("invalid username or password".into()));
        }
        self.inner.limiter.record_success(&keys);
        if disabled {
            // Only said to whoever knows the secret.
            return Err(AuthError::Unauthenticated(format!("account {user} is disabled")));
        }
        self.load_identity(user.to_owned(), None).await?.ok_or_else(|| AuthError::Unauthenticated("account vanished".into()))
    }

    /// The account behind a login or a bearer token (`issued_at`, seconds):
    /// none if it is gone, expired or disabled, or if its secret changed
    /// after the token was issued.
    async fn load_identity(&self, name: String, issued_at: Option<i64>) -> Result<Option<Identity>, AuthError> {
        let now = db::now_ms();
        self.inner
            .db
            .read(move |conn| -> Result<Option<Identity>, AuthError> {
                let Some(account) = db::accounts::by_name(conn, &name)? else { return Ok(None) };
                if account.expires_at.is_some_and(|e| e <= now) || account.disabled_at.is_some() {
                    return Ok(None);
                }
                if let (Some(iat), Some(changed)) = (issued_at, account.secret_changed_at) {
                    if iat < changed.div_euclid(1000) {
                        return Ok(None);
                    }
                }
                let grants = db::accounts::grants_of(conn, account.id)?.iter().filter_map(grant_from_row).collect();
                Ok(Some(Identity {
                    name: account.name,
                    authenticated: true,
                    permissions: Permissions { superuser: account.admin, grants },
                    token_access: None,
                }))
            })
            .await
    }

    fn first_stage(&self) -> &str {
        self.inner.stages.first().map(String::as_str).unwrap_or("")
    }

    /// Whether the account's grants allow `action`; ignores token scopes.
    pub fn permits(&self, id: &Identity, action: &Action, repo: Option<&str>) -> bool {
        id.permissions.allows(action, repo, self.first_stage())
    }

    /// Whether a bearer token (if any) covers a registry action.
    pub fn token_covers(&self, id: &Identity, action: &Action, repo: Option<&str>) -> bool {
        let (Some(access), Some(word), Some(repo)) = (&id.token_access, action.scope_word(), repo) else { return true };
        access.iter().any(|a| a.kind == "repository" && a.name == repo && a.actions.iter().any(|x| x == word || x == "*"))
    }

    /// `/auth/token`: a token granting the requested scopes the caller may have.
    pub fn issue_token(&self, id: &Identity, scopes: &[String]) -> Result<TokenResponse, AuthError> {
        if scopes.len() > MAX_SCOPES {
            return Err(AuthError::Invalid(format!("at most {MAX_SCOPES} scopes")));
        }
        let mut access: Vec<Access> = Vec::new();
        for scope in scopes.iter().flat_map(|s| s.split(' ')).filter(|s| !s.is_empty()) {
            let (kind, rest) = scope.split_once(':').ok_or_else(|| AuthError::Invalid(format!("malformed scope {scope:?}")))?;
            let (name, actions) = rest.rsplit_once(':').ok_or_else(|| AuthError::Invalid(format!("malformed scope {scope:?}")))?;
            let granted: Vec<String> = match kind {
                "repository" => {
                    let repo = crate::domain::RepoName::parse(name).map_err(|e| AuthError::Invalid(e.to_string()))?;
                    let mut granted = Vec::new();
                    for word in actions.split(',') {
                        let wanted: &[(&str, Action)] = match word {
                            "pull" => &[("pull", Action::Pull)],
                            "push" => &[("push", Action::Push)],
                            "delete" => &[("delete", Action::Delete)],
                            "*" => &[("pull", Action::Pull), ("push", Action::Push), ("delete", Action::Delete)],
                            _ => &[],
                        };
                        for (w, action) in wanted {
                            if self.permits(id, action, Some(repo.as_str())) && !granted.iter().any(|g| g == w) {
                                granted.push((*w).to_owned());
                            }
                        }
                    }
                    granted
                }
                "registry" if name == "catalog" && id.authenticated => vec!["*".to_owned()],
                _ => vec![],
            };
            if !granted.is_empty() {
                access.push(Access { kind: kind.to_owned(), name: name.to_owned(), actions: granted });
            }
        }
        let now = chrono::Utc::now();
        let token =
            self.inner.keys.issue(&id.name, access, now.timestamp(), self.inner.ttl_secs).map_err(|e| AuthError::Setup(e.to_string()))?;
        Ok(TokenResponse {
            access_token: token.clone(),
            token,
            expires_in: self.inner.ttl_secs as u64,
            issued_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })
    }

    /// Records a refused request.
    pub async fn record_denied(&self, actor: &Actor, action: &Action, repo: Option<&str>) -> Result<(), AuthError> {
        tracing::warn!(actor = %actor.name, source = %actor.source, action = %action.describe(), repository = repo, "access denied");
        let repo = repo.map(str::to_owned);
        let (actor, reason) = (actor.clone(), format!("{} may not {}", actor.name, action.describe()));
        self.inner
            .db
            .write(move |tx| -> Result<(), AuthError> {
                db::audit::append(
                    tx,
                    NewAuditEntry {
                        actor: &actor,
                        action: AuditAction::AccessDenied,
                        repository: repo.as_deref(),
                        reference: None,
                        digest: None,
                        details: json!({"reason": reason}),
                    },
                )?;
                Ok(())
            })
            .await
    }

    async fn audit(
        &self,
        actor: &Actor,
        action: AuditAction,
        reference: Option<String>,
        details: serde_json::Value,
    ) -> Result<(), AuthError> {
        let actor = actor.clone();
        self.inner
            .db
            .write(move |tx| -> Result<(), AuthError> {
                db::audit::append(
                    tx,
                    NewAuditEntry { actor: &actor, action, repository: None, reference: reference.as_deref(), digest: None, details },
                )?;
                Ok(())
            })
            .await
    }

    /// Creates a user; `actor` is recorded in the audit log.
    pub async fn create_user(&self, actor: &Actor, name: &str, password: &str, admin: bool) -> Result<AccountInfo, AuthError> {
        valid_account_name(name)?;
        let hash = {
            let password = password.to_owned();
            tokio::task::spawn_blocking(move || secrets::hash_password(&password))
                .await
                .map_err(|e| AuthError::Setup(e.to_string()))?
                .map_err(AuthError::Invalid)?
        };
        self.insert_account(actor, name, "user", hash, admin, None).await
    }

    /// Creates a robot account; the token is returned once and only its hash kept.
    pub async fn create_robot(&self, actor: &Actor, name: &str, expires_at: Option<i64>) -> Result<(AccountInfo, String), AuthError> {
        valid_account_name(name)?;
        let (token, hash) = secrets::new_robot_token();
        let info = self.insert_account(actor, name, "robot", hash, false, expires_at).await?;
        Ok((info, token))
    }

    async fn insert_account(
        &self,
        actor: &Actor,
        name: &str,
        kind: &'static str,
        hash: String,
        admin: bool,
        expires_at: Option<i64>,
    ) -> Result<AccountInfo, AuthError> {
        let (actor, name) = (actor.clone(), name.to_owned());
        self.inner
            .db
            .write(move |tx| -> Result<AccountInfo, AuthError> {
                db::accounts::insert(tx, &name, kind, &hash, admin, expires_at)?
                    .ok_or_else(|| AuthError::Conflict(format!("account {name}")))?;
                db::audit::append(
                    tx,
                    NewAuditEntry {
                        actor: &actor,
                        action: AuditAction::AccountCreate,
                        repository: None,
                        reference: Some(&name),
                        digest: None,
                        details: json!({"kind": kind, "admin": admin, "expires_at": expires_at}),
                    },
                )?;
                let row = db::accounts::by_name(tx, &name)?.ok_or_else(|| AuthError::NotFound(format!("account {name}")))?;
                Ok(row.into())
            })
            .await
    }

    pub async fn delete_account(&self, actor: &Actor, name: &str, kind: &'static str) -> Result<(), AuthError> {
        self.account_change(actor, name, kind, AuditAction::AccountDelete, json!({"kind": kind}), move |tx, name| {
            db::accounts::delete(tx, name, kind)
        })
        .await
    }

    pub async fn list_accounts(&self, kind: &'static str) -> Result<Vec<AccountInfo>, AuthError> {
        self.inner.db.read(move |conn| Ok(db::accounts::list(conn, kind)?.into_iter().map(AccountInfo::from).collect())).await
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
        let (actor, account, glob, role) = (actor.clone(), account.to_owned(), glob.to_owned(), role.to_owned());
        let stages_json = serde_json::to_string(&stages).unwrap_or_else(|_| "[]".into());
        self.inner
            .db
            .write(move |tx| -> Result<GrantInfo, AuthError> {
                let acct = db::accounts::by_name(tx, &account)?.ok_or_else(|| AuthError::NotFound(format!("account {account}")))?;
                let id = db::accounts::insert_grant(tx, acct.id, &glob, &role, &stages_json)?;
                db::audit::append(
                    tx,
                    NewAuditEntry {
                        actor: &actor,
                        action: AuditAction::GrantCreate,
                        repository: None,
                        reference: Some(&account),
                        digest: None,
                        details: json!({"id": id, "repository": glob, "role": role, "stages": stages}),
                    },
                )?;
                let row = db::accounts::grant_by_id(tx, id)?.ok_or_else(|| AuthError::NotFound(format!("grant {id}")))?;
                Ok(row.into())
            })
            .await
    }

    pub async fn list_grants(&self) -> Result<Vec<GrantInfo>, AuthError> {
        self.inner.db.read(|conn| Ok(db::accounts::all_grants(conn)?.into_iter().map(GrantInfo::from).collect())).await
    }

    pub async fn delete_grant(&self, actor: &Actor, id: i64) -> Result<(), AuthError> {
        let actor = actor.clone();
        self.inner
            .db
            .write(move |tx| -> Result<(), AuthError> {
                let grant = db::accounts::grant_by_id(tx, id)?.ok_or_else(|| AuthError::NotFound(format!("grant {id}")))?;
                db::accounts::delete_grant(tx, id)?;
                db::audit::append(
                    tx,
                    NewAuditEntry {
                        actor: &actor,
                        action: AuditAction::GrantDelete,
                        repository: None,
                        reference: Some(&grant.account),
                        digest: None,
                        details: json!({"id": id, "repository": grant.repository_glob, "role": grant.role}),
                    },
                )?;
                Ok(())
            })
            .await
    }

    /// Sets a user's password (its own, or anyone's by an admin: the caller
    /// decides); bearer tokens issued before stop working.
    pub async fn set_password(&self, actor: &Actor, name: &str, password: &str) -> Result<(), AuthError> {
        let hash = {
            let password = password.to_owned();
            tokio::task::spawn_blocking(move || secrets::hash_password(&password))
                .await
                .map_err(|e| AuthError::Setup(e.to_string()))?
                .map_err(AuthError::Invalid)?
        };
        self.update_account(actor, name, "user", "password", move |tx, name| db::accounts::set_secret(tx, name, "user", &hash)).await
    }

    /// Gives a robot a new token; the old one (and bearer tokens issued
    /// before) stop working at once.
    pub async fn rotate_robot_token(&self, actor: &Actor, name: &str) -> Result<String, AuthError> {
        let (token, hash) = secrets::new_robot_token();
        self.update_account(actor, name, "robot", "token", move |tx, name| db::accounts::set_secret(tx, name, "robot", &hash)).await?;
        Ok(token)
    }

    /// Disables (no login, tokens refused) or enables an account.
    pub async fn set_disabled(&self, actor: &Actor, name: &str, kind: &'static str, disabled: bool) -> Result<(), AuthError> {
        let change = if disabled { "disable" } else { "enable" };
        self.update_account(actor, name, kind, change, move |tx, name| db::accounts::set_disabled(tx, name, kind, disabled)).await
    }

    /// Clears a user's failed-login lock-out on this instance.
    pub async fn unlock(&self, actor: &Actor, name: &str) -> Result<(), AuthError> {
        self.update_account(actor, name, "user", "unlock", |tx, name| {
            Ok(db::accounts::by_name(tx, name)?.is_some_and(|a| a.kind == "user"))
        })
        .await?;
        self.inner.limiter.unlock(name);
        Ok(())
    }

    /// One account update and its `account.update` audit row.
    async fn update_account<F>(
        &self,
        actor: &Actor,
        name: &str,
        kind: &'static str,
        change: &'static str,
        apply: F,
    ) -> Result<(), AuthError>
    where
        F: FnOnce(&rusqlite::Transaction, &str) -> Result<bool, DbError> + Send + 'static,
    {
        self.account_change(actor, name, kind, AuditAction::AccountUpdate, json!({"kind": kind, "change": change}), apply).await
    }

    /// One account change and its audit row, in one transaction; `apply`
    /// answers whether the account exists.
    async fn account_change<F>(
        &self,
        actor: &Actor,
        name: &str,
        kind: &'static str,
        action: AuditAction,
        details: serde_json::Value,
        apply: F,
    ) -> Result<(), AuthError>
    where
        F: FnOnce(&rusqlite::Transaction, &str) -> Result<bool, DbError> + Send + 'static,
    {
        let (actor, name) = (actor.clone(), name.to_owned());
        self.inner
            .db
            .write(move |tx| -> Result<(), AuthError> {
                if !apply(tx, &name)? {
                    return Err(AuthError::NotFound(format!("{kind} {name}")));
                }
                db::audit::append(
                    tx,
                    NewAuditEntry { actor: &actor, action, repository: None, reference: Some(&name), digest: None, details },
                )?;
                Ok(())
            })
            .await
    }

    /// On an empty database, creates the `admin` account from a password
    /// given by the operator (WHARF_ADMIN_PASSWORD). Never a default password.
    pub async fn bootstrap_admin(&self, password: Option<String>) -> Result<Option<String>, AuthError> {
        let count = self.inner.db.read(|conn| Ok::<_, AuthError>(db::accounts::count(conn)?)).await?;
        match (count, password) {
            (0, Some(password)) => {
                self.create_user(&Actor::system(), "admin", &password, true).await?;
                Ok(Some("admin".into()))
            }
            _ => Ok(None),
        }
    }

    pub async fn account_count(&self) -> Result<i64, AuthError> {
        self.inner.db.read(|conn| Ok::<_, AuthError>(db::accounts::count(conn)?)).await
    }
}

/// Writes a secret file readable by its owner only.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
