use rusqlite::{params, OptionalExtension};

use super::SqliteTx;
use crate::db::tags::{TagChange, TagRow};
use crate::db::{now_ms, DbError, RepoId, Tags};
use crate::domain::{Digest, Tag};

impl Tags for SqliteTx<'_> {
    fn tag_target(&self, repo: RepoId, tag: &Tag) -> Result<Option<Digest>, DbError> {
        Ok(self
            .conn
            .prepare_cached("SELECT digest FROM tags WHERE repository_id = ?1 AND name = ?2")?
            .query_row(params![repo, tag], |r| r.get(0))
            .optional()?)
    }

    // Read then upsert: one writer at a time makes the previous target exact.
    fn set_tag(&self, repo: RepoId, tag: &Tag, digest: &Digest) -> Result<Option<Digest>, DbError> {
        let previous = self.tag_target(repo, tag)?;
        self.conn
            .prepare_cached(
                "INSERT INTO tags (repository_id, name, digest, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (repository_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at",
            )?
            .execute(params![repo, tag, digest, now_ms()])?;
        Ok(previous.filter(|p| p != digest))
    }

    fn delete_tag(&self, repo: RepoId, tag: &Tag) -> Result<bool, DbError> {
        Ok(self.conn.prepare_cached("DELETE FROM tags WHERE repository_id = ?1 AND name = ?2")?.execute(params![repo, tag])? > 0)
    }

    fn delete_tags_pointing_at(&self, repo: RepoId, digest: &Digest) -> Result<Vec<Tag>, DbError> {
        let mut stmt = self.conn.prepare_cached("DELETE FROM tags WHERE repository_id = ?1 AND digest = ?2 RETURNING name")?;
        let rows = stmt.query_map(params![repo, digest], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn list_tags(&self, repo: RepoId, last: Option<&str>, limit: u32) -> Result<Vec<Tag>, DbError> {
        let mut stmt = self.conn.prepare_cached("SELECT name FROM tags WHERE repository_id = ?1 AND name > ?2 ORDER BY name LIMIT ?3")?;
        let rows = stmt.query_map(params![repo, last.unwrap_or(""), limit], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn tags_pointing_at(&self, repo: RepoId, digest: &Digest) -> Result<Vec<Tag>, DbError> {
        let mut stmt = self.conn.prepare_cached("SELECT name FROM tags WHERE repository_id = ?1 AND digest = ?2 ORDER BY name")?;
        let rows = stmt.query_map(params![repo, digest], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn all_tags(&self, repo: RepoId) -> Result<Vec<TagRow>, DbError> {
        let mut stmt = self.conn.prepare_cached("SELECT name, digest, updated_at FROM tags WHERE repository_id = ?1 ORDER BY name")?;
        let rows = stmt.query_map([repo], |r| Ok(TagRow { name: r.get(0)?, digest: r.get(1)?, updated_at: r.get(2)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn record_tag_change(&self, repo: RepoId, tag: &Tag, digest: Option<&Digest>, actor: &str) -> Result<(), DbError> {
        self.conn
            .prepare_cached("INSERT INTO tag_history (repository_id, tag, digest, actor, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![repo, tag, digest, actor, now_ms()])?;
        Ok(())
    }

    fn tag_history(&self, repo: RepoId, tag: &Tag, before: Option<i64>, limit: u32) -> Result<Vec<TagChange>, DbError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, digest, actor, created_at FROM tag_history
             WHERE repository_id = ?1 AND tag = ?2 AND (?3 IS NULL OR id < ?3) ORDER BY id DESC LIMIT ?4",
        )?;
        let rows = stmt.query_map(params![repo, tag, before, limit], |r| {
            Ok(TagChange { id: r.get(0)?, digest: r.get(1)?, actor: r.get(2)?, created_at: r.get(3)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
