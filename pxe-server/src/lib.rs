//! Network boot on the private link: DHCPv4 with PXE (or proxyDHCP beside another DHCP server),
//! TFTP and HTTP, all bound to one interface, answering each client by a policy its user
//! supplies (recover, boot the local disk, or ignore).
//!
//! [`service::serve`] runs the whole service. Start reading at [`dhcp::DhcpServer::handle`]: one
//! request in, at most one reply out, with no I/O besides the lease file, so that it is
//! unit-tested and fuzzed without sockets. [`client`] reads what a PXE client says about
//! itself, [`policy`] is the caller's decision, [`bootfile`] turns both into what the client
//! should load, [`leases`] keeps addresses, and [`proxy`] is the proxyDHCP variant. [`tftp`] and
//! [`http`] serve the boot folder through the same [`jail`].

pub mod bootfile;
pub mod client;
pub mod dhcp;
pub mod dhcp_service;
pub mod http;
pub mod jail;
pub mod leases;
pub mod packet;
pub mod policy;
pub mod probe;
pub mod proxy;
pub mod ratelimit;
pub mod service;
pub mod sockets;
pub mod tftp;
