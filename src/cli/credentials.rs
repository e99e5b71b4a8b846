//! Where the CLI finds credentials for a Wharf server: its own file, written
//! by `wharf login` (`$XDG_CONFIG_HOME/wharf/credentials.json`, else
//! `~/.config/wharf/credentials.json`, mode 0600, keyed by server URL), or
//! else docker's `config.json` `auths` entry for the same host. Docker
//! credential helpers (`credsStore`, `credHelpers`) are not read.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::error::CliError;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// The file `wharf login` writes.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Store {
    /// The server of the last login: used when a command gets no `--url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default)]
    pub servers: BTreeMap<String, Credentials>,
}

fn non_empty_env(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// `$XDG_CONFIG_HOME/wharf/credentials.json`, else `~/.config/wharf/credentials.json`.
pub fn store_path() -> Result<PathBuf, CliError> {
    let base = non_empty_env("XDG_CONFIG_HOME")
        .or_else(|| non_empty_env("HOME").map(|h| h.join(".config")))
        .ok_or("cannot find a config directory: neither XDG_CONFIG_HOME nor HOME is set")?;
    Ok(base.join("wharf").join("credentials.json"))
}

impl Store {
    /// The stored credentials (an empty store when the file does not exist).
    pub fn load() -> Result<(PathBuf, Self), CliError> {
        let path = store_path()?;
        match std::fs::read(&path) {
            Ok(bytes) => {
                let store = serde_json::from_slice(&bytes).map_err(|e| CliError::Refused(format!("{}: {e}", path.display())))?;
                Ok((path, store))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((path, Self::default())),
            Err(e) => Err(CliError::io(path.display().to_string())(e)),
        }
    }

    /// Writes the file readable by its owner only, replacing it atomically.
    pub fn save(&self, path: &Path) -> Result<(), CliError> {
        let fail = |e: std::io::Error| CliError::io(path.display().to_string())(e);
        let dir = path.parent().ok_or_else(|| format!("{}: no parent directory", path.display()))?;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(fail)?;
        let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
        let bytes = serde_json::to_vec_pretty(self)?;
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(fail)?;
        let written = f.write_all(&bytes).and_then(|_| f.sync_all()).and_then(|_| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(fail(e));
        }
        Ok(())
    }
}

/// What docker has stored for a registry host.
pub enum DockerLookup {
    Found(Credentials),
    /// No `auths` entry, but docker uses a credential helper.
    HelperOnly(String),
    None,
}

fn docker_config_path() -> Option<PathBuf> {
    non_empty_env("DOCKER_CONFIG").or_else(|| non_empty_env("HOME").map(|h| h.join(".docker"))).map(|d| d.join("config.json"))
}

/// `host[:port]` of an `auths` key, which may be a bare host or a URL.
fn auths_key_host(key: &str) -> &str {
    let rest = key.split_once("://").map_or(key, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

/// Docker's stored `auths` credentials for `host` (`host[:port]` as in a URL).
pub fn docker_credentials(host: &str) -> DockerLookup {
    #[derive(Deserialize)]
    struct DockerConfig {
        #[serde(default)]
        auths: BTreeMap<String, DockerAuth>,
        #[serde(default, rename = "credsStore")]
        creds_store: Option<String>,
        #[serde(default, rename = "credHelpers")]
        cred_helpers: BTreeMap<String, String>,
    }
    #[derive(Deserialize)]
    struct DockerAuth {
        auth: Option<String>,
    }
    let Some(config) =
        docker_config_path().and_then(|p| std::fs::read(p).ok()).and_then(|b| serde_json::from_slice::<DockerConfig>(&b).ok())
    else {
        return DockerLookup::None;
    };
    let decoded = config
        .auths
        .iter()
        .filter(|(k, _)| auths_key_host(k) == host)
        .filter_map(|(_, a)| a.auth.as_deref())
        .filter_map(|a| base64::engine::general_purpose::STANDARD.decode(a.trim()).ok())
        .filter_map(|d| String::from_utf8(d).ok())
        .find_map(|s| s.split_once(':').map(|(u, p)| Credentials { username: u.to_owned(), password: p.to_owned() }));
    match decoded {
        Some(c) => DockerLookup::Found(c),
        None => match config.cred_helpers.get(host).or(config.creds_store.as_ref()) {
            Some(helper) => DockerLookup::HelperOnly(helper.clone()),
            None => DockerLookup::None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auths_keys_match_by_host_and_port() {
        assert_eq!(auths_key_host("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(auths_key_host("https://registry.example:443/v1/"), "registry.example:443");
        assert_eq!(auths_key_host("http://localhost:5000"), "localhost:5000");
    }
}
