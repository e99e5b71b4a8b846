use rusqlite::params;

use super::SqliteTx;
use crate::db::signing_keys::SigningKeyRow;
use crate::db::{DbError, SigningKeys};

impl SigningKeys for SqliteTx<'_> {
    fn signing_keys(&self) -> Result<Vec<SigningKeyRow>, DbError> {
        let mut stmt = self.conn.prepare("SELECT kid, secret, created_at FROM signing_keys ORDER BY created_at, kid")?;
        let rows = stmt
            .query_map([], |r| Ok(SigningKeyRow { kid: r.get(0)?, secret: r.get(1)?, created_at: r.get(2)? }))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn add_signing_key(&self, key: &SigningKeyRow) -> Result<bool, DbError> {
        let n = self
            .conn
            .prepare_cached("INSERT INTO signing_keys (kid, secret, created_at) VALUES (?1, ?2, ?3) ON CONFLICT (kid) DO NOTHING")?
            .execute(params![key.kid, key.secret, key.created_at])?;
        Ok(n == 1)
    }

    fn delete_signing_key(&self, kid: &str) -> Result<bool, DbError> {
        Ok(self.conn.prepare_cached("DELETE FROM signing_keys WHERE kid = ?1")?.execute(params![kid])? == 1)
    }
}
