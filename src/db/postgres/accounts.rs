use postgres::Row;

use super::PgTx;
use crate::db::accounts::{AccountRow, GrantRow};
use crate::db::{now_ms, Accounts, DbError};
use crate::domain::{AccountKind, Role, Stage};

fn account(r: &Row) -> Result<AccountRow, DbError> {
    Ok(AccountRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        kind: r.try_get::<_, &str>(2)?.parse().map_err(|_| DbError::Corrupt("accounts.kind"))?,
        secret_hash: r.try_get(3)?,
        admin: r.try_get(4)?,
        expires_at: r.try_get(5)?,
        created_at: r.try_get(6)?,
        disabled_at: r.try_get(7)?,
        secret_changed_at: r.try_get(8)?,
    })
}

const ACCOUNT_COLUMNS: &str = "id, name, kind, secret_hash, admin, expires_at, created_at, disabled_at, secret_changed_at";

fn grant(r: &Row) -> Result<GrantRow, DbError> {
    Ok(GrantRow {
        id: r.try_get(0)?,
        account: r.try_get(1)?,
        repository_glob: r.try_get(2)?,
        role: Role::parse(r.try_get(3)?).ok_or(DbError::Corrupt("grants.role"))?,
        stages: stages_from_json(r.try_get(4)?)?,
        created_at: r.try_get(5)?,
    })
}

/// A grant's stages are stored as a JSON array of names, as on SQLite.
fn stages_from_json(text: &str) -> Result<Vec<Stage>, DbError> {
    let names: Vec<String> = serde_json::from_str(text).map_err(|_| DbError::Corrupt("grants.stages"))?;
    names.iter().map(|n| Stage::parse(n).map_err(|_| DbError::Corrupt("grants.stages"))).collect()
}

fn stages_to_json(stages: &[Stage]) -> String {
    serde_json::Value::from(stages.iter().map(Stage::as_str).collect::<Vec<_>>()).to_string()
}

const GRANT_SELECT: &str =
    "SELECT g.id, a.name, g.repository_glob, g.role, g.stages, g.created_at FROM grants g JOIN accounts a ON a.id = g.account_id";

impl Accounts for PgTx<'_> {
    fn account_count(&self) -> Result<i64, DbError> {
        Ok(self.query_one("SELECT count(*) FROM accounts", &[])?.try_get(0)?)
    }

    fn account_by_name(&self, name: &str) -> Result<Option<AccountRow>, DbError> {
        self.query_opt(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = $1"), &[&name])?.as_ref().map(account).transpose()
    }

    fn list_accounts(&self, kind: AccountKind) -> Result<Vec<AccountRow>, DbError> {
        let rows =
            self.query(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE kind = $1 ORDER BY name COLLATE \"C\""), &[&kind.as_str()])?;
        rows.iter().map(account).collect()
    }

    fn insert_account(
        &self,
        name: &str,
        kind: AccountKind,
        secret_hash: &str,
        admin: bool,
        expires_at: Option<i64>,
    ) -> Result<Option<i64>, DbError> {
        let row = self.query_opt(
            "INSERT INTO accounts (name, kind, secret_hash, admin, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (name) DO NOTHING RETURNING id",
            &[&name, &kind.as_str(), &secret_hash, &admin, &expires_at, &now_ms()],
        )?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    fn delete_account(&self, name: &str, kind: AccountKind) -> Result<bool, DbError> {
        Ok(self.execute("DELETE FROM accounts WHERE name = $1 AND kind = $2", &[&name, &kind.as_str()])? > 0)
    }

    fn set_account_secret(&self, name: &str, kind: AccountKind, secret_hash: &str) -> Result<bool, DbError> {
        let n = self.execute(
            "UPDATE accounts SET secret_hash = $3, secret_changed_at = $4 WHERE name = $1 AND kind = $2",
            &[&name, &kind.as_str(), &secret_hash, &now_ms()],
        )?;
        Ok(n > 0)
    }

    fn set_account_disabled(&self, name: &str, kind: AccountKind, disabled: bool) -> Result<bool, DbError> {
        let n = self.execute(
            "UPDATE accounts SET disabled_at = CASE WHEN $3 THEN coalesce(disabled_at, $4) ELSE NULL END WHERE name = $1 AND kind = $2",
            &[&name, &kind.as_str(), &disabled, &now_ms()],
        )?;
        Ok(n > 0)
    }

    fn grants_of(&self, account_id: i64) -> Result<Vec<GrantRow>, DbError> {
        self.query(&format!("{GRANT_SELECT} WHERE g.account_id = $1 ORDER BY g.id"), &[&account_id])?.iter().map(grant).collect()
    }

    fn all_grants(&self) -> Result<Vec<GrantRow>, DbError> {
        self.query(&format!("{GRANT_SELECT} ORDER BY g.id"), &[])?.iter().map(grant).collect()
    }

    fn insert_grant(&self, account_id: i64, glob: &str, role: Role, stages: &[Stage]) -> Result<i64, DbError> {
        let row = self.query_one(
            "INSERT INTO grants (account_id, repository_glob, role, stages, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&account_id, &glob, &role.as_str(), &stages_to_json(stages), &now_ms()],
        )?;
        Ok(row.try_get(0)?)
    }

    fn grant_by_id(&self, id: i64) -> Result<Option<GrantRow>, DbError> {
        self.query_opt(&format!("{GRANT_SELECT} WHERE g.id = $1"), &[&id])?.as_ref().map(grant).transpose()
    }

    fn delete_grant(&self, id: i64) -> Result<bool, DbError> {
        Ok(self.execute("DELETE FROM grants WHERE id = $1", &[&id])? > 0)
    }
}
