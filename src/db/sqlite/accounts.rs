use rusqlite::{params, OptionalExtension, Row};

use super::SqliteTx;
use crate::db::accounts::{AccountRow, GrantRow};
use crate::db::{now_ms, Accounts, DbError};
use crate::domain::{AccountKind, Role, Stage};

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

fn grant(r: &Row<'_>) -> rusqlite::Result<GrantRow> {
    Ok(GrantRow {
        id: r.get(0)?,
        account: r.get(1)?,
        repository_glob: r.get(2)?,
        role: r.get(3)?,
        stages: stages_from_json(r.get_ref(4)?.as_str()?)?,
        created_at: r.get(5)?,
    })
}

/// A grant's stages are stored as a JSON array of names.
fn stages_from_json(text: &str) -> rusqlite::Result<Vec<Stage>> {
    let corrupt =
        |e: Box<dyn std::error::Error + Send + Sync>| rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, e);
    let names: Vec<String> = serde_json::from_str(text).map_err(|e| corrupt(Box::new(e)))?;
    names.iter().map(|n| Stage::parse(n).map_err(|e| corrupt(Box::new(e)))).collect()
}

fn stages_to_json(stages: &[Stage]) -> String {
    serde_json::Value::from(stages.iter().map(Stage::as_str).collect::<Vec<_>>()).to_string()
}

const GRANT_SELECT: &str =
    "SELECT g.id, a.name, g.repository_glob, g.role, g.stages, g.created_at FROM grants g JOIN accounts a ON a.id = g.account_id";

impl Accounts for SqliteTx<'_> {
    fn account_count(&self) -> Result<i64, DbError> {
        Ok(self.conn.prepare_cached("SELECT count(*) FROM accounts")?.query_row([], |r| r.get(0))?)
    }

    fn account_by_name(&self, name: &str) -> Result<Option<AccountRow>, DbError> {
        Ok(self
            .conn
            .prepare_cached(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = ?1"))?
            .query_row([name], account)
            .optional()?)
    }

    fn list_accounts(&self, kind: AccountKind) -> Result<Vec<AccountRow>, DbError> {
        let mut stmt = self.conn.prepare_cached(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE kind = ?1 ORDER BY name"))?;
        let rows = stmt.query_map([kind], account)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn insert_account(
        &self,
        name: &str,
        kind: AccountKind,
        secret_hash: &str,
        admin: bool,
        expires_at: Option<i64>,
    ) -> Result<Option<i64>, DbError> {
        let n = self
            .conn
            .prepare_cached(
                "INSERT INTO accounts (name, kind, secret_hash, admin, expires_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (name) DO NOTHING",
            )?
            .execute(params![name, kind, secret_hash, admin, expires_at, now_ms()])?;
        Ok((n > 0).then(|| self.conn.last_insert_rowid()))
    }

    fn delete_account(&self, name: &str, kind: AccountKind) -> Result<bool, DbError> {
        Ok(self.conn.prepare_cached("DELETE FROM accounts WHERE name = ?1 AND kind = ?2")?.execute(params![name, kind])? > 0)
    }

    fn set_account_secret(&self, name: &str, kind: AccountKind, secret_hash: &str) -> Result<bool, DbError> {
        let n = self
            .conn
            .prepare_cached("UPDATE accounts SET secret_hash = ?3, secret_changed_at = ?4 WHERE name = ?1 AND kind = ?2")?
            .execute(params![name, kind, secret_hash, now_ms()])?;
        Ok(n > 0)
    }

    fn set_account_disabled(&self, name: &str, kind: AccountKind, disabled: bool) -> Result<bool, DbError> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE accounts SET disabled_at = CASE WHEN ?3 THEN coalesce(disabled_at, ?4) ELSE NULL END WHERE name = ?1 AND kind = ?2",
            )?
            .execute(params![name, kind, disabled, now_ms()])?;
        Ok(n > 0)
    }

    fn grants_of(&self, account_id: i64) -> Result<Vec<GrantRow>, DbError> {
        let mut stmt = self.conn.prepare_cached(&format!("{GRANT_SELECT} WHERE g.account_id = ?1 ORDER BY g.id"))?;
        let rows = stmt.query_map([account_id], grant)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn all_grants(&self) -> Result<Vec<GrantRow>, DbError> {
        let mut stmt = self.conn.prepare_cached(&format!("{GRANT_SELECT} ORDER BY g.id"))?;
        let rows = stmt.query_map([], grant)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn insert_grant(&self, account_id: i64, glob: &str, role: Role, stages: &[Stage]) -> Result<i64, DbError> {
        self.conn
            .prepare_cached("INSERT INTO grants (account_id, repository_glob, role, stages, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![account_id, glob, role, stages_to_json(stages), now_ms()])?;
        Ok(self.conn.last_insert_rowid())
    }

    fn grant_by_id(&self, id: i64) -> Result<Option<GrantRow>, DbError> {
        Ok(self.conn.prepare_cached(&format!("{GRANT_SELECT} WHERE g.id = ?1"))?.query_row([id], grant).optional()?)
    }

    fn delete_grant(&self, id: i64) -> Result<bool, DbError> {
        Ok(self.conn.prepare_cached("DELETE FROM grants WHERE id = ?1")?.execute([id])? > 0)
    }
}
