//! Network boot services for the private link: DHCPv4 (with PXE) served on one interface
//! ([`serve`]), and, to come, proxyDHCP, TFTP and HTTP, bound to one interface, answering each client by a policy its user supplies
//! (recover, boot the local disk, or ignore).
//!
//! Start reading at [`dhcp::DhcpServer::handle`]: one request in, at most one reply out, with
//! no I/O besides the lease file, so that it is unit-tested and fuzzed without sockets.
//! [`client`] reads what a PXE client says about itself, [`policy`] is the caller's decision,
//! [`bootfile`] turns both into what the client should load, and [`leases`] keeps addresses.

pub mod bootfile;
pub mod client;
pub mod dhcp;
pub mod leases;
pub mod packet;
pub mod policy;
pub mod ratelimit;
pub mod serve;
