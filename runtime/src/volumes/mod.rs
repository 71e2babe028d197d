//! The pair's mirrored volumes: each a DRBD resource on a logical volume of the same size on
//! both nodes, replicated over the private link.
//!
//! - [`spec`]: volume names and sizes, checked before anything is made.
//! - [`document`]: the pair's configuration document (its volumes), versioned, the same on
//!   both nodes.
//! - [`drbd_conf`]: the DRBD configuration written from it.

pub mod document;
pub mod drbd_conf;
pub mod spec;
