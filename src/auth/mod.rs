//! Access control use-cases: who is asking (authentication by password,
//! robot token or registry bearer token), what they may do (roles and
//! grants), registry tokens, and account and grant management.
//!
//! Layering: called by `api` and the CLI; calls `db`. The role rules are a
//! pure function in `roles`.

mod accounts;
pub mod keyring;
mod limiter;
pub mod roles;
pub mod secrets;
pub mod sessions;
mod token_cache;
pub mod tokens;

use std::sync::Arc;

use base64::Engine;
use serde::Serialize;
use serde_json::json;

use crate::config::Config;
use crate::db::{accounts::GrantRow, Db, DbError};
use crate::domain::{AccountKind, Actor, AuditAction, AuditEntry, RepoGlob};
pub use accounts::{AccountInfo, GrantInfo};
use limiter::{LoginKeys, LoginLimits};
pub use roles::{Action, Grant, Permissions, Role};
use tokens::{Access, TokenError};

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

struct Inner {
    db: Db,
    enabled: bool,
    keys: keyring::Keyring,
    ttl_secs: i64,
    realm: Option<String>,
    anonymous: Vec<Grant>,
    limits: LoginLimits,
    stages: Vec<String>,
    verified: token_cache::TokenCache,
}

#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

/// The transaction account changes run in (inside `Db::write`).
use crate::db::Tx;

fn grant_from_row(g: &GrantRow) -> Option<Grant> {
    let stages = g.stages.iter().map(ToString::to_string).collect();
    RepoGlob::parse(&g.repository_glob).ok().map(|glob| Grant::new(glob, g.role, stages))
}

