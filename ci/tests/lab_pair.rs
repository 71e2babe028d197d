//! Lab scenario for one primary: two nodes from one image, each with a BMC (`ipmi_sim`,
//! connected to its VM through a KCS interface) and an i6300esb watchdog, preloaded as a
//! partner would (the same pair key, the pair's settings with the pair's address and both
//! BMCs). A client on the public network probes the pair's address by ARP and ping every
//! 50 ms.
//!
//! 1. The pair forms: node-1 is primary and the address answers from its public port. The
//!    private link is cut (an alarm on both, no move) and healed; node-1's public cable is
//!    pulled (it hands over to node-2) and plugged back; node-2 hands back by a switchover.
//! 2. node-1's VM is killed: node-2 fences it through its BMC (which reports it off) and takes
//!    the address.
//! 3. node-1 comes back: it joins as the secondary.
//! 4. node-2's daemon hangs (SIGSTOP) while its BMC is unreachable, so node-1 cannot fence it
//!    and does not promote (the address would answer from both): the watchdog resets node-2,
//!    which comes back, and the pair forms again with node-1 primary.
//!
//! The client never sees two MACs answer within one 50 ms window.

use std::time::Duration;

use pairos_lab::address_probe::AddressProbe;
use pairos_lab::bmc::{self, Bmc, BmcSpec};
use pairos_lab::{image, DiskBus, Firmware, Lab, LabError, NicModel, Vm, VmSpec};

const BOOT: Duration = Duration::from_secs(400);
const GIB: u64 = 1 << 30;
const PAIR_ADDRESS: &str = "192.168.50.10";
const KEY: &str = "5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e";

fn node_config(node: &str, peer: &str, own: &str) -> String {
    format!(
        r#"{{"pair_id": "pair-lab", "node_name": "{node}", "peer_name": "{peer}", "pair_key": "{KEY}",
            "management": {{"address": "{own}", "prefix": 24, "gateway": "192.168.50.1", "dns": null}},
            "pair": {{"address": "{PAIR_ADDRESS}/24",
                      "management": {{"node-1": "192.168.50.11", "node-2": "192.168.50.12"}},
                      "bmc": {{"node-1": {{"host": "192.168.50.21", "user": "{user}"}},
                               "node-2": {{"host": "192.168.50.22", "user": "{user}"}}}}}},
            "bmc_password": "{password}"}}"#,
        user = bmc::USER,
        password = bmc::PASSWORD,
    )
}

fn node(name: &str, disk: &std::path::Path, bmc_port: u16) -> VmSpec {
    VmSpec::new(name)
        .firmware(Firmware::Ovmf)
        .nic("private", NicModel::VirtioNet)
        .nic("public", NicModel::VirtioNet)
        .boot_disk(disk, DiskBus::Virtio)
        .bmc(bmc_port)
        .watchdog()
}

/// `pairos pair status` on `vm`, once it says `what` (the status is written once a second).
fn status_once(vm: &mut Vm, what: &str) -> Result<String, LabError> {
    let (code, status) = vm.run(
        &format!("for i in $(seq 60); do pairos pair status | grep -q '{what}' && break; sleep 1; done; pairos pair status"),
        Duration::from_secs(90),
    )?;
    assert_eq!(code, 0, "{status}");
    assert!(status.contains(what), "{status}");
    Ok(status)
}

fn power_status(lab: &Lab, host: &str) -> Result<String, LabError> {
    bmc::ipmitool(lab.netns(), host, &["chassis", "power", "status"])
}

