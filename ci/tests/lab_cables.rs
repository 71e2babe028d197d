//! Lab scenario for the private link's port: node A is cabled the wrong way round (its
//! profile's private port on the customer's network, where the management gateway answers,
//! and its public port on the crossover to B). A works out which port is which, says so, puts
//! its management address on the customer's side, never answers a customer's DHCP client, and
//! still heals a blank B cabled to its (swapped) private port (B boots by UEFI HTTP boot, the
//! recovery UKI straight from A), after refusing, untouched, a
//! node whose disk belongs to another pair. A node on an uncertified board runs no
//! private-link service at all.

use std::time::Duration;

use pairos_lab::pxe::udhcpc;
use pairos_lab::{blank_disk, image, DiskBus, Firmware, Lab, LabError, NicModel, VmSpec};

/// Firmware to `pairos run: ready`, or a PXE boot to the recovery agent, under TCG.
const BOOT: Duration = Duration::from_secs(400);
/// The image written over the private link, under TCG on both ends.
const WRITE: Duration = Duration::from_secs(900);
const GIB: u64 = 1 << 30;

#[test]
fn swapped_cables_are_worked_out_and_the_pair_still_heals() -> Result<(), LabError> {
    let out = image::default_image()?;
    let mut lab = Lab::new("cables")?;
    let a_disk = lab.dir().join("a.raw");
    let node_1 = r#"{"pair_id": "pair-cables", "node_name": "node-1", "peer_name": "node-2",
        "management": {"address": "192.168.77.10", "prefix": 24, "gateway": "192.168.77.1", "dns": null}}"#;
    image::preloaded_disk(&out, &a_disk, 10 * GIB, node_1)?;
    // The customer's network: its gateway, which is also its DHCP server, and a host asking for
    // an address.
    let gateway = lab.endpoint("public", "gw", "192.168.77.1/24")?;
    let _dhcp = gateway
        .ns
        .cmd("dnsmasq")
        .args(["--no-daemon", "--port=0", "--interface=eth0", "--bind-interfaces"])
        .args(["--dhcp-range=192.168.77.100,192.168.77.150,1h", "--leasefile-ro"])
        .arg(format!("--pid-file={}", lab.dir().join("dnsmasq.pid").display()))
        .spawn(Some(&lab.dir().join("dnsmasq.log")))?;
    let customer = lab.client_endpoint("public", "customer")?;

    // A's first NIC is the profile's private port; here it is cabled to the customer's network.
    let mut a = lab.start(
        VmSpec::new("node-a")
            .firmware(Firmware::Ovmf)
            .nic("public", NicModel::VirtioNet)
            .nic("private", NicModel::VirtioNet)
            .boot_disk(&a_disk, DiskBus::Virtio),
    )?;
    let roles = a.wait_for("pairos run: private link on ", BOOT)?;
    assert!(
        roles.contains("the cables look swapped") && roles.contains("the management gateway answers"),
        "{roles}"
    );
    a.wait_for("pairos run: management address 192.168.77.10/24", BOOT)?;
    a.wait_for("pairos run: ready", BOOT)?;
    let ping = gateway.ns.cmd("ping").args(["-c", "2", "-W", "3", "192.168.77.10"]).run_text();
    assert!(ping.is_ok(), "the management address is on the customer's side: {ping:?}");

    // The customer's DHCP client gets its lease from the customer's server, never from A.
    let (leased, said) = udhcpc(lab.dir(), &customer, &["-T", "2"]);
    assert!(leased && said.contains("serverid=192.168.77.1"), "{said}");

    // A node of another pair, network first: A offers it recovery (the pair misses a node), and
    // its disk is refused with its pair named, not one byte changed.
    let other_disk = lab.dir().join("other.raw");
    let other = r#"{"pair_id": "pair-other", "node_name": "node-2", "peer_name": "node-1"}"#;
    image::preloaded_disk(&out, &other_disk, 10 * GIB, other)?;
    let before = pairos_image::digest::sha256_file(&other_disk).expect("hash");
    let mut o = lab.start(
        VmSpec::new("other-pair")
            .firmware(Firmware::Ovmf)
            .boot_nic("private", NicModel::VirtioNet)
            .nic("public", NicModel::VirtioNet)
            .boot_disk(&other_disk, DiskBus::Virtio),
    )?;
    o.wait_for("a pairos disk of another pair: node-2 of pair pair-other", BOOT)?;
    o.wait_for("nothing was written", Duration::from_secs(60))?;
    a.wait_for("Refused", Duration::from_secs(60))?;
    o.kill();
    assert_eq!(
        pairos_image::digest::sha256_file(&other_disk).expect("hash"),
        before,
        "the other pair's disk is unchanged"
    );

    // A blank node on A's real private port heals. Its firmware does UEFI HTTP boot only (no
    // PXE, no iPXE): it loads the recovery UKI straight from A, and the agent finds its link
    // by DHCP.
    let b_disk = lab.dir().join("b.raw");
    blank_disk(&b_disk, 10 * GIB)?;
    let mut b = lab.start(
        VmSpec::new("node-b")
            .firmware(Firmware::Ovmf)
            .http_boot()
            .boot_nic("private", NicModel::VirtioNet)
            .nic("public", NicModel::VirtioNet)
            .boot_disk(&b_disk, DiskBus::Virtio),
    )?;
    b.wait_for("asking DHCP on each port", BOOT)?;
    b.wait_for("pairos-recover: enrolled with the peer 10.77.0.1, pair pair-cables", BOOT)?;
    b.wait_for("pairos-recover: identity written: node-2 of pair pair-cables", WRITE)?;
    b.wait_for("pairos run: node-2 of pair pair-cables", BOOT)?;
    a.wait_for("pairos run: peer live", BOOT)?;
    b.kill();
    a.kill();

    // An uncertified machine (short of the profile's memory) booted from the same image serves
    // nothing on the private link, and says why.
    let u_disk = lab.dir().join("u.raw");
    pairos_lab::disk_from_image(&out.join("disk.raw"), &u_disk, 10 * GIB)?;
    let mut u = lab.start(
        VmSpec::new("uncertified")
            .memory_mib(768)
            .firmware(Firmware::Ovmf)
            .nic("private2", NicModel::VirtioNet)
            .nic("public2", NicModel::VirtioNet)
            .boot_disk(&u_disk, DiskBus::Virtio),
    )?;
    u.wait_for("pairos run: board not certified", BOOT)?;
    u.wait_for("no private-link services run on it", BOOT)?;
    u.wait_for("pairos run: ready", BOOT)?;
    let (code, status) = u.run("pairos status", Duration::from_secs(60))?;
    assert_eq!(code, 0, "{status}");
    assert!(status.contains("services: none"), "{status}");
    let lonely = lab.client_endpoint("private2", "newcomer")?;
    let (leased, said) = udhcpc(lab.dir(), &lonely, &["-T", "2"]);
    assert!(!leased, "an uncertified node answered DHCP: {said}");
    Ok(())
}
