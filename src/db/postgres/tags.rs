use super::{opt_text, text, PgTx};
use crate::db::tags::{TagChange, TagRow};
use crate::db::{now_ms, DbError, RepoId, Tags};
use crate::domain::{Digest, Tag};

impl Tags for PgTx<'_> {
    fn tag_target(&self, repo: RepoId, tag: &Tag) -> Result<Option<Digest>, DbError> {
        let row = self.query_opt("SELECT digest FROM tags WHERE repository_id = $1 AND name = $2", &[&repo.0, &tag.as_str()])?;
        row.map(|r| text(&r, 0, "tags.digest")).transpose()
    }

    // Read then upsert: the writer lock makes the previous target exact.
    fn set_tag(&self, repo: RepoId, tag: &Tag, digest: &Digest) -> Result<Option<Digest>, DbError> {
        let previous = self.tag_target(repo, tag)?;
        self.execute(
            "INSERT INTO tags (repository_id, name, digest, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (repository_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at",
            &[&repo.0, &tag.as_str(), &digest.as_str(), &now_ms()],
        )?;
        Ok(previous.filter(|p| p != digest))
    }

    fn delete_tag(&self, repo: RepoId, tag: &Tag) -> Result<bool, DbError> {
        Ok(self.execute("DELETE FROM tags WHERE repository_id = $1 AND name = $2", &[&repo.0, &tag.as_str()])? > 0)
    }

    fn delete_tags_pointing_at(&self, repo: RepoId, digest: &Digest) -> Result<Vec<Tag>, DbError> {
        let rows = self.query("DELETE FROM tags WHERE repository_id = $1 AND digest = $2 RETURNING name", &[&repo.0, &digest.as_str()])?;
        rows.iter().map(|r| text(r, 0, "tags.name")).collect()
    }

    fn list_tags(&self, repo: RepoId, last: Option<&str>, limit: u32) -> Result<Vec<Tag>, DbError> {
        let rows = self.query(
            "SELECT name FROM tags WHERE repository_id = $1 AND name COLLATE \"C\" > $2 ORDER BY name COLLATE \"C\" LIMIT $3",
            &[&repo.0, &last.unwrap_or(""), &i64::from(limit)],
        )?;
        rows.iter().map(|r| text(r, 0, "tags.name")).collect()
    }

    fn tags_pointing_at(&self, repo: RepoId, digest: &Digest) -> Result<Vec<Tag>, DbError> {
        let rows = self.query(
            "SELECT name FROM tags WHERE repository_id = $1 AND digest = $2 ORDER BY name COLLATE \"C\"",
            &[&repo.0, &digest.as_str()],
        )?;
        rows.iter().map(|r| text(r, 0, "tags.name")).collect()
    }

    fn all_tags(&self, repo: RepoId) -> Result<Vec<TagRow>, DbError> {
        let rows =
            self.query("SELECT name, digest, updated_at FROM tags WHERE repository_id = $1 ORDER BY name COLLATE \"C\"", &[&repo.0])?;
        rows.iter()
            .map(|r| Ok(TagRow { name: text(r, 0, "tags.name")?, digest: text(r, 1, "tags.digest")?, updated_at: r.try_get(2)? }))
            .collect()
    }

    fn record_tag_change(&self, repo: RepoId, tag: &Tag, digest: Option<&Digest>, actor: &str) -> Result<(), DbError> {
        self.execute(
            "INSERT INTO tag_history (repository_id, tag, digest, actor, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[&repo.0, &tag.as_str(), &digest.map(Digest::as_str), &actor, &now_ms()],
        )?;
        Ok(())
    }

    fn tag_history(&self, repo: RepoId, tag: &Tag, before: Option<i64>, limit: u32) -> Result<Vec<TagChange>, DbError> {
        let rows = self.query(
            "SELECT id, digest, actor, created_at FROM tag_history
             WHERE repository_id = $1 AND tag = $2 AND ($3::BIGINT IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
            &[&repo.0, &tag.as_str(), &before, &i64::from(limit)],
        )?;
        rows.iter()
            .map(|r| {
                Ok(TagChange {
                    id: r.try_get(0)?,
                    digest: opt_text(r, 1, "tag_history.digest")?,
                    actor: r.try_get(2)?,
                    created_at: r.try_get(3)?,
                })
            })
            .collect()
    }
}