#[test]
fn one_primary_with_bmcs_and_watchdogs() -> Result<(), LabError> {
    let out = image::default_image()?;
    let mut lab = Lab::new("pair")?;
    lab.link("private")?;
    lab.link("public")?;
    // The public network's gateway and both BMCs answer on its bridge, and only there (with
    // the default arp_ignore, the lab namespace would answer for them on the private link too,
    // and the nodes would take it for the customer's network).
    lab.netns().cmd("sysctl").args(["-qw", "net.ipv4.conf.all.arp_ignore=1"]).run()?;
    for cidr in ["192.168.50.1/24", "192.168.50.21/24", "192.168.50.22/24"] {
        lab.netns().ip(&["addr", "add", cidr, "dev", "br-public"])?;
    }
    let bmc_spec = |n: u8, port: u16| BmcSpec {
        name: format!("node-{n}-bmc"),
        address: format!("192.168.50.2{n}"),
        vm_port: port,
        power_command: None,
    };
    let _bmc_a = Bmc::start(lab.netns(), &lab.dir().join("bmc-a"), &bmc_spec(1, 9101))?;
    let mut bmc_b = Some(Bmc::start(lab.netns(), &lab.dir().join("bmc-b"), &bmc_spec(2, 9102))?);

    let (a_disk, b_disk) = (lab.dir().join("a.raw"), lab.dir().join("b.raw"));
    image::preloaded_disk(&out, &a_disk, 10 * GIB, &node_config("node-1", "node-2", "192.168.50.11"))?;
    image::preloaded_disk(&out, &b_disk, 10 * GIB, &node_config("node-2", "node-1", "192.168.50.12"))?;
    let client = lab.endpoint("public", "client", "192.168.50.100/24")?;

    // VM 1's public NIC (its second) is 52:54:00:12:01:01; VM 2's 52:54:00:12:02:01.
    let mut a = lab.start(node("node-a", &a_disk, 9101))?;
    let mut b = lab.start(node("node-b", &b_disk, 9102))?;
    let (mac_a, mac_b) = ("52:54:00:12:01:01", "52:54:00:12:02:01");
    for vm in [&mut a, &mut b] {
        vm.wait_for("pair: watchdog /dev/watchdog armed", BOOT)?;
    }
    a.wait_for("pair: primary in epoch", BOOT)?;
    let probe = AddressProbe::start(&client.ns, "eth0", PAIR_ADDRESS)?;
    probe.wait_for(mac_a, Duration::from_secs(60))?;
    assert!(power_status(&lab, "192.168.50.21")?.contains("on"));
    let status = status_once(&mut b, "node-1: primary")?;
    assert!(status.contains("node-2: secondary"), "{status}");

    // 1b. The private link is cut: both raise an alarm and nothing moves; healed, it clears.
    let (a_private, a_public) =
        (a.tap(0).unwrap_or_default().to_owned(), a.tap(1).unwrap_or_default().to_owned());
    lab.netns().ip(&["link", "set", &a_private, "down"])?;
    status_once(&mut a, "ALARM: the peer is silent on the private link")?;
    let status = status_once(&mut b, "ALARM: the peer is silent on the private link")?;
    assert!(status.contains("node-1: primary"), "one link down is not a failover: {status}");
    lab.netns().ip(&["link", "set", &a_private, "up"])?;
    let status = status_once(&mut a, "private link eth0: carrier, peer heard")?;
    assert!(!status.contains("ALARM"), "{status}");

    // 1c. node-1's public cable is pulled: its gateway stops answering, and it hands over to
    //     node-2, which takes the address. Then node-2 hands it back by a switchover.
    lab.netns().ip(&["link", "set", &a_public, "down"])?;
    a.wait_for("pair: secondary: preventive move: the peer is healthier", Duration::from_secs(60))?;
    b.wait_for("pair: primary in epoch", Duration::from_secs(60))?;
    probe.wait_for(mac_b, Duration::from_secs(60))?;
    lab.netns().ip(&["link", "set", &a_public, "up"])?;
    status_once(&mut b, "node-1: secondary, health 1000")?;
    let (code, out) = b.run("pairos pair switchover", Duration::from_secs(60))?;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("handed over to node-1"), "{out}");
    a.wait_for("pair: primary in epoch", Duration::from_secs(60))?;
    probe.wait_for(mac_a, Duration::from_secs(60))?;

    // 2. node-1 dies: node-2 fences it through its BMC and takes over.
    a.kill();
    b.wait_for("pair: fencing node-1 (IPMI admin@192.168.50.21:623)", Duration::from_secs(60))?;
    b.wait_for("pair: primary in epoch", Duration::from_secs(60))?;
    probe.wait_for(mac_b, Duration::from_secs(60))?;
    assert!(power_status(&lab, "192.168.50.21")?.contains("off"));

    // 3. node-1 is powered on again (the lab starts the same machine): it joins as secondary.
    drop(a);
    let mut a: Vm = lab.start(node("node-a", &a_disk, 9101).same_machine_as(1))?;
    a.wait_for("pair: node-1 of pair pair-lab starting", BOOT)?;
    let status = status_once(&mut b, "confirmed by the peer")?;
    assert!(status.contains("node-2: primary") && status.contains("node-1: secondary"), "{status}");

    // 4. node-2's daemon hangs while its BMC is gone: node-1 cannot fence it and does not
    //    promote; node-2's watchdog resets it, and the pair forms again.
    drop(bmc_b.take());
    let (code, out) = b.run("kill -STOP $(cat /run/pairos/pair.pid)", Duration::from_secs(30))?;
    assert_eq!(code, 0, "{out}");
    // The watchdog (10 s) resets node-2: its firmware and initramfs start again.
    b.wait_for("pairos-init: pairos", Duration::from_secs(120))?;
    a.wait_for("pair: primary in epoch", BOOT)?;
    probe.wait_for(mac_a, Duration::from_secs(120))?;

    let doubles = probe.double_windows();
    assert!(doubles.is_empty(), "two MACs answered for the address in one 50 ms window: {doubles:?}");
    Ok(())
}
