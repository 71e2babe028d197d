//! The one way pairos touches the host.
//!
//! Every subprocess in pairos (image tools, `ip`, QEMU in the lab) runs through [`Cmd`]: it logs
//! the command line, keeps the tail of stderr in the error, and ties a spawned child's life to
//! ours ([`Cmd::spawn`] returns a [`Child`] guard that kills it on drop). Nobody calls
//! `std::process::Command::status()` directly.

mod command;

pub use command::{Child, Cmd, CommandError};
