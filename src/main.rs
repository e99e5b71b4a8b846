//! The `wharf` binary; commands live in `wharf::cli`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match wharf::cli::run(wharf::cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wharf: {e}");
            ExitCode::FAILURE
        }
    }
}
