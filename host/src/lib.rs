//! The one way pairos touches the host.
//!
//! Every subprocess in pairos (image tools, `ip`, QEMU in the lab) runs through [`Cmd`]: it logs
//! the command line, keeps the tail of stderr in the error, and ties a spawned child's life to
//! ours ([`Cmd::spawn`] returns a [`Child`] guard that kills it on drop). Nobody calls
//! `std::process::Command::status()` directly. State files are written whole or not at all
//! ([`write_atomically`]).

mod command;
mod file;

pub use command::{Child, Cmd, CommandError};
pub use file::{write_atomically, FileError};
