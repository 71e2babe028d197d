//! Sockets tied to one interface. Every listening and transfer socket of the PXE services is
//! bound with SO_BINDTODEVICE before `bind`, so that nothing arriving on another interface ever
//! reaches them, whatever the routing table says.

use std::net::{Ipv4Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("interface {0}: no such interface, or it has no IPv4 address")]
    NoAddress(String),
    #[error("interface {interface}: {what}: {source}")]
    Socket { interface: String, what: &'static str, source: std::io::Error },
    #[error(transparent)]
    Leases(#[from] crate::leases::LeaseError),
    #[error("boot folder {path}: {source}")]
    Root { path: std::path::PathBuf, source: std::io::Error },
}

/// The error for `what` on `interface`, for `map_err`.
pub(crate) fn socket_error<'a>(
    interface: &'a str,
    what: &'static str,
) -> impl Fn(std::io::Error) -> ServeError + 'a {
    move |source| ServeError::Socket { interface: interface.to_owned(), what, source }
}

/// The interface's IPv4 address and netmask.
pub fn interface_address(interface: &str) -> Result<(Ipv4Addr, Ipv4Addr), ServeError> {
    let addrs =
        nix::ifaddrs::getifaddrs().map_err(|e| socket_error(interface, "listing addresses")(e.into()))?;
    for a in addrs.filter(|a| a.interface_name == interface) {
        let ip = a.address.as_ref().and_then(|s| s.as_sockaddr_in()).map(|s| s.ip());
        let mask = a.netmask.as_ref().and_then(|s| s.as_sockaddr_in()).map(|s| s.ip());
        if let (Some(ip), Some(mask)) = (ip, mask) {
            return Ok((ip, mask));
        }
    }
    Err(ServeError::NoAddress(interface.to_owned()))
}

/// A socket of `ty` bound to `interface` (SO_BINDTODEVICE) with SO_REUSEADDR, not yet bound to an
/// address, so that the caller can set more options first.
pub(crate) fn on_interface(interface: &str, ty: Type) -> Result<Socket, ServeError> {
    let err = |what| socket_error(interface, what);
    let protocol = if ty == Type::STREAM { Protocol::TCP } else { Protocol::UDP };
    let s = Socket::new(Domain::IPV4, ty, Some(protocol)).map_err(err("creating a socket"))?;
    s.bind_device(Some(interface.as_bytes())).map_err(err("binding to the interface (SO_BINDTODEVICE)"))?;
    s.set_reuse_address(true).map_err(err("SO_REUSEADDR"))?;
    Ok(s)
}

/// Binds `s` to `ip:port`.
pub(crate) fn bind(s: &Socket, interface: &str, ip: Ipv4Addr, port: u16) -> Result<(), ServeError> {
    s.bind(&SocketAddr::from((ip, port)).into()).map_err(socket_error(interface, "binding the port"))
}

/// The interface's MAC address, from sysfs.
pub fn interface_mac(interface: &str) -> Option<[u8; 6]> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{interface}/address")).ok()?;
    let bytes: Vec<u8> = text.trim().split(':').filter_map(|h| u8::from_str_radix(h, 16).ok()).collect();
    bytes.try_into().ok()
}

/// A blocking UDP socket on `port` of `interface` only (SO_BINDTODEVICE): for the pair
/// runtime's heartbeats on the private link.
pub fn udp_socket(interface: &str, port: u16) -> Result<std::net::UdpSocket, ServeError> {
    let s = on_interface(interface, Type::DGRAM)?;
    bind(&s, interface, Ipv4Addr::UNSPECIFIED, port)?;
    Ok(s.into())
}

/// A listening, non-blocking TCP socket on `port` of `interface` only (SO_BINDTODEVICE): for
/// this crate's HTTP and for the pair runtime's other private-link services.
pub fn tcp_listener(interface: &str, port: u16) -> Result<std::net::TcpListener, ServeError> {
    let err = |what| socket_error(interface, what);
    let s = on_interface(interface, Type::STREAM)?;
    bind(&s, interface, Ipv4Addr::UNSPECIFIED, port)?;
    s.listen(128).map_err(err("listening"))?;
    s.set_nonblocking(true).map_err(err("non-blocking"))?;
    Ok(s.into())
}
