//! `accounts` and `grants` tables.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{now_ms, DbError};

#[derive(Debug, Clone)]
pub struct AccountRow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub secret_hash: String,
    pub admin: bool,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    /// When the password or token last changed (none: since creation).
    pub secret_changed_at: Option<i64>,
}

fn account(r: &Row<'_>) -> rusqlite::Result<AccountRow> {
    Ok(AccountRow {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        secret_hash: r.get(3)?,
        admin: r.get(4)?,
        expires_at: r.get(5)?,
        created_at: r.get(6)?,
        disabled_at: r.get(7)?,
        secret_changed_at: r.get(8)?,
    })
}

const ACCOUNT_COLUMNS: &str = "id, name, kind, secret_hash, admin, expires_at, created_at, disabled_at, secret_changed_at";

pub fn count(conn: &Connection) -> Result<i64, DbError> {
    Ok(conn.query_row("SELECT count(*) FROM accounts", [], |r| r.get(0))?)
}

pub fn by_name(conn: &Connection, name: &str) -> Result<Option<AccountRow>, DbError> {
    Ok(conn.query_row(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = ?1"), [name], account).optional()?)
}

pub fn list(conn: &Connection, kind: &str) -> Result<Vec<AccountRow>, DbError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE kind = ?1 ORDER BY name"))?;
    let rows = stmt.query_map([kind], account)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Inserts an account; `None` if the name is taken.
pub fn insert(
    conn: &Connection,
    name: &str,
    kind: &str,
    secret_hash: &str,
    admin: bool,
    expires_at: Option<i64>,
) -> Result<Option<i64>, DbError> {
    let n = conn.execute(
        "INSERT INTO accounts (name, kind, secret_hash, admin, expires_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (name) DO NOTHING",
        params![name, kind, secret_hash, admin, expires_at, now_ms()],
    )?;
    Ok((n > 0).then(|| conn.last_insert_rowid()))
}

pub fn delete(conn: &Connection, name: &str, kind: &str) -> Result<bool, DbError> {
    Ok(conn.execute("DELETE FROM accounts WHERE name = ?1 AND kind = ?2", params![name, kind])? > 0)
}

/// Replaces an account's password hash or token hash; false if there is no such account.
pub fn set_secret(conn: &Connection, name: &str, kind: &str, secret_hash: &str) -> Result<bool, DbError> {
    let n = conn.execute(
        "UPDATE accounts SET secret_hash = ?3, secret_changed_at = ?4 WHERE name = ?1 AND kind = ?2",
        params![name, kind, secret_hash, now_ms()],
    )?;
    Ok(n > 0)
}

/// Disables (keeping the first time) or enables an account; false if there is no such account.
pub fn set_disabled(conn: &Connection, name: &str, kind: &str, disabled: bool) -> Result<bool, DbError> {
    let n = conn.execute(
        "UPDATE accounts SET disabled_at = CASE WHEN ?3 THEN coalesce(disabled_at, ?4) ELSE NULL END WHERE name = ?1 AND kind = ?2",
        params![name, kind, disabled, now_ms()],
    )?;
    Ok(n > 0)
}

#[derive(Debug, Clone)]
pub struct GrantRow {
    pub id: i64,
    pub account: String,
    pub repository_glob: String,
    pub role: String,
    /// JSON array text.
    pub stages: String,
    pub created_at: i64,
}

fn grant(r: &Row<'_>) -> rusqlite::Result<GrantRow> {
    Ok(GrantRow {
        id: r.get(0)?,
        account: r.get(1)?,
        repository_glob: r.get(2)?,
        role: r.get(3)?,
        stages: r.get(4)?,
        created_at: r.get(5)?,
    })
}

const GRANT_SELECT: &str =
    "SELECT g.id, a.name, g.repository_glob, g.role, g.stages, g.created_at FROM grants g JOIN accounts a ON a.id = g.account_id";

pub fn grants_of(conn: &Connection, account_id: i64) -> Result<Vec<GrantRow>, DbError> {
    let mut stmt = conn.prepare_cached(&format!("{GRANT_SELECT} WHERE g.account_id = ?1 ORDER BY g.id"))?;
    let rows = stmt.query_map([account_id], grant)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn all_grants(conn: &Connection) -> Result<Vec<GrantRow>, DbError> {
    let mut stmt = conn.prepare_cached(&format!("{GRANT_SELECT} ORDER BY g.id"))?;
    let rows = stmt.query_map([], grant)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn insert_grant(conn: &Connection, account_id: i64, glob: &str, role: &str, stages: &str) -> Result<i64, DbError> {
    conn.execute(
        "INSERT INTO grants (account_id, repository_glob, role, stages, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![account_id, glob, role, stages, now_ms()],
    )?;
    Ok(conn.last_insert_rowid())
}

pub fn grant_by_id(conn: &Connection, id: i64) -> Result<Option<GrantRow>, DbError> {
    Ok(conn.query_row(&format!("{GRANT_SELECT} WHERE g.id = ?1"), [id], grant).optional()?)
}

pub fn delete_grant(conn: &Connection, id: i64) -> Result<bool, DbError> {
    Ok(conn.execute("DELETE FROM grants WHERE id = ?1", [id])? > 0)
}

// ---- The engine-neutral seam (the free functions above go once every caller uses it).

/// Accounts and their grants (`accounts`, `grants`).
pub trait Accounts {
    fn account_count(&self) -> Result<i64, DbError>;
    fn account_by_name(&self, name: &str) -> Result<Option<AccountRow>, DbError>;
    /// Accounts of one kind, in name order.
    fn list_accounts(&self, kind: &str) -> Result<Vec<AccountRow>, DbError>;
    /// Inserts an account; `None` if the name is taken.
    fn insert_account(
        &self,
        name: &str,
        kind: &str,
        secret_hash: &str,
        admin: bool,
        expires_at: Option<i64>,
    ) -> Result<Option<i64>, DbError>;
    /// Deletes the account (its grants go with it).
    fn delete_account(&self, name: &str, kind: &str) -> Result<bool, DbError>;
    /// Replaces an account's password or token hash; false if there is no such account.
    fn set_account_secret(&self, name: &str, kind: &str, secret_hash: &str) -> Result<bool, DbError>;
    /// Disables (keeping the first time) or enables an account; false if there is no such account.
    fn set_account_disabled(&self, name: &str, kind: &str, disabled: bool) -> Result<bool, DbError>;
    fn grants_of(&self, account_id: i64) -> Result<Vec<GrantRow>, DbError>;
    fn all_grants(&self) -> Result<Vec<GrantRow>, DbError>;
    fn insert_grant(&self, account_id: i64, glob: &str, role: &str, stages: &str) -> Result<i64, DbError>;
    fn grant_by_id(&self, id: i64) -> Result<Option<GrantRow>, DbError>;
    fn delete_grant(&self, id: i64) -> Result<bool, DbError>;
}
