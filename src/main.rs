//! The `wharf` binary; commands live in `wharf::cli`.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    // `--version` names the git commit too; build.rs sets WHARF_VERSION.
    let matches = wharf::cli::Cli::command().version(env!("WHARF_VERSION")).get_matches();
    let cli = wharf::cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match wharf::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wharf: {e}");
            e.exit_code()
        }
    }
}
