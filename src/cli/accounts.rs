//! `wharf user | robot | grant`: account management on the local database,
//! for bootstrap and for when the server is down. Changes are audited with
//! the actor `system`. A running server uses `/api/v1/users` and friends.

use std::io::BufRead;

use clap::Subcommand;

use super::ConfigArgs;
use crate::auth::Auth;
use crate::domain::Actor;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user. The password comes from WHARF_PASSWORD, or else the
    /// first line of standard input; never from the command line.
    Add {
        name: String,
        /// Full rights everywhere.
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    #[command(flatten)]
    Existing(ExistingAccount),
}

#[derive(Subcommand)]
pub enum RobotCommand {
    /// Create a robot account and print its token (shown this once).
    Add {
        name: String,
        /// Days until the token expires (default: never).
        #[arg(long)]
        expires_in_days: Option<u64>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    #[command(flatten)]
    Existing(ExistingAccount),
}

/// What users and robots share: listing and deleting.
#[derive(Subcommand)]
pub enum ExistingAccount {
    /// List them as JSON (never with secrets).
    List {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Delete one, with its grants.
    Delete {
        name: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

fn existing(kind: &'static str, command: ExistingAccount) -> Result<(), String> {
    match command {
        ExistingAccount::List { config } => {
            let (rt, auth) = open(&config)?;
            print_json(&rt.block_on(auth.list_accounts(kind)).map_err(|e| e.to_string())?)
        }
        ExistingAccount::Delete { name, config } => {
            let (rt, auth) = open(&config)?;
            rt.block_on(auth.delete_account(&Actor::system(), &name, kind)).map_err(|e| e.to_string())
        }
    }
}

#[derive(Subcommand)]
pub enum GrantCommand {
    /// Bind an account to a repository glob with a role.
    Add {
        account: String,
        /// Repository glob: `team-a/*`, `team-a/**`, `**`.
        repository: String,
        /// reader, developer, releaser, auditor or admin.
        role: String,
        /// For releasers: the stages it may promote into and roll back.
        #[arg(long, value_delimiter = ',')]
        stages: Vec<String>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    List {
        #[command(flatten)]
        config: ConfigArgs,
    },
    Delete {
        id: i64,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

fn open(config: &ConfigArgs) -> Result<(tokio::runtime::Runtime, Auth), String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let config = config.load(None)?;
    let registry = crate::open_registry(&config).map_err(|e| e.to_string())?;
    let auth = crate::open_auth(&config, &registry).map_err(|e| e.to_string())?;
    Ok((rt, auth))
}

fn read_password() -> Result<String, String> {
    if let Ok(p) = std::env::var("WHARF_PASSWORD") {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| e.to_string())?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn print_json(v: &impl serde::Serialize) -> Result<(), String> {
    println!("{}", serde_json::to_string_pretty(v).map_err(|e| e.to_string())?);
    Ok(())
}

pub fn user(command: UserCommand) -> Result<(), String> {
    match command {
        UserCommand::Add { name, admin, config } => {
            let (rt, auth) = open(&config)?;
            let password = read_password()?;
            let account = rt.block_on(auth.create_user(&Actor::system(), &name, &password, admin)).map_err(|e| e.to_string())?;
            println!("created user {}{}", account.name, if account.admin { " (admin)" } else { "" });
            Ok(())
        }
        UserCommand::Existing(command) => existing("user", command),
    }
}

pub fn robot(command: RobotCommand) -> Result<(), String> {
    match command {
        RobotCommand::Add { name, expires_in_days, config } => {
            let (rt, auth) = open(&config)?;
            let expires_at = expires_in_days.map(|d| crate::db::now_ms() + (d.min(3650) * 86_400_000) as i64);
            let (_, token) = rt.block_on(auth.create_robot(&Actor::system(), &name, expires_at)).map_err(|e| e.to_string())?;
            // Only the token on stdout, so scripts can capture it.
            println!("{token}");
            Ok(())
        }
        RobotCommand::Existing(command) => existing("robot", command),
    }
}

pub fn grant(command: GrantCommand) -> Result<(), String> {
    match command {
        GrantCommand::Add { account, repository, role, stages, config } => {
            let (rt, auth) = open(&config)?;
            let grant = rt.block_on(auth.create_grant(&Actor::system(), &account, &repository, &role, stages)).map_err(|e| e.to_string())?;
            print_json(&grant)
        }
        GrantCommand::List { config } => {
            let (rt, auth) = open(&config)?;
            print_json(&rt.block_on(auth.list_grants()).map_err(|e| e.to_string())?)
        }
        GrantCommand::Delete { id, config } => {
            let (rt, auth) = open(&config)?;
            rt.block_on(auth.delete_grant(&Actor::system(), id)).map_err(|e| e.to_string())
        }
    }
}
