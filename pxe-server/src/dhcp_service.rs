//! The DHCP services on one interface: UDP sockets bound to the interface with SO_BINDTODEVICE
//! (so nothing on another interface is ever answered), feeding [`DhcpServer::handle`] (port 67)
//! or, in proxy mode, [`ProxyDhcp::handle`] (ports 67 and 4011), and sending their replies.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use dhcproto::{Encodable, Encoder};
use socket2::Type;

use dhcproto::v4::Message;

use crate::dhcp::{Destination, DhcpConfig, DhcpServer, Reply};
use crate::leases::{LeaseStore, Loaded};
use crate::policy::Policy;
use crate::proxy::{ProxyDhcp, ProxyPort};
use crate::ratelimit::RateLimit;
use crate::sockets::{bind, on_interface, socket_error};
pub use crate::sockets::{interface_address, ServeError};

/// Full DHCP: addresses from a pool, with the boot files.
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
    let err = |what| socket_error(interface, what);
    let s = on_interface(interface, Type::DGRAM)?;
    s.set_broadcast(true).map_err(err("SO_BROADCAST"))?;
    // Room for bursts: a real client's packet must not be lost behind a burst of others.
    s.set_recv_buffer_size(4 << 20).map_err(err("SO_RCVBUF"))?;
    // The kernel drops what cannot be a client's DHCP message before queueing it, so a flood of
    // garbage neither fills the queue nor wakes us (as ISC dhcpd does with its BPF filter).
    s.attach_filter(&request_filter()).map_err(err("attaching the BPF filter"))?;
    bind(&s, interface, Ipv4Addr::UNSPECIFIED, port)?;
    let s: UdpSocket = s.into();
    s.set_read_timeout(Some(Duration::from_millis(500))).map_err(err("read timeout"))?;
    Ok(s)
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Receives requests on `socket` until `stop` is set, and sends what `handle` replies.
fn serve_socket(
    socket: &UdpSocket,
    stop: &AtomicBool,
    mut handle: impl FnMut(&Message) -> Option<Reply>,
) -> Result<(), ServeError> {
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
        let Some(reply) = handle(&msg) else { continue };
        if let (true, dropped) = decision_log.allow(Instant::now()) {
            tracing::info!(decision = %reply.note, suppressed = dropped, "DHCP");
        }
        let mut out = Vec::new();
        if reply.message.encode(&mut Encoder::new(&mut out)).is_err() {
            continue;
        }
        let to = match reply.to {
            Destination::Broadcast => SocketAddr::from(SocketAddrV4::new(Ipv4Addr::BROADCAST, 68)),
            Destination::Unicast(ip) => SocketAddr::from(SocketAddrV4::new(ip, 68)),
            Destination::Sender => from,
        };
        if let Err(e) = socket.send_to(&out, to) {
            tracing::warn!(%to, error = %e, "sending a reply");
        }
    }
    Ok(())
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
    serve_socket(&socket, &stop, |msg| match server.handle(msg, unix_now()) {
        Ok(reply) => reply,
        Err(e) => {
            tracing::error!(error = %e, "lease store");
            None
        }
    })
}

/// Serves proxyDHCP on the interface (ports 67 and 4011) until `stop` is set.
pub fn serve_proxy<P: Policy>(
    interface: &str,
    http_port: u16,
    policy: P,
    stop: Arc<AtomicBool>,
) -> Result<(), ServeError> {
    let (server_ip, _) = interface_address(interface)?;
    let proxy = ProxyDhcp { server_ip, http_port, policy };
    let dhcp = udp_on(interface, 67)?;
    let boot = udp_on(interface, 4011)?;
    tracing::info!(%interface, %server_ip, "proxyDHCP serving (ports 67 and 4011)");
    std::thread::scope(|scope| {
        let on_boot = scope.spawn(|| serve_socket(&boot, &stop, |m| proxy.handle(m, ProxyPort::BootServer)));
        let on_dhcp = serve_socket(&dhcp, &stop, |m| proxy.handle(m, ProxyPort::Dhcp));
        stop.store(true, Ordering::Relaxed);
        let on_boot = on_boot.join().unwrap_or(Ok(()));
        on_dhcp.and(on_boot)
    })
}
