//! `wharf user | robot | grant`: account management on a running Wharf
//! through `/api/v1/users`, `/robots` and `/grants` (with `--url` or after
//! `wharf login`), or on its existing local database with `--data-dir` or
//! `--config` (bootstrap, or when the server is down; audited as `system`).

use clap::Subcommand;
use serde_json::{json, Value};

use super::client::{table, text};
use super::error::CliError;
use super::remote::{read_stdin_line, ClientArgs, Remote};
use super::ConfigArgs;
use crate::auth::Auth;
use crate::domain::{AccountKind, Actor};

/// Where an account command acts: a server, or a local database.
#[derive(clap::Args)]
pub struct Target {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    client: ClientArgs,
}

enum Place {
    Remote(Remote),
    Local(tokio::runtime::Runtime, Auth),
}

impl Target {
    fn open(&self) -> Result<Place, CliError> {
        if self.config.given() {
            if self.client.url.is_some() {
                return Err("--url and --data-dir/--config exclude each other: manage a running server or its local database".into());
            }
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(CliError::io("starting the runtime"))?;
            let (config, registry) = self.config.open_existing()?;
            let auth = crate::open_auth(&config, &registry)?;
            return Ok(Place::Local(rt, auth));
        }
        if !Remote::configured(&self.client) {
            return Err("no Wharf to manage: pass --url URL (or run `wharf login URL`) for a running server, or --data-dir DIR for its local database".into());
        }
        Ok(Place::Remote(Remote::connect(&self.client)?))
    }

    fn json(&self) -> bool {
        self.client.json
    }
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user. The password comes from WHARF_NEW_PASSWORD, or else the
    /// first line of standard input (locally also WHARF_PASSWORD); never from
    /// the command line.
    Add {
        name: String,
        /// Full rights everywhere.
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Change a password: your own (default), or anyone's as an admin. The
    /// new password comes from WHARF_NEW_PASSWORD or the first line of standard input.
    Passwd {
        /// Whose password (default: the account you log in as).
        name: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Clear a user's failed-login lock-out, from every address (admins).
    Unlock {
        name: String,
        #[command(flatten)]
        target: Target,
    },
    #[command(flatten)]
    Existing(ExistingAccount),
}

#[derive(Subcommand)]
pub enum RobotCommand {
    /// Create a robot account and print its token (shown this once) on
    /// standard output; the login to use goes to standard error.
    Add {
        name: String,
        /// Days until the token expires (default: never).
        #[arg(long)]
        expires_in_days: Option<u64>,
        #[command(flatten)]
        target: Target,
    },
    /// Give a robot a new token; the old one stops working at once.
    Rotate {
        name: String,
        #[command(flatten)]
        target: Target,
    },
    #[command(flatten)]
    Existing(ExistingAccount),
}

/// What users and robots share.
#[derive(Subcommand)]
pub enum ExistingAccount {
    /// List them (never with secrets).
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Delete one, with its grants.
    Delete {
        name: String,
        #[command(flatten)]
        target: Target,
    },
    /// Disable one: it cannot log in and its tokens are refused, until enabled.
    Disable {
        name: String,
        #[command(flatten)]
        target: Target,
    },
    /// Enable a disabled account again.
    Enable {
        name: String,
        #[command(flatten)]
        target: Target,
    },
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
        target: Target,
    },
    /// List every grant.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Delete a grant by its id (see `wharf grant list`).
    Delete {
        id: i64,
        #[command(flatten)]
        target: Target,
    },
}

fn block<T>(rt: &tokio::runtime::Runtime, f: impl std::future::Future<Output = Result<T, crate::auth::AuthError>>) -> Result<T, CliError> {
    Ok(rt.block_on(f)?)
}

/// The new password of `user add` / `user passwd`: never from the command line.
fn new_password(local: bool, target: &Target) -> Result<String, CliError> {
    if let Ok(p) = std::env::var("WHARF_NEW_PASSWORD") {
        return Ok(p);
    }
    if local {
        if let Ok(p) = std::env::var("WHARF_PASSWORD") {
            return Ok(p);
        }
    }
    if target.client.password_stdin {
        return Err("standard input already carries your own password: pass the new one in WHARF_NEW_PASSWORD".into());
    }
    read_stdin_line()
}

fn ms_time(v: &Value) -> String {
    match v.as_i64().and_then(chrono::DateTime::<chrono::Utc>::from_timestamp_millis) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        None => text(v),
    }
}

