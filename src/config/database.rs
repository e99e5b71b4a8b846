//! `database.url`: which engine holds the metadata. Unset, Wharf keeps its
//! embedded SQLite file (`database.path`); `postgres://...` selects
//! PostgreSQL. Checked when the configuration loads, so a typo stops
//! start-up with a clear message; whether the server answers is found out
//! when the database opens.

use super::{Config, ConfigError, DatabaseConfig};

/// Checks `database.url` without echoing it (it may hold a password).
pub(super) fn validate(db: &DatabaseConfig) -> Result<(), ConfigError> {
    let Some(text) = db.url.as_deref() else { return Ok(()) };
    let invalid = |why: &str| Err(ConfigError::Invalid(format!("database.url {why}")));
    if db.path.is_some() {
        return invalid("and database.path exclude each other: the url selects PostgreSQL, the path names the SQLite file");
    }
    let Ok(url) = url::Url::parse(text) else {
        return invalid("is not a URL; expected postgres://USER:PASSWORD@HOST:PORT/DATABASE");
    };
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return invalid(&format!("must start with postgres:// (got {}://); leave it unset for the embedded SQLite database", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return invalid("needs a host: postgres://USER:PASSWORD@HOST:PORT/DATABASE");
    }
    Ok(())
}

impl Config {
    /// The PostgreSQL URL when the metadata lives there; `None`: SQLite.
    pub fn postgres_url(&self) -> Option<&str> {
        self.database.url.as_deref()
    }

    /// Hides the password of `database.url` (for `wharf check-config`).
    pub fn redact_database_password(&mut self) {
        if let Some(mut url) = self.database.url.as_deref().and_then(|u| url::Url::parse(u).ok()) {
            if url.password().is_some() && url.set_password(Some("********")).is_ok() {
                self.database.url = Some(url.to_string());
            }
        }
    }

    /// Where the metadata lives, for messages: never the password.
    pub fn database_description(&self) -> String {
        match self.database.url.as_deref().and_then(|u| url::Url::parse(u).ok()) {
            Some(url) => format!("PostgreSQL database {}:{}{}", url.host_str().unwrap_or("?"), url.port().unwrap_or(5432), url.path()),
            None => self.database_path().display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: Option<&str>, path: Option<&str>) -> Result<(), String> {
        let db = DatabaseConfig { url: url.map(str::to_owned), path: path.map(Into::into), ..DatabaseConfig::default() };
        validate(&db).map_err(|e| e.to_string())
    }

    #[test]
    fn a_postgres_url_is_accepted_and_anything_else_named_clearly() {
        assert!(check(None, None).is_ok());
        assert!(check(Some("postgres://wharf:pw@127.0.0.1:5432/wharf"), None).is_ok());
        assert!(check(Some("postgresql://db.internal/wharf"), None).is_ok());
        let err = check(Some("mysql://u:secret@h/db"), None).unwrap_err();
        assert!(err.contains("must start with postgres://") && !err.contains("secret"), "{err}");
        assert!(check(Some("not a url"), None).unwrap_err().contains("is not a URL"));
        assert!(check(Some("postgres:///wharf"), None).unwrap_err().contains("needs a host"));
        assert!(check(Some("postgres://h/db"), Some("/var/lib/wharf/wharf.db")).unwrap_err().contains("exclude each other"));
    }

    #[test]
    fn the_password_never_shows() {
        let mut config = Config::default();
        config.database.url = Some("postgres://wharf:s3cret@db:5433/meta".into());
        assert_eq!(config.database_description(), "PostgreSQL database db:5433/meta");
        config.redact_database_password();
        assert_eq!(config.database.url.as_deref(), Some("postgres://wharf:********@db:5433/meta"));
    }
}
