//! The one error every `wharf` command returns; `main` prints it once as
//! `wharf: <message>` and exits with [`CliError::exit_code`].

use std::process::ExitCode;

use crate::auth::AuthError;
use crate::config::ConfigError;
use crate::registry::backup::BackupError;
use crate::registry::RegistryError;
use crate::StartError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Opening the database, the store or the listeners.
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Backup(#[from] BackupError),
    /// Writing output or reading local files; `what` names the file or stream.
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A refusal already worded for the user: a usage mistake, a running
    /// server's answer, a broken audit chain.
    #[error("{0}")]
    Refused(String),
}

impl CliError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| CliError::Io { what, source }
    }

    /// 1 for every failure; clap's own usage errors exit with 2 before a command runs.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::FAILURE
    }
}

impl From<String> for CliError {
    fn from(message: String) -> Self {
        CliError::Refused(message)
    }
}

impl From<&str> for CliError {
    fn from(message: &str) -> Self {
        CliError::Refused(message.to_owned())
    }
}