fn print_accounts(json: bool, key: &str, accounts: Value) -> Result<(), CliError> {
    if json {
        println!("{}", json!({ key: accounts }));
        return Ok(());
    }
    let rows = accounts
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            vec![
                text(&a["name"]),
                if a["admin"].as_bool() == Some(true) { "yes".into() } else { "no".into() },
                if a["disabled"].as_bool() == Some(true) { "disabled".into() } else { "active".into() },
                ms_time(&a["created_at"]),
                ms_time(&a["expires_at"]),
            ]
        })
        .collect();
    table(&["NAME", "ADMIN", "STATUS", "CREATED", "EXPIRES"], rows);
    Ok(())
}

fn print_grants(json: bool, grants: Value) -> Result<(), CliError> {
    if json {
        println!("{}", json!({ "grants": grants }));
        return Ok(());
    }
    let rows = grants
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| {
            let stages: Vec<String> = g["stages"].as_array().into_iter().flatten().map(text).collect();
            vec![
                text(&g["id"]),
                text(&g["account"]),
                text(&g["repository"]),
                text(&g["role"]),
                if stages.is_empty() { "-".into() } else { stages.join(",") },
                ms_time(&g["created_at"]),
            ]
        })
        .collect();
    table(&["ID", "ACCOUNT", "REPOSITORY", "ROLE", "STAGES", "CREATED"], rows);
    Ok(())
}

fn to_value(v: impl serde::Serialize) -> Result<Value, CliError> {
    Ok(serde_json::to_value(v)?)
}

fn existing(kind: AccountKind, command: ExistingAccount) -> Result<(), CliError> {
    let plural = kind.plural();
    match command {
        ExistingAccount::List { target } => {
            let accounts = match target.open()? {
                Place::Remote(r) => r.request(reqwest::Method::GET, &format!("/api/v1/{plural}"), None)?[plural].take(),
                Place::Local(rt, auth) => to_value(block(&rt, auth.list_accounts(kind))?)?,
            };
            print_accounts(target.json(), plural, accounts)
        }
        ExistingAccount::Delete { name, target } => {
            match target.open()? {
                Place::Remote(r) => r.request(reqwest::Method::DELETE, &format!("/api/v1/{plural}/{name}"), None).map(drop)?,
                Place::Local(rt, auth) => block(&rt, auth.delete_account(&Actor::system(), &name, kind))?,
            }
            println!("deleted {kind} {name}");
            Ok(())
        }
        ExistingAccount::Disable { name, target } => set_disabled(kind, plural, &name, &target, true),
        ExistingAccount::Enable { name, target } => set_disabled(kind, plural, &name, &target, false),
    }
}

fn set_disabled(kind: AccountKind, plural: &str, name: &str, target: &Target, disabled: bool) -> Result<(), CliError> {
    let verb = if disabled { "disable" } else { "enable" };
    match target.open()? {
        Place::Remote(r) => r.request(reqwest::Method::POST, &format!("/api/v1/{plural}/{name}/{verb}"), None).map(drop)?,
        Place::Local(rt, auth) => block(&rt, auth.set_disabled(&Actor::system(), name, kind, disabled))?,
    }
    println!("{verb}d {kind} {name}");
    Ok(())
}

