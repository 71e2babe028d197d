//! `pairos`: parses the command line, sets up logging and calls the handler. Nothing else.
//! No async runtime yet: every command so far is a short synchronous job.

use std::process::ExitCode;

use clap::Parser;
use pairos_runtime::{cli::Cli, commands, Exit};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PAIROS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match commands::dispatch(cli) {
        Ok(exit) => exit.into(),
        Err(err) => {
            eprintln!("pairos: error: {err:#}");
            Exit::Error.into()
        }
    }
}
