//! Watches this node's ports: carrier on both, the gateway answering ARP on the public one,
//! and who answers for the pair's address (what a secondary reports to its primary as the
//! takeover's confirmation). Runs on a thread of its own, since ARP probes wait.

use std::net::Ipv4Addr;
use std::sync::mpsc::Sender;
use std::time::Duration;

use crate::pair::arp::{ArpPort, Mac};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub private_carrier: bool,
    pub public_carrier: bool,
    /// `None` when no gateway is configured.
    pub gateway_answers: Option<bool>,
    /// Who else answers for the pair's address.
    pub holder: Option<Mac>,
}

impl Ports {
    /// The public network is usable: carrier, and the gateway answers (when there is one).
    pub fn public_ok(&self) -> bool {
        self.public_carrier && self.gateway_answers != Some(false)
    }

    /// This node's health score from its ports: 1000 when the public network is usable, 500
    /// when it is lost, which moves the role. The private link is the pair's own business: its
    /// loss is an alarm, not a reason to move the clients' service.
    pub fn health(&self) -> u32 {
        if self.public_ok() {
            1_000
        } else {
            500
        }
    }
}

pub fn carrier(interface: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{interface}/carrier")).is_ok_and(|c| c.trim() == "1")
}

#[derive(Debug, Clone)]
pub struct Watch {
    pub private: String,
    pub public: String,
    pub own_address: Ipv4Addr,
    pub gateway: Option<Ipv4Addr>,
    pub pair_address: Option<Ipv4Addr>,
    pub every: Duration,
}

/// How many gateway probes in a row must go unanswered before the public network counts as
/// lost (one lost ARP reply is not an outage).
const GATEWAY_MISSES: u32 = 3;

/// Watches the ports every `w.every` and sends each finding, wrapped by `wrap`, to `to`.
pub fn spawn<W: Send + 'static>(w: Watch, to: Sender<W>, wrap: fn(Ports) -> W) {
    std::thread::Builder::new()
        .name("pair-ports".into())
        .spawn(move || {
            let mut misses = 0;
            loop {
                let public_carrier = carrier(&w.public);
                let mut port = if public_carrier { ArpPort::open(&w.public).ok() } else { None };
                let probe = |port: &mut Option<ArpPort>, ip: Ipv4Addr| {
                    port.as_mut()
                        .and_then(|p| p.who_has(ip, w.own_address, 1, Duration::from_millis(150)).ok())
                        .unwrap_or_default()
                };
                let gateway_answers = w.gateway.map(|gw| {
                    if probe(&mut port, gw).is_empty() {
                        misses += 1;
                    } else {
                        misses = 0;
                    }
                    misses < GATEWAY_MISSES
                });
                let holder = w.pair_address.and_then(|a| probe(&mut port, a).first().copied());
                let ports =
                    Ports { private_carrier: carrier(&w.private), public_carrier, gateway_answers, holder };
                if to.send(wrap(ports)).is_err() {
                    return;
                }
                std::thread::sleep(w.every);
            }
        })
        .expect("a thread starts");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_public_network_counts_in_health() {
        let well =
            Ports { private_carrier: true, public_carrier: true, gateway_answers: Some(true), holder: None };
        assert_eq!(well.health(), 1_000);
        let no_gateway = Ports { gateway_answers: Some(false), ..well };
        let no_private = Ports { private_carrier: false, ..well };
        assert_eq!(no_private.health(), 1_000, "the private link is an alarm, not health");
        assert!(no_gateway.health() < no_private.health());
        assert!(!Ports { public_carrier: false, ..well }.public_ok());
        assert!(Ports { gateway_answers: None, ..well }.public_ok(), "no gateway configured");
    }
}
