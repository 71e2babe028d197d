//! The pair's mirrored volumes: each a DRBD resource on a logical volume of the same size on
//! both nodes, replicated over the private link. This crate knows DRBD and LVM; the pair
//! daemon decides when to use them.
//!
//! - [`spec`]: volume names and sizes, checked before anything is made.
//! - [`document`]: the pair's configuration document (its volumes and workloads),
//!   versioned, the same on both nodes.
//! - [`drbd_conf`]: the DRBD configuration written from it, and [`drbd`] its tools.
//! - [`events2`]: `drbdsetup events2` read into each resource's state.
//! - [`lvm`]: the volume group on the data partition and the logical volumes in it.
//! - [`resync_watch`]: stuck resyncs and connections noticed, and cycled with backoff.

pub mod document;
pub mod drbd;
pub mod drbd_conf;
pub mod events2;
pub mod lvm;
pub mod resync_watch;
pub mod spec;
