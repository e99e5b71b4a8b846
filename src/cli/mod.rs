//! The `wharf` command line: the server, local maintenance commands that
//! work on an existing database directly, and commands that are HTTP clients
//! of a running Wharf (`login`, pipeline and account commands).

mod accounts;
mod audit;
mod backup;
mod client;
mod credentials;
mod db;
mod diff;
mod error;
mod events;
mod keys;
mod maintenance;
mod remote;
mod session;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{CliOverrides, Config};
use crate::registry::Registry;
pub use error::CliError;
pub use remote::ClientArgs;

const CLIENT_HELP: &str = "Commands that talk to a running Wharf (login, promote, rollback, history, and user, robot and grant \
without --data-dir) take --url (or WHARF_URL; default: the server of the last `wharf login`, else http://127.0.0.1:5000) \
and credentials from --username with --password-stdin (or WHARF_USERNAME and WHARF_PASSWORD), else those `wharf login` \
stored, else docker's stored login for the same host (config.json `auths`; credential helpers are not read).";

#[derive(Parser)]
#[command(name = "wharf", version, about = "A private OCI registry with version governance", after_help = CLIENT_HELP)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
pub struct ConfigArgs {
    /// TOML configuration file; WHARF_* environment variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory for the database and, by default, the blobs. Maintenance
    /// commands (user, robot, grant, retention, gc, audit) only open an
    /// existing database there; `wharf migrate` or `wharf serve` creates one.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl ConfigArgs {
    fn load(&self, listen: Option<SocketAddr>) -> Result<Config, CliError> {
        Config::load(self.config.as_deref(), CliOverrides { listen, data_dir: self.data_dir.clone() }).map_err(CliError::from)
    }

    /// Whether a local database was named on the command line.
    fn given(&self) -> bool {
        self.config.is_some() || self.data_dir.is_some()
    }

