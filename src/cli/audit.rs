//! `wharf audit verify | export`: work on the local database directly, so
//! they also run when the server is down.

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use clap::Subcommand;
use serde_json::json;

use super::error::CliError;
use super::ConfigArgs;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain; exits non-zero and names the first broken row.
    Verify {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print the JSON report (as the API's /api/v1/audit/verify); still exits non-zero when broken.
        #[arg(long)]
        json: bool,
    },
    /// Write the whole log as JSON Lines, oldest first, each row with its
    /// RFC 3339 `time` (as the API) and the `created_at` milliseconds its hash covers.
    Export {
        #[command(flatten)]
        config: ConfigArgs,
        /// Output file (default: standard output).
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
}

pub fn run(command: AuditCommand) -> Result<(), CliError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(CliError::io("starting the runtime"))?;
    match command {
        AuditCommand::Verify { config, json } => {
            let (_, registry) = config.open_existing()?;
            let report = rt.block_on(registry.verify_audit())?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            }
            match report.first_broken {
                None => {
                    if !json {
                        println!("audit log intact: {} rows verified, head hash {}", report.rows_checked, report.head_hash);
                    }
                    Ok(())
                }
                Some(broken) => Err(CliError::Refused(format!(
                    "audit log BROKEN at row {}: {} ({} rows before it verified)",
                    broken.id, broken.reason, report.rows_checked
                ))),
            }
        }
        AuditCommand::Export { config, output } => {
            let (_, registry) = config.open_existing()?;
            let mut out: Box<dyn Write> = match output {
                Some(path) => {
                    Box::new(std::io::BufWriter::new(std::fs::File::create(&path).map_err(CliError::io(path.display().to_string()))?))
                }
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let mut after = 0;
            loop {
                let batch = rt.block_on(registry.audit_batch(after, 1000))?;
                let Some(last) = batch.last() else { break };
                after = last.record.id;
                for row in &batch {
                    let mut line = serde_json::to_value(&row.record)?;
                    // `time` as the API writes it; `created_at` (ms) stays, as the hash covers it.
                    line["time"] = json!(DateTime::<Utc>::from_timestamp_millis(row.record.created_at)
                        .unwrap_or_default()
                        .to_rfc3339_opts(SecondsFormat::Millis, true));
                    line["hash"] = json!(row.hash);
                    writeln!(out, "{line}").map_err(CliError::io("writing the export"))?;
                }
            }
            out.flush().map_err(CliError::io("writing the export"))
        }
    }
}