impl Auth {
    /// Sets up the policy. The token-signing keys are read (and the first
    /// one created) from the database on first use; the secret file of an
    /// embedded install is that first key, so tokens it issued before keys
    /// were in the database still verify. On PostgreSQL no file is created
    /// (it would be node-local), only read if present (an upgraded install).
    pub fn new(db: Db, config: &Config) -> Result<Self, AuthError> {
        let key_path = config.token_key_path();
        let legacy = match std::fs::read(&key_path) {
            Ok(k) if k.len() >= 32 => Some(k),
            Ok(_) => return Err(AuthError::Setup(format!("{} holds fewer than 32 bytes", key_path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && config.postgres_url().is_none() => {
                let key = secrets::new_signing_key();
                write_private(&key_path, &key).map_err(|e| AuthError::Setup(format!("{}: {e}", key_path.display())))?;
                Some(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(AuthError::Setup(format!("{}: {e}", key_path.display()))),
        };
        let keys = keyring::Keyring::new(db.clone(), SERVICE, legacy);
        let anonymous = config.auth.anonymous_pull.iter().map(|glob| Grant::new(glob.clone(), Role::Reader, vec![])).collect();
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                enabled: config.auth.enabled,
                keys,
                ttl_secs: config.auth.token_ttl.as_secs() as i64,
                realm: config.auth.realm.clone(),
                anonymous,
                limits: LoginLimits::new(config.auth.max_failed_logins, config.auth.lockout),
                stages: config.governance.stages.clone(),
                verified: Default::default(),
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
            // Checked recently, with no write since (see token_cache)?
            let (key, writes) = (token_cache::key(token.trim()), self.inner.db.writes());
            if let Some(id) = self.inner.verified.get(&key, writes) {
                return Ok(id);
            }
            let claims = self.verify_token(token.trim()).await?;
            let expires_in = claims.exp - crate::domain::now_ms().div_euclid(1000);
            if claims.sub == ANONYMOUS {
                let mut id = self.anonymous();
                id.token_access = Some(claims.access);
                self.inner.verified.put(key, &id, writes, expires_in);
                return Ok(id);
            }
            let mut id = self.load_identity(claims.sub.clone(), Some(claims.iat)).await?.ok_or_else(|| {
                AuthError::Unauthenticated(
                    "the token's account is gone or disabled, or its secret changed since the token was issued".into(),
                )
            })?;
            id.token_access = Some(claims.access);
            self.inner.verified.put(key, &id, writes, expires_in);
            return Ok(id);
        }
        Err(AuthError::Unauthenticated("unsupported Authorization scheme".into()))
    }

    /// A registry token's claims; a key this node has not seen is looked
    /// up again (another node may have just created it).
    async fn verify_token(&self, token: &str) -> Result<tokens::Claims, AuthError> {
        let keys = self.inner.keys.current().await?;
        let verified = match keys.verify(token) {
            Err(TokenError::UnknownKey) => self.inner.keys.reload(&keys).await?.verify(token),
            other => other,
        };
        verified.map_err(|e| AuthError::Unauthenticated(e.to_string()))
    }

    /// Checks a user password or robot token, under the failed-login limits
    /// (see `limiter`): the counters are read with the account, in one read.
    pub async fn login(&self, user: &str, secret: &str, source: &str) -> Result<Identity, AuthError> {
        let keys = LoginKeys::new(user, source);
        let limits = self.inner.limits;
        let (name, secret_owned, read_keys) = (user.to_owned(), secret.to_owned(), keys.clone());
        let now = crate::domain::now_ms();
        let (standing, valid, disabled) = self
            .inner
            .db
            .read(move |conn| -> Result<(limiter::Standing, bool, bool), AuthError> {
                let counters = conn.login_failures(&read_keys.all(), limits.since(now))?;
                let standing = limits.standing(&read_keys, &counters, now);
                if standing.locked_for.is_some() {
                    return Ok((standing, false, false));
                }
                let Some(account) = conn.account_by_name(&name)? else {
                    // Spend the same time as a real check, so timing does not reveal which names exist.
                    let _ = secrets::verify_password(
                        &secret_owned,
                        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3Jv0rqf7OX2HEH0BY+0xXk4/4VdxrRLITp0Oqi8frjA",
                    );
                    return Ok((standing, false, false));
                };
                if account.expires_at.is_some_and(|e| e <= now) {
                    return Ok((standing, false, false));
                }
                let valid = match account.kind {
                    AccountKind::Robot => secrets::verify_token(&secret_owned, &account.secret_hash),
                    AccountKind::User => secrets::verify_password(&secret_owned, &account.secret_hash),
                };
                Ok((standing, valid, account.disabled_at.is_some()))
            })
            .await?;
        if let Some(wait) = standing.locked_for {
            return Err(AuthError::TooManyAttempts { retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0) });
        }
        if standing.slowed {
            // Failures from other sources only slow this account down (see limiter).
            tokio::time::sleep(limiter::SLOW_DOWN).await;
        }
        if !valid {
            let actor = Actor { name: user.to_owned(), source: source.to_owned() };
            let entry = AuditEntry::new(&actor, AuditAction::AccessDenied).details(json!({"reason": "invalid credentials"}));
            // The count and its audit row in one write.
            self.inner
                .db
                .write(move |tx| -> Result<(), AuthError> {
                    let now = crate::domain::now_ms();
                    tx.record_login_failure(&keys.all(), now, limits.since(now), limiter::MAX_COUNTERS)?;
                    tx.append_audit(&entry)?;
                    Ok(())
                })
                .await?;
            tracing::warn!(account = user, source, "failed login");
            return Err(AuthError::Unauthenticated("invalid username or password".into()));
        }
        if standing.clear_on_success {
            self.inner
                .db
                .write(move |tx| -> Result<(), AuthError> { Ok(tx.clear_login_failures(&keys.cleared_by_success(), None)?) })
                .await?;
        }
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
        let now = crate::domain::now_ms();
        self.inner
            .db
            .read(move |conn| -> Result<Option<Identity>, AuthError> {
                let Some(account) = conn.account_by_name(&name)? else { return Ok(None) };
                if account.expires_at.is_some_and(|e| e <= now) || account.disabled_at.is_some() {
                    return Ok(None);
                }
                if let (Some(iat), Some(changed)) = (issued_at, account.secret_changed_at) {
                    if iat < changed.div_euclid(1000) {
                        return Ok(None);
                    }
                }
                let grants = conn.grants_of(account.id)?.iter().filter_map(grant_from_row).collect();
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
    pub async fn issue_token(&self, id: &Identity, scopes: &[String]) -> Result<TokenResponse, AuthError> {
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
        let keys = self.inner.keys.current().await?;
        let token = keys.issue(&id.name, access, now.timestamp(), self.inner.ttl_secs).map_err(|e| AuthError::Setup(e.to_string()))?;
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
        let reason = format!("{} may not {}", actor.name, action.describe());
        self.record(AuditEntry::new(actor, AuditAction::AccessDenied).repository(repo).details(json!({"reason": reason}))).await
    }

    /// Appends one audit row in its own transaction.
    async fn record(&self, entry: AuditEntry) -> Result<(), AuthError> {
        self.inner.db.write(move |tx| -> Result<(), AuthError> { Ok(tx.append_audit(&entry).map(drop)?) }).await
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
