//! ARP on the public port, for the pair's address: duplicate address detection before the
//! address is taken (RFC 5227's probe: sender address 0.0.0.0, so nobody's cache learns from
//! it), gratuitous ARPs once it is held (a request with sender = target = the address, to the
//! broadcast address, as keepalived sends them), and "who holds this address" for the gateway
//! probe and the peer's confirmation. Frames go through a packet socket (pnet_datalink), so the
//! probe's window is ours to choose: arping's is a whole second at least.

use std::io;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use pnet_datalink::{Channel, DataLinkReceiver, DataLinkSender};

pub type Mac = [u8; 6];

const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];
const BROADCAST: Mac = [0xff; 6];
const REQUEST: u16 = 1;

pub struct ArpPort {
    interface: String,
    mac: Mac,
    tx: Box<dyn DataLinkSender>,
    rx: Box<dyn DataLinkReceiver>,
}

impl std::fmt::Debug for ArpPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArpPort").field("interface", &self.interface).finish_non_exhaustive()
    }
}

/// An ARP packet's fields that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    pub op: u16,
    pub sender_mac: Mac,
    pub sender_ip: Ipv4Addr,
    pub target_ip: Ipv4Addr,
}

pub fn frame(
    src: Mac,
    dst: Mac,
    op: u16,
    sender_ip: Ipv4Addr,
    target_mac: Mac,
    target_ip: Ipv4Addr,
) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETHERTYPE_ARP);
    // Ethernet, IPv4, 6-byte and 4-byte addresses.
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&src);
    f.extend_from_slice(&sender_ip.octets());
    f.extend_from_slice(&target_mac);
    f.extend_from_slice(&target_ip.octets());
    f
}

/// The ARP packet in an Ethernet frame; `None` for anything else or anything malformed.
pub fn parse(frame: &[u8]) -> Option<Arp> {
    if frame.len() < 42 || frame[12..14] != ETHERTYPE_ARP || frame[14..20] != [0, 1, 8, 0, 6, 4] {
        return None;
    }
    let ip = |at: usize| Ipv4Addr::new(frame[at], frame[at + 1], frame[at + 2], frame[at + 3]);
    Some(Arp {
        op: u16::from_be_bytes([frame[20], frame[21]]),
        sender_mac: frame[22..28].try_into().ok()?,
        sender_ip: ip(28),
        target_ip: ip(38),
    })
}

pub fn show(mac: &Mac) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

impl ArpPort {
    pub fn open(interface: &str) -> io::Result<ArpPort> {
        let iface =
            pnet_datalink::interfaces().into_iter().find(|i| i.name == interface).ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("{interface}: no such interface"))
            })?;
        let mac = iface.mac.map(|m| m.octets()).unwrap_or_default();
        let config = pnet_datalink::Config {
            read_timeout: Some(Duration::from_millis(20)),
            // Broadcasts and frames to this port are all ARP needs.
            promiscuous: false,
            ..pnet_datalink::Config::default()
        };
        match pnet_datalink::channel(&iface, config)? {
            Channel::Ethernet(tx, rx) => Ok(ArpPort { interface: interface.to_owned(), mac, tx, rx }),
            _ => Err(io::Error::other(format!("{interface}: not an Ethernet interface"))),
        }
    }

    pub fn mac(&self) -> Mac {
        self.mac
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        match self.tx.send_to(frame, None) {
            Some(r) => r,
            None => Err(io::Error::other(format!("{}: the frame was not sent", self.interface))),
        }
    }

    /// Asks who holds `ip` (from `from`, 0.0.0.0 for a duplicate address probe), `probes`
    /// times within `wait`, and returns the MACs of everyone else that spoke for it then: a
    /// reply, or any ARP packet with `ip` as its sender address.
    pub fn who_has(
        &mut self,
        ip: Ipv4Addr,
        from: Ipv4Addr,
        probes: u32,
        wait: Duration,
    ) -> io::Result<Vec<Mac>> {
        let request = frame(self.mac, BROADCAST, REQUEST, from, [0; 6], ip);
        let start = Instant::now();
        let every = wait / probes.max(1);
        let (mut sent, mut found) = (0, Vec::new());
        while start.elapsed() < wait {
            if sent < probes && start.elapsed() >= every * sent {
                self.send(&request)?;
                sent += 1;
            }
            match self.rx.next() {
                Ok(f) => {
                    if let Some(a) = parse(f) {
                        if a.sender_ip == ip && a.sender_mac != self.mac && !found.contains(&a.sender_mac) {
                            found.push(a.sender_mac);
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                Err(e) => return Err(e),
            }
        }
        Ok(found)
    }

    /// Tells the segment that `ip` is at this port's MAC: `count` gratuitous ARP requests.
    pub fn announce(&mut self, ip: Ipv4Addr, count: u32) -> io::Result<()> {
        let garp = frame(self.mac, BROADCAST, REQUEST, ip, BROADCAST, ip);
        for _ in 0..count {
            self.send(&garp)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_back_and_anything_else_is_refused() {
        let me = [2, 0, 0, 0, 0, 1];
        let ip = Ipv4Addr::new(192, 168, 50, 10);
        let f = frame(me, BROADCAST, 1, ip, BROADCAST, ip);
        assert_eq!(f.len(), 42);
        assert_eq!(parse(&f), Some(Arp { op: 1, sender_mac: me, sender_ip: ip, target_ip: ip }));
        assert_eq!(parse(&f[..41]), None, "short");
        let mut ip6 = f.clone();
        ip6[12] = 0x86;
        assert_eq!(parse(&ip6), None, "not ARP");
        let mut odd = f;
        odd[18] = 8;
        assert_eq!(parse(&odd), None, "not Ethernet and IPv4 sizes");
        assert_eq!(show(&me), "02:00:00:00:00:01");
    }
}
