//! The pair's workloads: the programs the primary runs on the mirrored volumes, behind the
//! pair's address. This crate knows what a workload is; the pair daemon runs them.
//!
//! - [`spec`]: a workload's definition (command, user, environment, volumes and mount
//!   points, the address, order, health check, restart policy, stop timeout, limits), read
//!   from TOML and checked, with errors that name the field and what was expected.
//! - [`budget`]: the restart policy at work: restart on this node up to N times in M
//!   minutes, then move the pair to a healthy peer, or mark the workload failed.

pub mod budget;
pub mod spec;
