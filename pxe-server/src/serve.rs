//! The DHCP service on one interface: a UDP socket on port 67 bound to the interface with
//! SO_BINDTODEVICE (so nothing on another interface is ever answered), feeding
//! [`DhcpServer::handle`] and sending its replies.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use dhcproto::{Encodable, Encoder};
use socket2::{Domain, Protocol, Socket, Type};

use crate::dhcp::{Destination, DhcpConfig, DhcpServer};
use crate::leases::{LeaseStore, Loaded};
use crate::policy::Policy;
use crate::ratelimit::RateLimit;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("interface {0}: no such interface, or it has no IPv4 address")]
    NoAddress(String),
    #[error("interface {interface}: {what}: {source}")]
    Socket { interface: String, what: &'static str, source: std::io::Error },
    #[error(transparent)]
    Leases(#[from] crate::leases::LeaseError),
}

/// The interface's IPv4 address and netmask.
pub fn interface_address(interface: &str) -> Result<(Ipv4Addr, Ipv4Addr), ServeError> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(|e| ServeError::Socket {
        interface: interface.to_owned(),
        what: "listing addresses",
        source: e.into(),
    })?;
    for a in addrs.filter(|a| a.interface_name == interface) {
        let ip = a.address.as_ref().and_then(|s| s.as_sockaddr_in()).map(|s| s.ip());
        let mask = a.netmask.as_ref().and_then(|s| s.as_sockaddr_in()).map(|s| s.ip());
        if let (Some(ip), Some(mask)) = (ip, mask) {
            return Ok((ip, mask));
        }
    }
    Err(ServeError::NoAddress(interface.to_owned()))
}

#[derive(Debug, Clone)]
pub struct DhcpService {
    pub interface: String,
    pub pool: (Ipv4Addr, Ipv4Addr),
    pub lease_file: PathBuf,
    pub lease_secs: u32,
    pub http_port: u16,
}

/// Classic BPF, run by the kernel on each datagram from its UDP header on: accept only a
/// BOOTREQUEST (op 1, at payload offset 0) with the DHCP magic cookie (payload offset 236).
/// A packet too short for these loads is dropped by the kernel too.
fn request_filter() -> [libc::sock_filter; 6] {
    const UDP_HEADER: u32 = 8;
    let op = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    let (ld_b, ld_w, jeq, ret) = (0x30, 0x20, 0x15, 0x06);
    [
        op(ld_b, 0, 0, UDP_HEADER),       // A = op
        op(jeq, 0, 3, 1),                 // BOOTREQUEST? else drop
        op(ld_w, 0, 0, UDP_HEADER + 236), // A = cookie
        op(jeq, 0, 1, 0x6382_5363),       // magic cookie? else drop
        op(ret, 0, 0, 0x0004_0000),       // accept (whole packet)
        op(ret, 0, 0, 0),                 // drop
    ]
}

fn udp_on(interface: &str, port: u16) -> Result<UdpSocket, ServeError> {
    let err = |what| move |source| ServeError::Socket { interface: interface.to_owned(), what, source };
    let s =
        Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(err("creating a UDP socket"))?;
    s.bind_device(Some(interface.as_bytes())).map_err(err("binding to the interface (SO_BINDTODEVICE)"))?;
    s.set_reuse_address(true).map_err(err("SO_REUSEADDR"))?;
    s.set_broadcast(true).map_err(err("SO_BROADCAST"))?;
    // Room for bursts: a real client's packet must not be lost behind a burst of others.
    s.set_recv_buffer_size(4 << 20).map_err(err("SO_RCVBUF"))?;
    // The kernel drops what cannot be a client's DHCP message before queueing it, so a flood of
    // garbage neither fills the queue nor wakes us (as ISC dhcpd does with its BPF filter).
    s.attach_filter(&request_filter()).map_err(err("attaching the BPF filter"))?;
    let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    s.bind(&any.into()).map_err(err("binding the DHCP port"))?;
    let s: UdpSocket = s.into();
    s.set_read_timeout(Some(Duration::from_millis(500))).map_err(err("read timeout"))?;
    Ok(s)
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Serves DHCP on the interface until `stop` is set.
pub fn serve_dhcp<P: Policy>(svc: &DhcpService, policy: P, stop: Arc<AtomicBool>) -> Result<(), ServeError> {
    let (server_ip, netmask) = interface_address(&svc.interface)?;
    let (leases, loaded) = LeaseStore::open(&svc.lease_file, svc.pool.0, svc.pool.1)?;
    match loaded {
        Loaded::Fresh => tracing::info!(file = %svc.lease_file.display(), "no lease file yet"),
        Loaded::Restored(n) => {
            tracing::info!(file = %svc.lease_file.display(), leases = n, "leases restored")
        }
        Loaded::SetAside { moved_to, error } => tracing::error!(
            file = %svc.lease_file.display(), moved_to = %moved_to.display(), %error,
            "lease file is corrupt: set aside, starting with no leases"
        ),
    }
    let config = DhcpConfig { server_ip, netmask, lease_secs: svc.lease_secs, http_port: svc.http_port };
    let mut server = DhcpServer { config, leases, policy };
    let socket = udp_on(&svc.interface, 67)?;
    tracing::info!(interface = %svc.interface, %server_ip, "DHCP serving");
    let mut garbage_log = RateLimit::new(5);
    let mut decision_log = RateLimit::new(20);
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::Relaxed) {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                continue
            }
            Err(e) => {
                tracing::warn!(error = %e, "receiving");
                continue;
            }
        };
        let msg = match crate::packet::decode(&buf[..n]) {
            Ok(m) => m,
            Err(e) => {
                if let (true, dropped) = garbage_log.allow(Instant::now()) {
                    tracing::warn!(%from, error = %e, suppressed = dropped, "not a DHCP message");
                }
                continue;
            }
        };
        let reply = match server.handle(&msg, unix_now()) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(error = %e, "lease store");
                continue;
            }
        };
        if let (true, dropped) = decision_log.allow(Instant::now()) {
            tracing::info!(decision = %reply.note, suppressed = dropped, "DHCP");
        }
        let mut out = Vec::new();
        if reply.message.encode(&mut Encoder::new(&mut out)).is_err() {
            continue;
        }
        let to = match reply.to {
            Destination::Broadcast => SocketAddrV4::new(Ipv4Addr::BROADCAST, 68),
            Destination::Unicast(ip) => SocketAddrV4::new(ip, 68),
        };
        if let Err(e) = socket.send_to(&out, to) {
            tracing::warn!(%to, error = %e, "sending a reply");
        }
    }
    Ok(())
}
