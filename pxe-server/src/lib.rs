//! Network boot services for the private link: DHCPv4 (with PXE and proxyDHCP), TFTP and HTTP,
//! bound to one interface, answering each client by a policy its user supplies (recover, boot
//! the local disk, or ignore).
//!
//! This crate is the home of the `pxe-server` issue; nothing is implemented here yet.