pub fn user(command: UserCommand) -> Result<(), CliError> {
    match command {
        UserCommand::Add { name, admin, target } => {
            let place = target.open()?;
            let password = new_password(matches!(place, Place::Local(..)), &target)?;
            let account = match place {
                Place::Remote(r) => {
                    r.request(reqwest::Method::POST, "/api/v1/users", Some(json!({"name": name, "password": password, "admin": admin})))?
                }
                Place::Local(rt, auth) => to_value(block(&rt, auth.create_user(&Actor::system(), &name, &password, admin))?)?,
            };
            if target.json() {
                println!("{account}");
            } else {
                println!("created user {}{}", text(&account["name"]), if admin { " (admin)" } else { "" });
            }
            Ok(())
        }
        UserCommand::Passwd { name, target } => {
            let place = target.open()?;
            let name = match (name, &place) {
                (Some(n), _) => n,
                (None, Place::Remote(r)) => r.username().ok_or("whose password? name the user, or log in first")?.to_owned(),
                (None, Place::Local(..)) => return Err("name the user whose password to set".into()),
            };
            let password = new_password(matches!(place, Place::Local(..)), &target)?;
            match place {
                Place::Remote(r) => r
                    .request(reqwest::Method::PUT, &format!("/api/v1/users/{name}/password"), Some(json!({"password": password})))
                    .map(drop)?,
                Place::Local(rt, auth) => block(&rt, auth.set_password(&Actor::system(), &name, &password))?,
            }
            println!("changed the password of {name}");
            Ok(())
        }
        UserCommand::Unlock { name, target } => {
            match target.open()? {
                Place::Remote(r) => r.request(reqwest::Method::POST, &format!("/api/v1/users/{name}/unlock"), None).map(drop)?,
                // The counters are in the database: every node sees the unlock.
                Place::Local(rt, auth) => block(&rt, auth.unlock(&Actor::system(), &name))?,
            }
            println!("unlocked {name}");
            Ok(())
        }
        UserCommand::Existing(command) => existing(AccountKind::User, command),
    }
}

/// Prints a new robot token: alone on stdout (for scripts), the login on stderr.
fn print_token(name: &str, token: &str, host: &str, json: bool) {
    if json {
        println!("{}", json!({"username": name, "token": token}));
    } else {
        println!("{token}");
    }
    eprintln!("robot {name}: the token above is shown once; log in with: docker login {host} -u {name} --password-stdin");
}

pub fn robot(command: RobotCommand) -> Result<(), CliError> {
    match command {
        RobotCommand::Add { name, expires_in_days, target } => {
            let (host, token) = match target.open()? {
                Place::Remote(r) => {
                    let v = r.request(
                        reqwest::Method::POST,
                        "/api/v1/robots",
                        Some(json!({"name": name, "expires_in_days": expires_in_days})),
                    )?;
                    (super::remote::host_port(&r.url), text(&v["token"]))
                }
                Place::Local(rt, auth) => {
                    let expires_at = expires_in_days.map(|d| crate::db::now_ms() + (d.min(3650) * 86_400_000) as i64);
                    let (_, token) = block(&rt, auth.create_robot(&Actor::system(), &name, expires_at))?;
                    ("<registry host>".to_owned(), token)
                }
            };
            print_token(&name, &token, &host, target.json());
            Ok(())
        }
        RobotCommand::Rotate { name, target } => {
            let (host, token) = match target.open()? {
                Place::Remote(r) => {
                    let v = r.request(reqwest::Method::POST, &format!("/api/v1/robots/{name}/token"), None)?;
                    (super::remote::host_port(&r.url), text(&v["token"]))
                }
                Place::Local(rt, auth) => ("<registry host>".to_owned(), block(&rt, auth.rotate_robot_token(&Actor::system(), &name))?),
            };
            print_token(&name, &token, &host, target.json());
            Ok(())
        }
        RobotCommand::Existing(command) => existing(AccountKind::Robot, command),
    }
}

pub fn grant(command: GrantCommand) -> Result<(), CliError> {
    match command {
        GrantCommand::Add { account, repository, role, stages, target } => {
            let grant = match target.open()? {
                Place::Remote(r) => r.request(
                    reqwest::Method::POST,
                    "/api/v1/grants",
                    Some(json!({"account": account, "repository": repository, "role": role, "stages": stages})),
                )?,
                Place::Local(rt, auth) => to_value(block(&rt, auth.create_grant(&Actor::system(), &account, &repository, &role, stages))?)?,
            };
            if target.json() {
                println!("{grant}");
                Ok(())
            } else {
                print_grants(false, json!([grant]))
            }
        }
        GrantCommand::List { target } => {
            let grants = match target.open()? {
                Place::Remote(r) => r.request(reqwest::Method::GET, "/api/v1/grants", None)?["grants"].take(),
                Place::Local(rt, auth) => to_value(block(&rt, auth.list_grants())?)?,
            };
            print_grants(target.json(), grants)
        }
        GrantCommand::Delete { id, target } => {
            match target.open()? {
                Place::Remote(r) => r.request(reqwest::Method::DELETE, &format!("/api/v1/grants/{id}"), None).map(drop)?,
                Place::Local(rt, auth) => block(&rt, auth.delete_grant(&Actor::system(), id))?,
            }
            println!("deleted grant {id}");
            Ok(())
        }
    }
}