    /// The registry over an existing database, for local maintenance; says
    /// on standard error which database it opened.
    fn open_existing(&self) -> Result<(Config, Registry), CliError> {
        let config = self.load(None)?;
        let registry = crate::open_existing_registry(&config)?;
        match config.postgres_url() {
            Some(_) => eprintln!("wharf: using the {}", config.database_description()),
            None => {
                let path = config.database_path();
                eprintln!("wharf: using the database at {}", std::fs::canonicalize(&path).unwrap_or(path).display());
            }
        }
        Ok((config, registry))
    }
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
    /// Check credentials against a Wharf server and store them for later commands.
    ///
    /// The password (or robot token) comes from --password-stdin or
    /// WHARF_PASSWORD. Stored in $XDG_CONFIG_HOME/wharf/credentials.json (else
    /// ~/.config/wharf/credentials.json), mode 0600, keyed by URL; the URL
    /// becomes the default server. Without --username, checks docker's stored
    /// login for the host instead and stores nothing.
    Login {
        /// Server URL, e.g. http://127.0.0.1:5000.
        url: String,
        /// Account name (a user or a robot).
        #[arg(long, short = 'u', env = "WHARF_USERNAME")]
        username: Option<String>,
        /// Read the password or robot token from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Forget the credentials `wharf login` stored for a server.
    Logout {
        /// Server URL, as given to `wharf login`.
        url: String,
    },
    /// Promote a tag or digest into a stage.
    Promote {
        repository: String,
        /// Tag or digest to promote.
        reference: String,
        /// Stage to promote into, e.g. test, preprod, prod.
        #[arg(long = "to")]
        stage: String,
        /// Version recorded with the release (default: the tag, when a tag is promoted).
        #[arg(long)]
        version: Option<String>,
        /// Free text recorded with the release, e.g. a ticket or a reason.
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
        /// Show every release of this stage, newest first.
        #[arg(long)]
        stage: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// What changed between two images: configuration, layers and files
    /// (a reference is a tag, a digest or <stage>@<release number>).
    Diff {
        repository: String,
        from: String,
        to: String,
        /// The platform to compare when a reference is an index, e.g. linux/arm64.
        #[arg(long)]
        platform: Option<String>,
        /// List every added, removed and modified file.
        #[arg(long)]
        files: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Webhook deliveries on a running server: list them (dead letters
    /// too) or replay events to an endpoint.
    Events {
        #[command(subcommand)]
        command: events::EventsCommand,
    },
    /// Metadata engine maintenance: `db migrate --to postgres://...`.
    Db {
        #[command(subcommand)]
        command: db::DbCommand,
    },
    /// Audit log maintenance on the local database.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Users: on a running server (--url or `wharf login`), or on its
    /// existing local database with --data-dir/--config (bootstrap).
    User {
        #[command(subcommand)]
        command: accounts::UserCommand,
    },
    /// Robot accounts for CI: on a running server, or the local database with --data-dir.
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
        /// Print the JSON report (as the API's /api/v1/gc/runs) instead of a sentence.
        #[arg(long)]
        json: bool,
    },
    /// Back up while the server serves (create), or check a backup (verify).
    Backup {
        #[command(subcommand)]
        command: backup::BackupCommand,
    },
    /// Restore a backup into a stopped data directory: blobs, then metadata,
    /// then a check of digests, stage pointers and the audit chain.
    Restore {
        /// A backup directory or s3://bucket/prefix.
        source: String,
        /// The snapshot to restore (default: the newest finished one).
        #[arg(long)]
        snapshot: Option<String>,
        /// Replace an existing database (SQLite: in the data directory; PostgreSQL: database.url's tables).
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
        /// PostgreSQL: a scratch database to test-restore the dump into first (see `backup verify`).
        #[arg(long)]
        scratch_url: Option<String>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Grants of roles on repository globs: on a running server, or the local database with --data-dir.
    Grant {
        #[command(subcommand)]
        command: accounts::GrantCommand,
    },
    /// Registry-token signing keys (shared by every node): list, rotate.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Print a shell completion script, e.g. `wharf completions bash > /etc/bash_completion.d/wharf`.
    Completions { shell: clap_complete::Shell },
    /// Print the wharf(1) man page (roff), e.g. `wharf man | man -l -`.
    Man,
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Serve { config, listen } => {
            let config = config.load(listen)?;
            let _log = crate::telemetry::init(&config.log);
            Ok(actix_web::rt::System::new().block_on(crate::serve(config))?)
        }
        Command::Migrate { config } => {
            let config = config.load(None)?;
            crate::open_registry(&config)?;
            println!("database at {} is up to date", config.database_description());
            Ok(())
        }
        Command::CheckConfig { config } => {
            let mut config = config.load(None)?;
            config.validate_for_serving()?;
            if config.storage.s3.secret_access_key.is_some() {
                config.storage.s3.secret_access_key = Some("********".into());
            }
            config.redact_database_password();
            println!("{}", serde_json::to_string_pretty(&config)?);
            Ok(())
        }
        Command::Login { url, username, password_stdin } => session::login(&url, username, password_stdin),
        Command::Logout { url } => session::logout(&url),
        Command::Promote { repository, reference, stage, version, note, client } => {
            client::promote(&remote::Remote::connect(&client)?, &repository, &reference, &stage, version, note)
        }
        Command::Rollback { repository, stage, to_sequence, client } => {
            client::rollback(&remote::Remote::connect(&client)?, &repository, &stage, to_sequence)
        }
        Command::History { repository, stage, client } => {
            client::history(&remote::Remote::connect(&client)?, &repository, stage.as_deref())
        }
        Command::Diff { repository, from, to, platform, files, client } => {
            diff::diff(&remote::Remote::connect(&client)?, &repository, &from, &to, platform.as_deref(), files)
        }
        Command::Events { command } => events::run(command),
        Command::Db { command } => db::run(command),
        Command::Audit { command } => audit::run(command),
        Command::User { command } => accounts::user(command),
        Command::Robot { command } => accounts::robot(command),
        Command::Grant { command } => accounts::grant(command),
        Command::Retention { command } => maintenance::retention(command),
        Command::Gc { config, dry_run, json } => maintenance::gc(&config, dry_run, json),
        Command::Backup { command } => backup::run(command),
        Command::Restore { source, snapshot, force, json, scratch_url, config } => {
            backup::restore(&config, &source, snapshot.as_deref(), force, json, scratch_url)
        }
        Command::Keys { command } => keys::run(command),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "wharf", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
            .render(&mut std::io::stdout())
            .map_err(CliError::io("writing the man page")),
    }
}
