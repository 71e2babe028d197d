//! Lab scenarios for self-imaging. Node A boots the built disk image; it serves network boot
//! and its own image on the private link. A node whose disk holds foreign data PXE-boots from
//! A, says why it will not image itself, and its disk is left as it was; so does a machine
//! that is not a certified board. A blank node (network
//! first, then its disk) PXE-boots from A, images itself with no input, reboots, is told by A
//! to boot its disk, and comes up as node-2 of A's pair on the same image version. A's log and
//! `pairos status` show both. Each newcomer enrols first; B learns the pair key that way, and
//! the two then hear each other's authenticated heartbeats. A stranger on the private link
//! of the complete pair can neither enrol nor fake a report nor read the node configuration.
//! When B's disk is then wiped, B's first network boot is told to boot its disk, and the next
//! one, a minute later, is offered recovery: B heals and rejoins.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use pairos_lab::{blank_disk, disk_from_image, image, DiskBus, Firmware, Lab, LabError, NicModel, VmSpec};

/// Firmware to `pairos run: ready`, or a PXE boot to the recovery agent, under TCG.
const BOOT: Duration = Duration::from_secs(400);
/// The image written over the private link, under TCG on both ends.
const WRITE: Duration = Duration::from_secs(900);
const GIB: u64 = 1 << 30;

fn sha256(path: &Path) -> String {
    pairos_image::digest::sha256_file(path).expect("hash")
}

/// A node booting from the network first, then from `disk`; its private port is `mac`.
fn newcomer(name: &str, disk: &Path) -> VmSpec {
    VmSpec::new(name)
        .firmware(Firmware::Ovmf)
        .boot_nic("private", NicModel::VirtioNet)
        .nic("public", NicModel::VirtioNet)
        .boot_disk(disk, DiskBus::Virtio)
}

