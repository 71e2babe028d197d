//! The DRBD configuration of the pair's volumes (DRBD 8.4, as the node's kernel has it): one
//! resource per volume on its logical volume, protocol C, internal metadata, replication on
//! the private link (port 7788 + minor), authenticated with a secret derived from the pair key.
//!
//! Choices, each for a reason:
//! - `after-sb-*pri disconnect`: no automatic split-brain policy ever discards a node's writes;
//!   the `split-brain` handler tells the daemon, which decides, keeping a snapshot first.
//! - `before-resync-target` asks the pair daemon: the node that acts never becomes a resync's
//!   target, whatever the generation identifiers say (the failure behind LINBIT/drbd#143).
//! - `fencing resource-and-stonith` with `pairos volume fence-peer` as the handler: a primary
//!   that loses its peer freezes I/O until the pair daemon says the peer is outdated or off.
//! - The resync controller's fill target and buffers are sized for a private link (a full
//!   sync is not held at DRBD's conservative defaults), and `c-min-rate` is low so that
//!   foreground writes keep priority over the resync.
//! - Timeouts with room for a loaded machine (the lab's TCG nodes): 9 s, pings every 10 s
//!   answered within 2 s.

use std::fmt::Write;
use std::net::Ipv4Addr;

use super::document::PairConfig;

/// The volume group on the data partition.
pub const VG: &str = "pairos";
/// The first volume's port; each volume's is this plus its minor.
pub const BASE_PORT: u16 = 7788;
/// The handler the kernel's fence-peer call runs (through drbdadm).
pub const FENCE_PEER: &str = "/usr/bin/pairos volume fence-peer";
/// The handler the kernel calls on a split brain it does not resolve (all of them, here): it
/// tells the volume manager, which resolves it.
pub const SPLIT_BRAIN: &str = "/usr/bin/pairos volume split-brain";
/// The handler the kernel calls on the node about to become a resync's target: it asks the
/// pair daemon, which refuses while this node acts (its side holds the acknowledged writes);
/// a refusal drops the connection instead of overwriting them.
pub const BEFORE_RESYNC_TARGET: &str = "/usr/bin/pairos volume before-resync-target";

/// Where the pair's nodes are on the private link.
#[derive(Debug, Clone, Copy)]
pub struct Sites {
    pub node1: Ipv4Addr,
    pub node2: Ipv4Addr,
}

/// The logical volume under a volume.
pub fn backing_device(name: &str) -> String {
    format!("/dev/{VG}/{name}")
}

/// DRBD takes a shared secret of at most 63 characters (its limit is 64 bytes with the NUL).
pub const MAX_SECRET: usize = 63;

/// The whole configuration: no usage reports (nor their prompt), the common options and one
/// resource per volume. `shared_secret` is cut to [`MAX_SECRET`] characters.
pub fn render(config: &PairConfig, sites: Sites, shared_secret: &str) -> String {
    let shared_secret: String = shared_secret.chars().take(MAX_SECRET).collect();
    let mut out = format!(
        "# Written by pairos from the pair's configuration, version {}. Not to be edited: it is\n\
         # written again whenever the volumes change.\n\
         global {{\n\
         \x20 usage-count no;\n\
         }}\n\
         common {{\n\
         \x20 net {{\n\
         \x20   protocol C;\n\
         \x20   cram-hmac-alg sha256;\n\
         \x20   shared-secret \"{shared_secret}\";\n\
         \x20   after-sb-0pri disconnect;\n\
         \x20   after-sb-1pri disconnect;\n\
         \x20   after-sb-2pri disconnect;\n\
         \x20   timeout 90;\n\
         \x20   ping-int 10;\n\
         \x20   ping-timeout 20;\n\
         \x20   connect-int 5;\n\
         \x20   max-buffers 8000;\n\
         \x20 }}\n\
         \x20 disk {{\n\
         \x20   fencing resource-and-stonith;\n\
         \x20   c-plan-ahead 20;\n\
         \x20   c-fill-target 1M;\n\
         \x20   c-max-rate 100M;\n\
         \x20   c-min-rate 4M;\n\
         \x20 }}\n\
         \x20 handlers {{\n\
         \x20   fence-peer \"{FENCE_PEER}\";\n\
         \x20   split-brain \"{SPLIT_BRAIN}\";\n\
         \x20   before-resync-target \"{BEFORE_RESYNC_TARGET}\";\n\
         \x20 }}\n\
         }}\n",
        config.version
    );
    for v in &config.volumes {
        let port = BASE_PORT + v.minor as u16;
        let _ = writeln!(out, "resource {} {{", v.name);
        for (node, address) in [("node-1", sites.node1), ("node-2", sites.node2)] {
            let _ = write!(
                out,
                "  on {node} {{\n    device /dev/drbd{minor} minor {minor};\n    disk {disk};\n    \
                 address ipv4 {address}:{port};\n    meta-disk internal;\n  }}\n",
                minor = v.minor,
                disk = backing_device(v.name.as_str()),
            );
        }
        out += "}\n";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_volume_is_a_resource_on_both_nodes_at_its_own_port() {
        let mut c = PairConfig::default();
        c.add("data".parse().expect("name"), 256 << 20, "node-1").expect("added");
        c.add("raw".parse().expect("name"), 256 << 20, "node-1").expect("added");
        let sites = Sites { node1: Ipv4Addr::new(10, 77, 0, 1), node2: Ipv4Addr::new(10, 77, 0, 2) };
        let text = render(&c, sites, "s3cr3t");
        assert!(text.contains("resource raw {"), "{text}");
        assert!(text.contains("address ipv4 10.77.0.2:7789;"), "{text}");
        assert!(text.contains("device /dev/drbd1 minor 1;"), "{text}");
        assert!(text.contains("disk /dev/pairos/data;"), "{text}");
        assert!(text.contains("shared-secret \"s3cr3t\";"), "{text}");
        assert!(text.contains("usage-count no;"), "{text}");
        let long = render(&c, sites, &"ab".repeat(32));
        assert!(long.contains(&format!("shared-secret \"{}\";", &"ab".repeat(32)[..MAX_SECRET])), "{long}");
        assert!(!text.contains("discard"), "no policy discards a node's writes: {text}");
        assert!(text.contains("split-brain \"/usr/bin/pairos volume split-brain\";"), "{text}");
        assert!(
            text.contains("before-resync-target \"/usr/bin/pairos volume before-resync-target\";"),
            "{text}"
        );
    }
}
