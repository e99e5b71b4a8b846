//! `wharf backup create | verify` and `wharf restore`.
//!
//! Why local commands rather than an admin API: like `wharf gc`, a backup
//! works on the data directory and configuration beside the running
//! server, without its lock: SQLite in WAL mode lets this second process
//! read a consistent snapshot and write its fence while the server writes,
//! and the fence is a database row the server's GC reads. So a backup needs
//! no credentials and no open port, and works when the server is down.
//! `restore` takes the data directory's lock: it refuses to run under a
//! live server.

use clap::Subcommand;

use super::error::CliError;
use super::ConfigArgs;
use crate::config::backup::Destination;
use crate::registry::backup::{self, BackupReport, VerifyOutcome};

#[derive(Subcommand)]
pub enum BackupCommand {
    /// Back up the metadata and blobs to a directory or s3://bucket/prefix,
    /// while the server serves. Blobs already at the destination are not copied again.
    Create {
        /// A directory, or s3://bucket/prefix (reached with the storage.s3 endpoint, region and credentials).
        destination: String,
        #[command(flatten)]
        config: ConfigArgs,
        /// Print the JSON report (the snapshot's manifest) instead of a sentence.
        #[arg(long)]
        json: bool,
    },
    /// Check a backup: re-hash every blob, open the metadata, verify the audit
    /// chain against the manifest. Exits 1 naming each damage found.
    Verify {
        /// A backup directory or s3://bucket/prefix.
        source: String,
        /// The snapshot to check (default: the newest finished one).
        #[arg(long)]
        snapshot: Option<String>,
        /// PostgreSQL: a scratch database to restore the dump into and read
        /// (its contents are replaced). Without it the dump is checked with
        /// `pg_restore --list` and blobs by the snapshot's blob list.
        #[arg(long)]
        scratch_url: Option<String>,
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long)]
        json: bool,
    },
}

/// How a PostgreSQL dump is checked (see [`backup::PgCheck`]).
fn pg_check(config: &crate::config::Config, scratch_url: Option<String>) -> backup::PgCheck {
    backup::PgCheck { tools: backup::pg_tools(&config.backup), scratch_url }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(CliError::io("starting the runtime"))
}

fn destination(s: &str) -> Result<Destination, CliError> {
    Destination::parse(s).map_err(|e| CliError::Refused(format!("backup destination {e}")))
}

pub fn run(command: BackupCommand) -> Result<(), CliError> {
    match command {
        BackupCommand::Create { destination: dest, config, json } => {
            let dest = destination(&dest)?;
            let (_config, registry) = config.open_existing()?;
            let report = runtime()?.block_on(registry.create_backup(&dest))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_created(&report);
            }
            Ok(())
        }
        BackupCommand::Verify { source, snapshot, scratch_url, config, json } => {
            let dest = destination(&source)?;
            let config = config.load(None)?;
            let scratch = backup::Scratch::new(&std::env::temp_dir(), "verify")?;
            let pg = pg_check(&config, scratch_url);
            let outcome = runtime()?.block_on(backup::verify(&dest, &config.storage.s3, snapshot.as_deref(), &scratch.0, &pg))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&outcome)?);
            }
            verdict(&outcome, json)
        }
    }
}

fn print_created(r: &BackupReport) {
    let m = &r.manifest;
    println!(
        "backup {} to {}: {} blobs ({} bytes); copied {} new blobs ({} bytes), {} were already there",
        m.snapshot,
        r.destination,
        m.blobs,
        m.bytes,
        m.blobs_copied,
        m.bytes_copied,
        m.blobs - m.blobs_copied
    );
    println!(
        "metadata: {} repositories, {} manifests, {} tags, {} releases; audit chain {} rows, head {}{}",
        m.counts.repositories,
        m.counts.manifests,
        m.counts.tags,
        m.counts.releases,
        m.audit.rows,
        m.audit.head,
        if m.audit.valid { "" } else { " (DOES NOT VERIFY: run `wharf audit verify`)" }
    );
    if r.snapshots_pruned > 0 {
        println!("pruned {} older snapshots and {} blobs only they held (backup.keep)", r.snapshots_pruned, r.blobs_pruned);
    }
}

fn verdict(o: &VerifyOutcome, json: bool) -> Result<(), CliError> {
    if o.problems.is_empty() {
        if !json {
            println!(
                "backup {} in {} is sound: {} blobs ({} bytes) re-hashed, metadata opens, audit chain verifies to {} ({} rows)",
                o.manifest.snapshot, o.location, o.blobs_checked, o.bytes_checked, o.manifest.audit.head, o.manifest.audit.rows
            );
        }
        return Ok(());
    }
    Err(CliError::Refused(format!("backup {} in {} is damaged:\n  {}", o.manifest.snapshot, o.location, o.problems.join("\n  "))))
}

/// `wharf restore`: into a stopped data directory (its lock is taken).
pub fn restore(
    config: &ConfigArgs,
    source: &str,
    snapshot: Option<&str>,
    force: bool,
    json: bool,
    scratch_url: Option<String>,
) -> Result<(), CliError> {
    let dest = destination(source)?;
    let config = config.load(None)?;
    crate::datadir::create(&config.data_dir).map_err(CliError::io(config.data_dir.display().to_string()))?;
    let _lock = crate::datadir::lock(&config.data_dir).map_err(crate::StartError::from)?;
    if !force {
        let holds = match config.postgres_url() {
            Some(url) => (!crate::db::pg_database_is_empty(url).map_err(crate::registry::backup::BackupError::from)?)
                .then(|| "the PostgreSQL database of database.url already holds tables".to_owned()),
            None => config.database_path().exists().then(|| format!("{} already holds a database", config.database_path().display())),
        };
        if let Some(holds) = holds {
            return Err(CliError::Refused(format!("{holds}; restore replaces it and its blobs' metadata: pass --force to do so")));
        }
    }
    let pg = pg_check(&config, scratch_url);
    let report = runtime()?.block_on(backup::restore(&config, &dest, snapshot, &pg))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "restored backup {} from {} into {}: {} blobs copied ({} bytes), {} already present; {} blobs re-hashed, {} stage pointers and the audit chain ({} rows, head {}) verified",
            report.snapshot,
            report.location,
            report.database,
            report.blobs_copied,
            report.bytes_copied,
            report.blobs_present,
            report.blobs_verified,
            report.stage_pointers_checked,
            report.audit_rows,
            report.audit_head
        );
    }
    Ok(())
}
