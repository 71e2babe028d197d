//! The pair runtime and the `pairos` command.
//!
//! `main.rs` only sets up logging, parses the command line ([`cli`], the one clap module) and
//! calls a handler in [`commands`]; handlers call the libraries and map the outcome to an
//! [`Exit`] code. [`boot`] is the early-boot code the initramfs runs as `/init`; [`run`] is the
//! node's first process after it. [`volumes`] keeps the node's side of the pair's mirrored
//! volumes. [`workloads`] runs the pair's workloads on the primary. [`witness`] is the service
//! a customer runs on a third machine, and the daemon's side of it. [`console`] is the pair's
//! web console and API.

pub mod boot;
pub mod cli;
pub mod commands;
pub mod console;
mod exit;
mod output;
pub mod pair;
pub mod run;
pub mod signing_key;
pub mod volumes;
pub mod witness;
pub mod workloads;

pub use exit::Exit;

/// A field of an os-release file, unquoted.
pub fn os_release_field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .map(|v| v.trim().trim_matches('"').to_owned())
}
