//! `wharf keys list | rotate`: the registry-token signing keys in the
//! database, shared by every node. A rotation beside running servers is
//! safe: they sign with the new key from their next refresh (within a
//! minute) and verify it at once; tokens of the previous key keep verifying
//! until they expire.

use clap::Subcommand;

use super::error::CliError;
use super::ConfigArgs;
use crate::auth::keyring;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// List the key ids that verify tokens, oldest first; the last one signs.
    List {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Create a new signing key and drop keys superseded longer ago than
    /// auth.token_ttl (plus two minutes): no token they signed is still valid.
    Rotate {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

pub fn run(command: KeysCommand) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(CliError::io("starting the runtime"))?;
    match command {
        KeysCommand::List { config } => {
            let (_, registry) = config.open_existing()?;
            for (kid, created_at) in runtime.block_on(keyring::list(registry.db()))? {
                let at = chrono::DateTime::from_timestamp_millis(created_at).map(|t| t.to_rfc3339()).unwrap_or_default();
                println!("{kid}  created {at}");
            }
        }
        KeysCommand::Rotate { config } => {
            let (config, registry) = config.open_existing()?;
            let r = runtime.block_on(keyring::rotate(registry.db(), keyring::keep_for(config.auth.token_ttl)))?;
            println!("new signing key {}; keys that verify: {}", r.kid, r.active.join(", "));
            if !r.dropped.is_empty() {
                println!("dropped (every token they signed has expired): {}", r.dropped.join(", "));
            }
        }
    }
    Ok(())
}
