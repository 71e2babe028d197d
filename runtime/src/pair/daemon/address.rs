//! The pair's address on this node's public port. Taking it: duplicate address detection
//! (nobody may answer for it), `ip address add`, then a burst of gratuitous ARPs, repeated a
//! few seconds later by the daemon (as keepalived does). Giving it up: `ip address del`, first
//! of everything when the role ends.

use std::net::Ipv4Addr;
use std::time::Duration;

use pairos_host::Cmd;

use crate::pair::arp::{show, ArpPort};

/// The duplicate address probe: this many ARP probes within this window. The peer is already
/// confirmed off or has handed over, so the probe only guards against a stranger on the
/// address; it need not wait a second as arping does.
const DAD_PROBES: u32 = 2;
const DAD_WINDOW: Duration = Duration::from_millis(40);
/// Gratuitous ARPs per burst.
pub const GARP_BURST: u32 = 3;

#[derive(Debug, Clone)]
pub struct PairAddress {
    pub interface: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
}

impl PairAddress {
    fn cidr(&self) -> String {
        format!("{}/{}", self.address, self.prefix)
    }

    /// Whether the address is on the port now.
    pub fn held(&self) -> bool {
        Cmd::new("ip")
            .args(["-o", "-4", "address", "show", "dev", &self.interface])
            .run_text()
            .is_ok_and(|out| out.split_whitespace().any(|w| w == self.cidr()))
    }

    /// Takes the address; an error says who answers for it, or what failed.
    pub fn take(&self) -> Result<(), String> {
        let mut port = ArpPort::open(&self.interface).map_err(|e| format!("{}: {e}", self.interface))?;
        if !self.held() {
            let others = port
                .who_has(self.address, Ipv4Addr::UNSPECIFIED, DAD_PROBES, DAD_WINDOW)
                .map_err(|e| format!("duplicate address probe on {}: {e}", self.interface))?;
            if !others.is_empty() {
                let macs: Vec<String> = others.iter().map(show).collect();
                return Err(format!("{} answers for {}: not taking it", macs.join(", "), self.address));
            }
            let added = Cmd::new("ip").args(["address", "add", &self.cidr(), "dev", &self.interface]).run();
            if let Err(e) = added {
                if !self.held() {
                    return Err(e.to_string());
                }
            }
        }
        self.announce_with(&mut port)
    }

    /// A burst of gratuitous ARPs for the address.
    pub fn announce(&self) -> Result<(), String> {
        let mut port = ArpPort::open(&self.interface).map_err(|e| format!("{}: {e}", self.interface))?;
        self.announce_with(&mut port)
    }

    fn announce_with(&self, port: &mut ArpPort) -> Result<(), String> {
        port.announce(self.address, GARP_BURST)
            .map_err(|e| format!("gratuitous ARP on {}: {e}", self.interface))
    }

    /// Gives the address up (nothing to do if it is not held).
    pub fn release(&self) -> Result<(), String> {
        match Cmd::new("ip").args(["address", "del", &self.cidr(), "dev", &self.interface]).run() {
            Ok(_) => Ok(()),
            Err(_) if !self.held() => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}
