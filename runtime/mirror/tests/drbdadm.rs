//! The volumes' DRBD configuration, read by the real `drbdadm` (drbd-utils' 8.4 tools, as the
//! node runs them): it parses, and a dry run of `up` on node-1 does what the pair needs
//! (internal metadata on the logical volume, resource-and-stonith fencing, protocol C between
//! the two private-link addresses at the volume's port).

use std::net::Ipv4Addr;
use std::process::Command;

use pairos_mirror::document::PairConfig;
use pairos_mirror::drbd_conf::{render, Sites};

const DRBDADM: &str = "/lib/drbd/drbdadm-84";

/// Runs drbdadm-84 as node `node` with private-link address `address` would (hostname and
/// address in UTS and network namespaces of their own).
fn drbdadm(node: &str, address: &str, args: &[&str]) -> (bool, String) {
    let script = format!(
        "hostname {node} && ip link set lo up && ip address add {address}/32 dev lo && exec {DRBDADM} \"$@\""
    );
    let out = Command::new("unshare")
        .args(["--uts", "--net", "sh", "-c", &script, "sh"])
        .args(args)
        .output()
        .expect("unshare runs (util-linux; as root)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn drbdadm_reads_the_configuration_and_brings_a_volume_up_as_the_pair_needs() {
    assert!(std::path::Path::new(DRBDADM).exists(), "{DRBDADM} is missing: ci/setup installs drbd-utils");
    let mut c = PairConfig::default();
    c.add("data".parse().expect("name"), 256 << 20, "node-1").expect("added");
    c.add("raw".parse().expect("name"), 256 << 20, "node-1").expect("added");
    let sites = Sites { node1: Ipv4Addr::new(10, 77, 0, 1), node2: Ipv4Addr::new(10, 77, 0, 2) };
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("drbd.conf");
    std::fs::write(&conf, render(&c, sites, &"ab".repeat(32))).expect("written");
    let conf = conf.to_str().expect("utf-8");

    let (ok, dump) = drbdadm("node-1", "10.77.0.1", &["-c", conf, "dump", "all"]);
    assert!(ok, "{dump}");
    assert!(dump.contains("resource raw"), "{dump}");

    let (ok, up) = drbdadm("node-1", "10.77.0.1", &["-c", conf, "-d", "up", "raw"]);
    assert!(ok, "{up}");
    assert!(up.contains("new-minor raw 1 0"), "{up}");
    assert!(up.contains("attach 1 /dev/pairos/raw /dev/pairos/raw internal"), "{up}");
    assert!(up.contains("--fencing=resource-and-stonith"), "{up}");
    assert!(up.contains("connect raw ipv4:10.77.0.1:7789 ipv4:10.77.0.2:7789"), "{up}");
    assert!(up.contains("--protocol=C"), "{up}");
    assert!(up.contains("--after-sb-0pri=disconnect"), "{up}");
    // The kernel refuses a secret of 64 characters (seen in the lab): it is cut to 63.
    let secret =
        up.split("--shared-secret=").nth(1).and_then(|s| s.split_whitespace().next()).expect("a secret");
    assert_eq!(secret.len(), 63, "{up}");

    // On node-2 the same resource, the other way round.
    let (ok, up) = drbdadm("node-2", "10.77.0.2", &["-c", conf, "-d", "up", "raw"]);
    assert!(ok, "{up}");
    assert!(up.contains("connect raw ipv4:10.77.0.2:7789 ipv4:10.77.0.1:7789"), "{up}");

    // A split brain's victim reconnects as the sync target (8.4's syntax, as the manager runs it).
    let (ok, connect) =
        drbdadm("node-2", "10.77.0.2", &["-c", conf, "-d", "connect", "--discard-my-data", "raw"]);
    assert!(ok, "{connect}");
    assert!(connect.contains("connect raw ipv4:10.77.0.2:7789 ipv4:10.77.0.1:7789"), "{connect}");
    assert!(connect.contains("--discard-my-data"), "{connect}");

    // A grown volume is resized as DRBD 8.4 does it.
    let (ok, resize) = drbdadm("node-1", "10.77.0.1", &["-c", conf, "-d", "resize", "raw"]);
    assert!(ok, "{resize}");
    assert!(resize.contains("resize 1"), "{resize}");

    // A host the configuration does not name is refused.
    let (ok, err) = drbdadm("stranger", "10.77.0.9", &["-c", conf, "-d", "up", "raw"]);
    assert!(!ok, "{err}");
}
