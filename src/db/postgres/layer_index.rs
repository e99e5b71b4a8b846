use super::{big, unsigned, PgTx};
use crate::db::{now_ms, DbError, LayerIndex};
use crate::domain::Digest;

impl LayerIndex for PgTx<'_> {
    fn layer_index(&self, digest: &Digest) -> Result<Option<Vec<u8>>, DbError> {
        Ok(self.query_opt("SELECT entries FROM layer_index WHERE digest = $1", &[&digest.as_str()])?.map(|r| r.try_get(0)).transpose()?)
    }

    fn insert_layer_index(&self, digest: &Digest, entry_count: u64, total_size: u64, entries: &[u8]) -> Result<(), DbError> {
        self.execute(
            "INSERT INTO layer_index (digest, entry_count, total_size, entries, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (digest) DO NOTHING",
            &[&digest.as_str(), &big(entry_count), &big(total_size), &entries, &now_ms()],
        )?;
        Ok(())
    }

    fn layer_index_count(&self) -> Result<u64, DbError> {
        unsigned(&self.query_one("SELECT count(*) FROM layer_index", &[])?, 0, "layer_index count")
    }
}
