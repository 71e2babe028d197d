//! Which of the board's two ports is the private link, worked out from what each port sees,
//! so that swapped cables are tolerated (as Stratus Avance tolerated them) and a node never
//! serves network boot on a customer's network.
//!
//! Before anything is served, both ports are looked at:
//! - a DHCP probe ([`pairos_pxe::probe`]): a port where another DHCP server answers is a
//!   network, not the crossover cable to the peer;
//! - the management gateway, when one is configured: a port where it answers ARP is the
//!   public one (busybox `arping -D`, which needs no address on the port);
//! - the stations heard there meanwhile: a crossover cable has one other end, a network many.
//!
//! The profile's private port is taken when nothing speaks against it; otherwise the other
//! port, when nothing speaks against that one (the cables are swapped); otherwise neither, and
//! no private-link service runs. The decision is pure ([`decide`]); [`look`] gathers what it
//! needs.

use std::net::Ipv4Addr;
use std::time::Duration;

use pairos_host::Cmd;

/// What one port shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// Other DHCP servers that answered a probe there.
    pub dhcp_servers: Vec<Ipv4Addr>,
    /// The management gateway answered ARP there.
    pub gateway: bool,
    /// Other stations heard there.
    pub stations: usize,
}

impl Seen {
    fn objections(&self) -> Vec<String> {
        let mut out: Vec<String> =
            self.dhcp_servers.iter().map(|s| format!("DHCP server {s} answers")).collect();
        if self.gateway {
            out.push("the management gateway answers".into());
        }
        if self.stations > 1 {
            out.push(format!("{} stations are heard (a crossover cable has one other end)", self.stations));
        }
        out
    }
}

/// The ports' roles, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles {
    pub private: String,
    pub public: String,
    pub why: String,
}

/// The roles from what the profile's private and public ports (`profile`) show (`seen`).
pub fn decide(profile: (&str, &str), seen: (&Seen, &Seen)) -> Result<Roles, String> {
    let (private, public) = profile;
    let (on_private, on_public) = (seen.0.objections(), seen.1.objections());
    if on_private.is_empty() {
        return Ok(Roles {
            private: private.into(),
            public: public.into(),
            why: format!("{private} is the profile's private port and looks like the crossover to the peer"),
        });
    }
    if on_public.is_empty() {
        return Ok(Roles {
            private: public.into(),
            public: private.into(),
            why: format!(
                "the cables look swapped: on {private} (the profile's private port) {}; {public} looks like the crossover to the peer",
                on_private.join(", ")
            ),
        });
    }
    Err(format!(
        "neither port looks like the crossover to the peer: on {private} {}; on {public} {}",
        on_private.join(", "),
        on_public.join(", ")
    ))
}

/// Looks at `interface` (brought up, with no address needed): a DHCP probe and, with a
/// `gateway`, an ARP probe for it. A probe that cannot run counts as seeing nothing, and is said.
pub fn look(interface: &str, gateway: Option<Ipv4Addr>, say: &dyn Fn(String)) -> Seen {
    let _ = Cmd::new("ip").args(["link", "set", "dev", interface, "up"]).run();
    let mut seen = Seen::default();
    let port = interface.to_owned();
    let sniff = std::thread::spawn(move || pairos_pxe::probe::stations(&port, Duration::from_secs(3)));
    match pairos_pxe::sockets::interface_mac(interface) {
        Some(mac) => match pairos_pxe::probe::dhcp_servers(interface, mac, Duration::from_secs(3)) {
            Ok(found) => seen.dhcp_servers = found.into_iter().map(|r| r.server).collect(),
            Err(e) => say(format!("{interface}: the DHCP probe did not run: {e}")),
        },
        None => say(format!("{interface}: no MAC address in sysfs")),
    }
    if let Some(gw) = gateway {
        // `arping -D` exits 1 when the address answers.
        let out = Cmd::new("busybox")
            .args(["arping", "-D", "-I", interface, "-c", "2", "-w", "3"])
            .arg(gw.to_string())
            .run();
        seen.gateway = out.is_err();
    }
    match sniff.join() {
        Ok(Ok(stations)) => seen.stations = stations.len(),
        Ok(Err(e)) => say(format!("{interface}: listening for stations did not work: {e}")),
        Err(_) => say(format!("{interface}: listening for stations failed")),
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(dhcp: &[[u8; 4]], gateway: bool) -> Seen {
        Seen { dhcp_servers: dhcp.iter().map(|&a| Ipv4Addr::from(a)).collect(), gateway, stations: 0 }
    }

    #[test]
    fn the_crossover_is_found_whichever_way_the_cables_go() {
        let quiet = seen(&[], false);
        let lan = seen(&[[192, 168, 1, 1]], true);
        let r = decide(("eth0", "eth1"), (&quiet, &lan)).expect("as cabled");
        assert_eq!((r.private.as_str(), r.public.as_str()), ("eth0", "eth1"));
        let r = decide(("eth0", "eth1"), (&lan, &quiet)).expect("swapped");
        assert_eq!((r.private.as_str(), r.public.as_str()), ("eth1", "eth0"));
        assert!(r.why.contains("swapped") && r.why.contains("DHCP server 192.168.1.1 answers"), "{}", r.why);
        let gw_only = seen(&[], true);
        let r = decide(("eth0", "eth1"), (&gw_only, &quiet)).expect("a gateway alone is enough");
        assert_eq!(r.private, "eth1");
        let e = decide(("eth0", "eth1"), (&lan, &gw_only)).expect_err("both are networks");
        assert!(e.contains("neither port"), "{e}");
        // Many stations and nothing else: a network all the same. One station: the peer.
        let crowd = Seen { stations: 5, ..quiet.clone() };
        let r = decide(("eth0", "eth1"), (&crowd, &Seen { stations: 1, ..quiet.clone() })).expect("swapped");
        assert!(r.private == "eth1" && r.why.contains("5 stations are heard"), "{}", r.why);
        // Two quiet ports (a new pair, the peer not cabled yet): the profile decides.
        assert_eq!(decide(("eth0", "eth1"), (&quiet, &quiet)).expect("quiet").private, "eth0");
    }
}
