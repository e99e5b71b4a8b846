//! The `wharf` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wharf::config::{CliOverrides, Config};

#[derive(Parser)]
#[command(name = "wharf", version, about = "A private OCI registry with version governance")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct ConfigArgs {
    /// TOML configuration file; WHARF_* environment variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory for the database and, by default, the blobs.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the registry.
    Serve {
        #[command(flatten)]
        config: ConfigArgs,
        /// Address to listen on, e.g. 127.0.0.1:5000.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Load and validate the configuration, print it, and exit.
    CheckConfig {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

fn load(args: &ConfigArgs, listen: Option<std::net::SocketAddr>) -> Result<Config, String> {
    Config::load(args.config.as_deref(), CliOverrides { listen, data_dir: args.data_dir.clone() }).map_err(|e| e.to_string())
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve { config, listen } => {
            let config = load(&config, listen)?;
            wharf::telemetry::init(&config.log);
            actix_web::rt::System::new().block_on(wharf::serve(config)).map_err(|e| e.to_string())
        }
        Command::Migrate { config } => {
            let config = load(&config, None)?;
            wharf::open_registry(&config).map_err(|e| e.to_string())?;
            println!("database at {} is up to date", config.database_path().display());
            Ok(())
        }
        Command::CheckConfig { config } => {
            let config = load(&config, None)?;
            println!("{}", effective_config(&config));
            Ok(())
        }
    }
}

/// The effective configuration with secrets masked.
fn effective_config(config: &Config) -> String {
    let mut c = config.clone();
    if c.storage.s3.secret_access_key.is_some() {
        c.storage.s3.secret_access_key = Some("********".into());
    }
    serde_json::to_string_pretty(&c).unwrap_or_else(|e| format!("(cannot render: {e})"))
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wharf: {e}");
            ExitCode::FAILURE
        }
    }
}
