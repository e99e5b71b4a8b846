//! `wharf db migrate --to postgres://...`: moves an embedded install's
//! metadata to PostgreSQL (README, "Moving to PostgreSQL"). Offline: it takes
//! the data directory's lock, so it refuses while a server runs there.

use clap::Subcommand;

use super::error::CliError;
use super::ConfigArgs;
use crate::db::migrate::copy_sqlite_to_postgres;

#[derive(Subcommand)]
pub enum DbCommand {
    /// Copy this install's embedded (SQLite) metadata into an EMPTY PostgreSQL
    /// database with the server stopped, then check row counts and the audit
    /// chain there. Blobs are not touched: point the new configuration at the
    /// same storage (or copy it first).
    Migrate {
        #[command(flatten)]
        config: ConfigArgs,
        /// The target, e.g. postgres://wharf:PASSWORD@db.internal/wharf (an empty database).
        #[arg(long)]
        to: String,
    },
}

pub fn run(command: DbCommand) -> Result<(), CliError> {
    let DbCommand::Migrate { config, to } = command;
    let mut config = config.load(None)?;
    if config.postgres_url().is_some() {
        return Err("this install already keeps its metadata in PostgreSQL (database.url is set); `wharf db migrate` copies from the embedded database".into());
    }
    let _lock = crate::datadir::lock(&config.data_dir).map_err(crate::StartError::from)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(CliError::io("starting the runtime"))?;
    // Opening the source brings its schema up to date (the copy compares
    // both engines' current schemas) and gives the chain to compare with.
    let source = crate::open_existing_registry(&config)?;
    let before = rt.block_on(source.verify_audit())?;
    drop(source);
    if let Some(broken) = before.first_broken {
        return Err(CliError::Refused(format!(
            "the audit log here is already broken at row {} ({}); fix or explain that before migrating",
            broken.id, broken.reason
        )));
    }
    let path = config.database_path();
    let summary = copy_sqlite_to_postgres(&path, &to).map_err(|e| CliError::Refused(format!("nothing was migrated: {e}")))?;

    config.database.url = Some(to);
    let target = crate::open_existing_registry(&config)?;
    let after = rt.block_on(target.verify_audit())?;
    if !after.valid || after.rows_checked != before.rows_checked || after.head_hash != before.head_hash {
        return Err(CliError::Refused(format!(
            "copied, but the audit chain on {} does not match: {} rows (head {}) there, {} rows (head {}) here",
            summary.target, after.rows_checked, after.head_hash, before.rows_checked, before.head_hash
        )));
    }
    println!("migrated {} to {}", path.display(), summary.target);
    for t in &summary.tables {
        println!("  {:<22} {:>8} rows", t.table, t.rows);
    }
    for (table, why) in &summary.skipped {
        println!("  {table:<22} not copied ({why}: SQLite only)");
    }
    println!("row counts match; audit chain verified on PostgreSQL: {} rows, head hash {}", after.rows_checked, after.head_hash);
    println!("next: set database.url (WHARF_DATABASE__URL) to the target and start wharf on the same storage");
    Ok(())
}
