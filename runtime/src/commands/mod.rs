//! One handler per subcommand; each returns the [`crate::Exit`] code.

pub mod boards;

use crate::cli::{Cli, Command};
use crate::Exit;

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Boards(cmd) => boards::run(cmd),
    }
}
