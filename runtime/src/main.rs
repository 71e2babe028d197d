//! `pairos`: parses the command line, sets up logging and calls the handler. Nothing else.
//! No async runtime here: commands are synchronous, and early boot runs before one could be of
//! use. The network boot service starts its own small tokio runtime for its HTTP server.

use std::process::ExitCode;

use clap::Parser;
use pairos_runtime::{cli::Cli, commands, Exit};

fn main() -> ExitCode {
    // The kernel starts the initramfs's /init (a link to us) with no arguments.
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let as_init = std::path::Path::new(&argv0).file_name().is_some_and(|n| n == "init");
    let cli = if as_init {
        Cli { pair: None, pair_cert: None, command: commands::init_command() }
    } else {
        Cli::parse()
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PAIROS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,pairos_pxe=info")),
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
