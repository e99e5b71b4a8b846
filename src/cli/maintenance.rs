//! `wharf retention plan | run` and `wharf gc [--dry-run]`: cleanup on the
//! local database and storage, beside a running server or without one.
//! Deletions are audited with the actor `system`.

use clap::Subcommand;

use super::error::CliError;
use super::ConfigArgs;
use crate::domain::Actor;
use crate::registry::retention::RetentionReport;
use crate::registry::RunTrigger;

#[derive(Subcommand)]
pub enum RetentionCommand {
    /// Show what a run would delete and keep, with the rule behind each decision.
    Plan {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print the JSON report instead of the readable plan.
        #[arg(long)]
        json: bool,
    },
    /// Apply the plan.
    Run {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long)]
        json: bool,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(CliError::io("starting the runtime"))
}

fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

/// The plan as people read it: one line per tag and manifest, deletions marked.
pub fn render(report: &RetentionReport) -> String {
    let mut out = String::new();
    for repo in &report.repositories {
        out.push_str(&format!("{}\n", repo.repository));
        for t in &repo.tags {
            let mark = if t.decision.keep { "keep  " } else { "DELETE" };
            out.push_str(&format!("  {mark} tag {:<20} {}  {}\n", t.tag, short(&t.digest), t.decision.reason));
        }
        for m in &repo.manifests {
            let mark = if m.decision.keep { "keep  " } else { "DELETE" };
            out.push_str(&format!("  {mark} manifest {}  {}\n", short(&m.digest), m.decision.reason));
        }
    }
    let verb = if report.dry_run { "would delete" } else { "deleted" };
    out.push_str(&format!(
        "{verb}: {} manifests, {} tags in {} repositories\n",
        report.manifests_deleted,
        report.tags_deleted,
        report.repositories.len()
    ));
    out
}

pub fn retention(command: RetentionCommand) -> Result<(), CliError> {
    let (config, json, dry_run) = match &command {
        RetentionCommand::Plan { config, json } => (config, *json, true),
        RetentionCommand::Run { config, json } => (config, *json, false),
    };
    let (config, registry) = config.open_existing()?;
    let report = runtime()?.block_on(registry.run_retention(&Actor::system(), RunTrigger::Cli, dry_run))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if report.repositories.is_empty() {
        let why = if config.retention.policies.is_empty() { " (none is configured: retention.policies)" } else { "" };
        println!("no retention policy matches any repository{why}; nothing {}", if dry_run { "would be deleted" } else { "was deleted" });
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

pub fn gc(config: &ConfigArgs, dry_run: bool, json: bool) -> Result<(), CliError> {
    let (config, registry) = config.open_existing()?;
    let r = runtime()?.block_on(registry.run_gc(&Actor::system(), RunTrigger::Cli, dry_run))?;
    if json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    let verb = if dry_run { "would free" } else { "freed" };
    println!(
        "{verb} {} blobs ({} bytes), {} abandoned uploads and {} stray objects ({} bytes){}",
        r.blobs_deleted,
        r.bytes_freed,
        r.uploads_deleted,
        r.strays_deleted,
        r.stray_bytes_freed,
        if r.resumed > 0 { format!("; finished {} deletions an interrupted run had started", r.resumed) } else { String::new() }
    );
    // An interrupted push is not counted above until it is old enough; say
    // so, or its parts look like they will never be collected.
    println!(
        "uploads idle for less than {} (gc.upload_max_age) are kept: an interrupted push is collected once it is that old",
        humantime::format_duration(config.gc.upload_max_age)
    );
    Ok(())
}
