//! Is anyone else serving DHCP here? Before a node serves network boot on a port (and again
//! while it serves), it asks as an ordinary client would: a DHCPDISCOVER broadcast from the
//! port, and every OFFER that comes back within the wait names a server. A crossover cable to
//! the peer has none; a customer's network usually has one, and a node must never become a
//! second DHCP server there. (The same check as dhcp_probe(8) or nmap's
//! broadcast-dhcp-discover, built from the decoder this crate already trusts.)

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use dhcproto::v4::{Flags, HType, Message, MessageType, Opcode};
use dhcproto::{Encodable, Encoder};

use crate::sockets::{bind, on_interface, socket_error, ServeError};

/// A DHCP server that answered the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Responder {
    /// Its server identifier (option 54), or the packet's source address without one.
    pub server: Ipv4Addr,
    /// The address it offered.
    pub offered: Ipv4Addr,
}

/// Broadcasts a DHCPDISCOVER for `mac` on `interface` (which needs no address) and collects the
/// OFFERs that answer it within `wait`. Port 68 must be free on the interface.
pub fn dhcp_servers(interface: &str, mac: [u8; 6], wait: Duration) -> Result<Vec<Responder>, ServeError> {
    let err = |what| socket_error(interface, what);
    let s = on_interface(interface, socket2::Type::DGRAM)?;
    s.set_broadcast(true).map_err(err("SO_BROADCAST"))?;
    bind(&s, interface, Ipv4Addr::UNSPECIFIED, 68)?;
    let socket: UdpSocket = s.into();
    let mut xid = [0u8; 4];
    getrandom::getrandom(&mut xid)
        .map_err(|e| err("randomness for the transaction id")(std::io::Error::other(e.to_string())))?;
    let xid = u32::from_le_bytes(xid);
    let mut msg = Message::default();
    msg.set_opcode(Opcode::BootRequest)
        .set_htype(HType::Eth)
        .set_xid(xid)
        .set_flags(Flags::default().set_broadcast())
        .set_chaddr(&mac);
    msg.opts_mut().insert(dhcproto::v4::DhcpOption::MessageType(MessageType::Discover));
    let mut bytes = Vec::new();
    msg.encode(&mut Encoder::new(&mut bytes))
        .map_err(|e| err("encoding the probe")(std::io::Error::other(e.to_string())))?;
    socket
        .send_to(&bytes, SocketAddr::from((Ipv4Addr::BROADCAST, 67)))
        .map_err(err("sending the DHCP probe"))?;

    let mut found = Vec::new();
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 1500];
    while let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
        socket.set_read_timeout(Some(left)).map_err(err("read timeout"))?;
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                break
            }
            Err(e) => return Err(err("receiving")(e)),
        };
        let Ok(reply) = crate::packet::decode_reply(&buf[..n]) else { continue };
        if reply.opcode() != Opcode::BootReply
            || reply.xid() != xid
            || reply.opts().msg_type() != Some(MessageType::Offer)
        {
            continue;
        }
        let server = match reply.opts().get(dhcproto::v4::OptionCode::ServerIdentifier) {
            Some(dhcproto::v4::DhcpOption::ServerIdentifier(ip)) => *ip,
            _ => match from.ip() {
                std::net::IpAddr::V4(ip) => ip,
                std::net::IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
            },
        };
        let r = Responder { server, offered: reply.yiaddr() };
        if !found.contains(&r) {
            found.push(r);
        }
    }
    Ok(found)
}

/// The other stations heard on `interface` within `wait`: the source MACs of every frame that
/// arrived there (a packet socket for all protocols, as tcpdump opens one). A crossover cable
/// has one other end; a network has many.
pub fn stations(interface: &str, wait: Duration) -> Result<std::collections::BTreeSet<[u8; 6]>, ServeError> {
    use nix::sys::socket::{
        recvfrom, setsockopt, socket, sockopt, AddressFamily, LinkAddr, SockFlag, SockProtocol, SockType,
    };
    use std::os::fd::AsRawFd;
    let err = |what| socket_error(interface, what);
    let nix_err = |what| move |e: nix::Error| err(what)(std::io::Error::from(e));
    let ifindex =
        nix::net::if_::if_nametoindex(interface).map_err(nix_err("finding the interface"))? as usize;
    let fd = socket(AddressFamily::Packet, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::EthAll)
        .map_err(nix_err("opening a packet socket"))?;
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 2048];
    while let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
        let timeout = nix::sys::time::TimeVal::new(left.as_secs() as _, left.subsec_micros().max(1) as _);
        setsockopt(&fd, sockopt::ReceiveTimeout, &timeout).map_err(nix_err("read timeout"))?;
        match recvfrom::<LinkAddr>(fd.as_raw_fd(), &mut buf) {
            Ok((_, Some(from))) => {
                // PACKET_OUTGOING (4) is our own frame going out.
                if from.ifindex() == ifindex && from.pkttype() != 4 {
                    if let Some(mac) = from.addr() {
                        seen.insert(mac);
                    }
                }
            }
            Ok((_, None)) => {}
            Err(nix::Error::EAGAIN | nix::Error::EINTR) => {}
            Err(e) => return Err(err("receiving")(std::io::Error::from(e))),
        }
    }
    Ok(seen)
}
