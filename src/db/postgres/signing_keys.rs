use super::PgTx;
use crate::db::signing_keys::SigningKeyRow;
use crate::db::{DbError, SigningKeys};

impl SigningKeys for PgTx<'_> {
    fn signing_keys(&self) -> Result<Vec<SigningKeyRow>, DbError> {
        self.query("SELECT kid, secret, created_at FROM signing_keys ORDER BY created_at, kid", &[])?
            .iter()
            .map(|r| Ok(SigningKeyRow { kid: r.try_get(0)?, secret: r.try_get(1)?, created_at: r.try_get(2)? }))
            .collect()
    }

    fn add_signing_key(&self, key: &SigningKeyRow) -> Result<bool, DbError> {
        let n = self.execute(
            "INSERT INTO signing_keys (kid, secret, created_at) VALUES ($1, $2, $3) ON CONFLICT (kid) DO NOTHING",
            &[&key.kid, &key.secret, &key.created_at],
        )?;
        Ok(n == 1)
    }

    fn delete_signing_key(&self, kid: &str) -> Result<bool, DbError> {
        Ok(self.execute("DELETE FROM signing_keys WHERE kid = $1", &[&kid])? == 1)
    }
}