#[test]
fn a_blank_node_images_itself_from_its_peer_and_a_foreign_disk_is_left_alone() -> Result<(), LabError> {
    let out = image::default_image()?;
    let mut lab = Lab::new("recover")?;

    let a_disk = lab.dir().join("a.raw");
    disk_from_image(&out.join("disk.raw"), &a_disk, 10 * GIB)?;
    let mut a = lab.start(
        VmSpec::new("node-a")
            .firmware(Firmware::Ovmf)
            .nic("private", NicModel::VirtioNet)
            .nic("public", NicModel::VirtioNet)
            .boot_disk(&a_disk, DiskBus::Virtio),
    )?;
    a.wait_for("pairos run: first run: node-1 of a new pair", BOOT)?;
    a.wait_for("pairos run: image service on 10.77.0.1:7467", BOOT)?;
    a.wait_for("pairos run: ready", BOOT)?;

    // A node whose disk holds someone's file system: it is not wiped, and it says why.
    let foreign = lab.dir().join("foreign.raw");
    blank_disk(&foreign, 9 * GIB)?;
    pairos_host::Cmd::new("mkfs.ext4").args(["-q", "-F", "-L", "customer-data"]).arg(&foreign).run()?;
    let before = sha256(&foreign);
    let mut f = lab.start(newcomer("foreign", &foreign))?;
    f.wait_for("pairos-recover: enrolled with the peer 10.77.0.1", BOOT)?;
    let why = f.wait_for("holds foreign data; refusing to wipe it", BOOT)?;
    f.wait_for("customer-data", Duration::from_secs(30))?;
    f.wait_for("nothing was written", Duration::from_secs(30))?;
    f.wait_for("pairos-init: stopped; opening a console shell", Duration::from_secs(30))?;
    a.wait_for("Refused", Duration::from_secs(60))?;
    f.kill();
    assert_eq!(sha256(&foreign), before, "the foreign disk is unchanged: {why}");

    // A machine short of the board profile (512 MiB of memory): it says why, on its console and
    // to A, and its disk is not touched.
    let small = lab.dir().join("small.raw");
    blank_disk(&small, 9 * GIB)?;
    let mut u = lab.start(newcomer("small", &small).memory_mib(512))?;
    u.wait_for("pairos-recover: enrolled with the peer 10.77.0.1", BOOT)?;
    u.wait_for("this machine is not a certified board; it will not be imaged", BOOT)?;
    u.wait_for("memory: ", Duration::from_secs(30))?;
    u.wait_for("pairos-init: stopped; opening a console shell", Duration::from_secs(30))?;
    a.wait_for("Uncertified", Duration::from_secs(60))?;
    u.kill();
    assert_eq!(std::fs::metadata(&small).map(|m| m.blocks()).unwrap_or(1), 0, "nothing was written");

    // A blank node images itself from A and reboots into the same image.
    let b_disk = lab.dir().join("b.raw");
    blank_disk(&b_disk, 10 * GIB)?;
    let mut b = lab.start(newcomer("node-b", &b_disk))?;
    b.wait_for("pairos-init: recovery mode (pairos.mode=recover)", BOOT)?;
    b.wait_for("pairos-recover: enrolled with the peer 10.77.0.1", BOOT)?;
    b.wait_for("board qemu-q35, certified", BOOT)?;
    b.wait_for("\"class\":\"blank\"", BOOT)?;
    b.wait_for("pairos-recover: image written", WRITE)?;
    b.wait_for("pairos-recover: identity written: node-2", BOOT)?;
    // The reboot goes through the network first again: A now tells it to boot its disk.
    b.wait_for("pairos run: node-2 of pair", BOOT)?;
    b.wait_for("pairos run: ready", BOOT)?;

    let a_log = a.console().text();
    let b_log = b.console().text();
    let pair_of = |log: &str, marker: &str| {
        log.lines()
            .find(|l| l.contains(marker))
            .and_then(|l| l.split("pair ").nth(1))
            .map(|p| p.trim().to_owned())
    };
    let a_pair = pair_of(&a_log, "node-1 of a new pair").expect("A names its pair");
    assert_eq!(Some(a_pair), pair_of(&b_log, "pairos run: node-2 of pair"), "B joined A's pair");
    let version =
        |log: &str| log.lines().find_map(|l| l.find("pairos run: pairos ").map(|i| l[i..].trim().to_owned()));
    assert!(version(&a_log).is_some(), "{a_log}");
    assert_eq!(version(&a_log), version(&b_log), "B runs the image version A runs");
    assert!(a_log.contains("Writing ("), "A's log shows B's progress:\n{a_log}");
    assert!(a_log.contains("Finished"), "A's log shows B's completion:\n{a_log}");
    assert!(a_log.contains("localboot-uefi.ipxe"), "the installed B was told to boot its disk:\n{a_log}");

    // B learnt the pair key by enrolment: each hears the other's authenticated heartbeats.
    a.wait_for("pairos run: peer live (52:54:00:12:04:00)", BOOT)?;
    b.wait_for("pairos run: peer live", BOOT)?;

    // A third machine network-boots on the private link while the pair has both its nodes: A
    // does not answer it, and says so in its status.
    let third_disk = lab.dir().join("third.raw");
    blank_disk(&third_disk, 9 * GIB)?;
    let mut third = lab.start(newcomer("third", &third_disk))?;
    let ignored = "52:54:00:12:05:00: Ignore: the pair has both its nodes";
    let mut status = String::new();
    for _ in 0..40 {
        status = a.run("pairos status", Duration::from_secs(60))?.1;
        if status.contains(ignored) {
            break;
        }
        std::thread::sleep(Duration::from_secs(3));
    }
    assert!(status.contains(ignored), "A's status shows the third machine ignored:\n{status}");
    third.kill();
    assert!(!third.console().text().contains("pairos-init"), "the third machine got no recovery environment");

    // A stranger on the private link, with an address from A's own pool, while the pair has both
    // its nodes: it cannot enrol, fake B's finished report, or read the node configuration, and
    // nothing A keeps changes.
    let state = "sha256sum /state/pairos/peers.json /run/pairos/status.json";
    // The two digest lines of the answer (the console also echoes and logs around them).
    let digests = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.ends_with("/peers.json") || l.ends_with("/status.json"))
            .map(str::to_owned)
            .collect()
    };
    let (_, before) = a.run(state, Duration::from_secs(60))?;
    let before = digests(&before);
    assert_eq!(before.len(), 2, "both files exist: {before:?}");
    let stranger = lab.endpoint("private", "stranger", "10.77.0.120/24")?;
    let curl = |args: &[&str]| -> Result<String, LabError> {
        let out =
            stranger.ns.cmd("curl").args(["-s", "-o", "/dev/null", "-w", "%{http_code}"]).args(args).run()?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    };
    let json = ["-H", "Content-Type: application/json", "-X", "POST", "-d"];
    let enrol =
        curl(&[&json[..], &[r#"{"mac":"52:54:00:66:66:66"}"#, "http://10.77.0.1:7467/enrol"]].concat())?;
    assert_eq!(enrol, "403", "a stranger enrols while the pair is complete");
    let finished = r#"{"mac":"52:54:00:12:04:00","step":"finished","message":"faked"}"#;
    let fake = curl(&[&json[..], &[finished, "http://10.77.0.1:7467/node/report"]].concat())?;
    assert_eq!(fake, "401", "a faked finished report");
    let forged = curl(
        &[
            &json[..],
            &[
                finished,
                "-H",
                &format!("Authorization: Bearer {}", "0".repeat(64)),
                "http://10.77.0.1:7467/node/report",
            ],
        ]
        .concat(),
    )?;
    assert_eq!(forged, "401", "a report with a made-up token");
    let config = curl(&["http://10.77.0.1:7467/node/config?mac=52:54:00:12:04:00"])?;
    assert_eq!(config, "401", "the node configuration without a token");
    // The image itself stays open: every byte of it is checked against the signed manifest.
    assert_eq!(curl(&["http://10.77.0.1:7467/image/manifest.sig"])?, "200");
    let (_, after) = a.run(state, Duration::from_secs(60))?;
    assert_eq!(before, digests(&after), "A's peers.json and status are unchanged");
    assert!(a
        .console()
        .text()
        .contains("enrolment: 52:54:00:66:66:66 (10.77.0.120) refused: the pair has both its nodes"));

    let (code, status) = a.run("pairos status", Duration::from_secs(60))?;
    assert_eq!(code, 0, "{status}");
    assert!(status.contains("node-1 of pair"), "{status}");
    assert!(status.contains("Finished, 100%"), "{status}");
    assert!(status.contains("installed peers: 52:54:00:12:04:00"), "{status}");
    assert!(status.contains("peer: live (52:54:00:12:04:00)"), "{status}");
    let (code, json) = a.run("pairos status --json", Duration::from_secs(60))?;
    assert_eq!(code, 0, "{json}");
    assert!(json.contains("\"step\": \"finished\""), "{json}");

    // B's disk dies (wiped). Powered on, B is first told to boot its disk: A cannot tell a dead
    // disk from a power cut. The disk does not boot. Powered on again within minutes, without
    // having joined, B is offered recovery, images itself and rejoins as node-2.
    b.kill();
    a.wait_for("pairos run: peer silent", BOOT)?;
    blank_disk(&b_disk, 10 * GIB)?;
    let mut b = lab.start(newcomer("node-b-wiped", &b_disk).same_machine_as(4))?;
    a.wait_for("52:54:00:12:04:00: LocalBoot (a known peer, not live: told to boot its disk)", BOOT)?;
    // Every boot option fails, and OVMF falls back to its shell.
    b.wait_for("UEFI Interactive Shell", BOOT)?;
    b.kill();
    // DHCP asks less than a minute apart count as one network boot; the next power-on must be a
    // new one. This waits for time to pass, not for anything to be ready.
    std::thread::sleep(Duration::from_secs(65));
    let mut b = lab.start(newcomer("node-b-repaired", &b_disk).same_machine_as(4))?;
    a.wait_for("52:54:00:12:04:00: Recover (a known peer that network-booted again without joining", BOOT)?;
    b.wait_for("pairos-recover: enrolled with the peer 10.77.0.1", BOOT)?;
    b.wait_for("pairos-recover: identity written: node-2", WRITE)?;
    b.wait_for("pairos run: node-2 of pair", BOOT)?;
    a.wait_for("pairos run: peer live (52:54:00:12:04:00)", BOOT)?;
    Ok(())
}
