//! The `wharf` command line: the server, local maintenance commands that
//! work on the database directly, and pipeline commands that are HTTP
//! clients of a running Wharf.

mod accounts;
mod audit;
mod client;
mod maintenance;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{CliOverrides, Config};

#[derive(Parser)]
#[command(name = "wharf", version, about = "A private OCI registry with version governance")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
pub struct ConfigArgs {
    /// TOML configuration file; WHARF_* environment variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory for the database and, by default, the blobs.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl ConfigArgs {
    fn load(&self, listen: Option<SocketAddr>) -> Result<Config, String> {
        Config::load(self.config.as_deref(), CliOverrides { listen, data_dir: self.data_dir.clone() }).map_err(|e| e.to_string())
    }
}

/// How pipeline commands reach Wharf.
#[derive(clap::Args)]
pub struct ClientArgs {
    /// Base URL of the Wharf server.
    #[arg(long, env = "WHARF_URL", default_value = "http://127.0.0.1:5000")]
    url: String,
    /// Print the server's JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the registry.
    Serve {
        #[command(flatten)]
        config: ConfigArgs,
        /// Address to listen on, e.g. 127.0.0.1:5000.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Load and validate the configuration, print it (secrets masked), and exit.
    CheckConfig {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Promote a tag or digest into a stage.
    Promote {
        repository: String,
        /// Tag or digest to promote.
        reference: String,
        #[arg(long = "to")]
        stage: String,
        #[arg(long)]
        version: Option<String>,
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Make an earlier release of a stage current again.
    Rollback {
        repository: String,
        stage: String,
        /// Release sequence to restore (default: the one before the current).
        #[arg(long = "to")]
        to_sequence: Option<i64>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show each stage's current release, or one stage's release history.
    History {
        repository: String,
        #[arg(long)]
        stage: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Audit log maintenance on the local database.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Users, on the local database (bootstrap; a running server has /api/v1/users).
    User {
        #[command(subcommand)]
        command: accounts::UserCommand,
    },
    /// Robot accounts for CI, on the local database.
    Robot {
        #[command(subcommand)]
        command: accounts::RobotCommand,
    },
    /// Retention: plan (dry run) or apply the configured policies.
    Retention {
        #[command(subcommand)]
        command: maintenance::RetentionCommand,
    },
    /// Garbage-collect unreferenced blobs and abandoned uploads.
    Gc {
        #[command(flatten)]
        config: ConfigArgs,
        /// Report what would be freed; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Grants of roles on repository globs, on the local database.
    Grant {
        #[command(subcommand)]
        command: accounts::GrantCommand,
    },
}

pub fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve { config, listen } => {
            let config = config.load(listen)?;
            crate::telemetry::init(&config.log);
            actix_web::rt::System::new().block_on(crate::serve(config)).map_err(|e| e.to_string())
        }
        Command::Migrate { config } => {
            let config = config.load(None)?;
            crate::open_registry(&config).map_err(|e| e.to_string())?;
            println!("database at {} is up to date", config.database_path().display());
            Ok(())
        }
        Command::CheckConfig { config } => {
            let mut config = config.load(None)?;
            if config.storage.s3.secret_access_key.is_some() {
                config.storage.s3.secret_access_key = Some("********".into());
            }
            println!("{}", serde_json::to_string_pretty(&config).map_err(|e| e.to_string())?);
            Ok(())
        }
        Command::Promote { repository, reference, stage, version, note, client } => {
            client::promote(&client, &repository, &reference, &stage, version, note)
        }
        Command::Rollback { repository, stage, to_sequence, client } => client::rollback(&client, &repository, &stage, to_sequence),
        Command::History { repository, stage, client } => client::history(&client, &repository, stage.as_deref()),
        Command::Audit { command } => audit::run(command),
        Command::User { command } => accounts::user(command),
        Command::Robot { command } => accounts::robot(command),
        Command::Grant { command } => accounts::grant(command),
        Command::Retention { command } => maintenance::retention(command),
        Command::Gc { config, dry_run } => maintenance::gc(&config, dry_run),
    }
}
