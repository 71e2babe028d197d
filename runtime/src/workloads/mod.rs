//! Running the pair's workloads on the primary: the order of a role change ([`sequence`]),
//! their processes ([`process`]), their output ([`logs`]) and their health checks
//! ([`health`]). What a workload is, and its restart budget, is `pairos_workload`'s.

pub mod define;
pub mod filesystem;
pub mod health;
pub mod logs;
pub mod process;
pub mod runner;
pub mod sequence;
