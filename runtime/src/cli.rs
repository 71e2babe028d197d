//! The whole command line of `pairos`, and nothing else: noun-verb subcommands, help on every
//! argument. Handlers live in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "pairos",
    version,
    about = "Two servers, one highly available unit",
    long_about = "pairos turns two identical certified servers into one highly available unit.\n\
                  Exit codes: 0 success, 1 a negative answer (e.g. not certified), 2 error.",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Certified hardware: list and show board profiles, check this machine.
    #[command(subcommand)]
    Boards(BoardsCommand),
}

#[derive(Debug, Subcommand)]
pub enum BoardsCommand {
    /// List the certified board profiles.
    List(ProfilesArgs),
    /// Show one board profile in full.
    Show(ShowArgs),
    /// Inventory this machine (or a captured tree) from sysfs and procfs.
    Probe(ProbeArgs),
    /// Check whether this machine is a certified board; exits 0 if certified, 1 if not, 2 on error.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct ProfilesArgs {
    /// Read profiles from this folder of *.toml files instead of the built-in set.
    #[arg(long, value_name = "DIR")]
    pub profiles: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The profile's name, as `pairos boards list` prints it.
    pub name: String,
    #[command(flatten)]
    pub profiles: ProfilesArgs,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Read a captured tree (with sys/ and proc/ below it) instead of this machine's.
    #[arg(long, value_name = "ROOT", default_value = "/")]
    pub sysfs: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Read a captured tree (with sys/ and proc/ below it) instead of this machine's.
    #[arg(long, value_name = "ROOT", default_value = "/")]
    pub sysfs: PathBuf,
    #[command(flatten)]
    pub profiles: ProfilesArgs,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn every_argument_has_help() {
        fn walk(cmd: &clap::Command) {
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                assert!(
                    builtin || arg.get_help().is_some(),
                    "{} --{} has no help",
                    cmd.get_name(),
                    arg.get_id()
                );
            }
            for sub in cmd.get_subcommands() {
                assert!(sub.get_about().is_some(), "{} has no about", sub.get_name());
                walk(sub);
            }
        }
        walk(&super::Cli::command());
    }
}
