//! The pair runtime and the `pairos` command.
//!
//! `main.rs` only sets up logging, parses the command line ([`cli`], the one clap module) and
//! calls a handler in [`commands`]; handlers call the libraries and map the outcome to an
//! [`Exit`] code. The pair daemon (`pairos run`) arrives with its own issue.

pub mod cli;
pub mod commands;
mod exit;
mod output;

pub use exit::Exit;
