//! One handler per subcommand; each returns the [`crate::Exit`] code.

pub mod boards;
pub mod build;
pub mod console;
pub mod install;
pub mod pair;
pub mod pxe;
pub mod status;
pub mod volume;
pub mod witness;
pub mod workload;

use crate::cli::{Cli, Command};
use crate::Exit;

/// The command the kernel's `/init` stands for.
pub fn init_command() -> Command {
    Command::Init
}

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    if cli.pair.is_some() && !matches!(cli.command, Command::Pair(_)) {
        anyhow::bail!("--pair works with `pair status`, `pair switchover` and `pair maintenance`");
    }
    match cli.command {
        Command::Boards(cmd) => boards::run(cmd),
        Command::Build(args) => build::run(&args),
        Command::Pxe(args) => pxe::run(&args),
        Command::Install(args) => install::run(&args),
        Command::Run(args) => crate::run::run(&args),
        Command::Status(args) => status::run(&args),
        Command::Pair(cmd) => match cli.pair {
            Some(url) => pair::remote(cmd, &url, cli.pair_cert.as_deref()),
            None => pair::run(cmd),
        },
        Command::Volume(cmd) => volume::run(cmd),
        Command::Witness(cmd) => witness::run(cmd),
        Command::Console(cmd) => console::run(cmd),
        Command::Workload(cmd) => workload::run(cmd),
        Command::Init => crate::boot::init(),
    }
}
