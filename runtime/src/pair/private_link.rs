//! The private link's addresses. The link is a crossover cable between the two nodes and
//! nothing else, so its plan is fixed: node-1 is 10.77.0.1 and node-2 10.77.0.2, and each
//! hands a newcomer an address from its own half of the pool, so that two live nodes never
//! offer the same address.

use std::net::Ipv4Addr;

use anyhow::Context;
use pairos_host::Cmd;

pub const PREFIX: u8 = 24;

/// This node's address on the private link.
pub fn address(node_name: &str) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, if node_name == "node-2" { 2 } else { 1 })
}

/// The DHCP pool this node offers a network-booting peer.
pub fn pool(node_name: &str) -> (Ipv4Addr, Ipv4Addr) {
    if node_name == "node-2" {
        (Ipv4Addr::new(10, 77, 0, 150), Ipv4Addr::new(10, 77, 0, 199))
    } else {
        (Ipv4Addr::new(10, 77, 0, 100), Ipv4Addr::new(10, 77, 0, 149))
    }
}

/// The prefix length of a dotted netmask (255.255.255.0 → 24); None when it is not contiguous.
pub fn prefix_len(netmask: Ipv4Addr) -> Option<u8> {
    let bits = u32::from(netmask);
    let len = bits.leading_ones();
    (bits.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8)
}

/// Brings `interface` up with `ip/prefix`, with the given `ip` program (iproute2's on a
/// running node, busybox's in the initramfs).
pub fn bring_up(ip_cmd: &[&str], interface: &str, ip: Ipv4Addr, prefix: u8) -> anyhow::Result<()> {
    let run = |args: &[&str]| Cmd::new(ip_cmd[0]).args(&ip_cmd[1..]).args(args).run().map(|_| ());
    run(&["link", "set", "dev", interface, "up"]).with_context(|| format!("bringing {interface} up"))?;
    let cidr = format!("{ip}/{prefix}");
    // An address that is already there (a restarted runtime) is fine.
    let _ = run(&["addr", "del", &cidr, "dev", interface]);
    run(&["addr", "add", &cidr, "dev", interface]).with_context(|| format!("giving {interface} {cidr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_nodes_never_share_an_address_or_a_pool() {
        assert_ne!(address("node-1"), address("node-2"));
        let (a, b) = (pool("node-1"), pool("node-2"));
        assert!(u32::from(a.1) < u32::from(b.0));
        assert_eq!(prefix_len(Ipv4Addr::new(255, 255, 255, 0)), Some(24));
        assert_eq!(prefix_len(Ipv4Addr::new(255, 255, 0, 0)), Some(16));
        assert_eq!(prefix_len(Ipv4Addr::new(255, 0, 255, 0)), None);
    }
}
