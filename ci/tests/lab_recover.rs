//! Lab scenarios for self-imaging. Node A boots the built disk image; it serves network boot
//! and its own image on the private link. A node whose disk holds foreign data PXE-boots from
//! A, says why it will not image itself, and its disk is left as it was; so does a machine
//! that is not a certified board. A blank node, whose OVMF boots the network first with every
//! network option on as it ships (PXE and HTTP boot, IPv4 and IPv6), PXE-boots from A, images
//! itself once with no input, makes its disk the firmware's next boot and comes up from it as
//! node-2 of A's pair on the same image version. A's log and `pairos status` show both. Each
//! newcomer enrols first; B learns the pair key that way, and the two then hear each other's
//! authenticated heartbeats. A stranger on the private link of the complete pair can neither
//! enrol nor fake a report nor read the node configuration.
//!
//! Then the boot order's trials, on the same pair: B's power is cut and it comes back through
//! every network option, minutes of them, to its own disk, never offered recovery. B's disk is
//! wiped: its first network boot is told to boot its disk, OVMF stops in its shell, and when B
//! is powered on again its firmware comes round without its disk having started: offered
//! recovery at once, imaged once, rejoined. Wiped again right after: imaged twice within the
//! hour, B is held with an alarm until `pairos pair approve`, then heals.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use pairos_lab::{blank_disk, disk_from_image, image, DiskBus, Firmware, Lab, LabError, NicModel, VmSpec};

/// Firmware to `pairos run: ready`, or a PXE boot to the recovery agent, under TCG.
const BOOT: Duration = Duration::from_secs(400);
/// The image written over the private link, under TCG on both ends.
const WRITE: Duration = Duration::from_secs(900);
const GIB: u64 = 1 << 30;

fn sha256(path: &Path) -> String {
    pairos_image::digest::sha256_file(path).expect("hash")
}

/// A node booting from the network first, with every network option OVMF ships on, then from
/// `disk`.
fn newcomer(name: &str, disk: &Path) -> VmSpec {
    VmSpec::new(name)
        .firmware(Firmware::Ovmf)
        .every_network_option()
        .boot_nic("private", NicModel::VirtioNet)
        .nic("public", NicModel::VirtioNet)
        .boot_disk(disk, DiskBus::Virtio)
}

/// A node whose firmware tries every network option before its disk: under TCG, minutes.
const EVERY_OPTION: Duration = Duration::from_secs(900);
/// B's private-link port.
const B_MAC: &str = "52:54:00:12:04:00";

/// How many recovery environments the node with `mac` booted, as A's `log` shows them (each
/// reports its start).
fn imagings(log: &str, mac: &str) -> usize {
    log.lines().filter(|l| l.contains(&format!("peer {mac} (")) && l.contains("): Started: ")).count()
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
    // The disk it wrote is the firmware's next boot: B reboots straight into it.
    b.wait_for("pairos-recover: the disk boots next: Boot", BOOT)?;
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
    assert_eq!(imagings(&a_log, B_MAC), 1, "B was offered recovery once:\n{a_log}");
    assert_eq!(b_log.matches("pairos-recover: image written").count(), 1, "B was imaged once");
    let after_imaging = &a_log[a_log.find("Finished").expect("finished")..];
    assert!(
        !after_imaging.contains(&format!("to {B_MAC}:")),
        "B booted its disk without another network boot (BootNext):\n{after_imaging}"
    );

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

    // B's power is cut and it comes back with its own disk: its firmware boots the network
    // first, every option on. A tells it to boot its disk on each, for as long as they take;
    // it is never offered recovery, and it comes up from its own disk.
    b.kill();
    a.wait_for("pairos run: peer silent", BOOT)?;
    let from = a.console().text().len();
    let power_on = Instant::now();
    let mut b = lab.start(newcomer("node-b-back", &b_disk).same_machine_as(4))?;
    b.wait_for("pairos run: node-2 of pair", EVERY_OPTION)?;
    println!(
        "a healthy disk (OVMF, every network option): from power on to pairos run on its own disk {} s",
        power_on.elapsed().as_secs()
    );
    a.wait_for(&format!("pairos run: peer live ({B_MAC})"), BOOT)?;
    let back = a.console().text()[from..].to_owned();
    assert!(
        back.contains(&format!("{B_MAC}: LocalBoot (a known peer, not live: told to boot its disk)")),
        "B was told to boot its disk:\n{back}"
    );
    assert!(!back.contains(&format!("to {B_MAC}: Recover (")), "a healthy disk is never reimaged:\n{back}");
    assert!(!b.console().text().contains("recovery mode"), "B booted no recovery environment");

    // B's disk dies (wiped). Powered on, B is first told to boot its disk: A cannot tell a dead
    // disk from a power cut yet. Every option fails and OVMF stops in its shell. Powered on
    // again (this lab has no BMC; a pair with BMCs resets it by itself), its firmware comes
    // round again with no sign of its disk having started: offered recovery at once. With
    // `to_shell` false, the power is cut once the firmware's PXE has been told to boot the disk,
    // without waiting for the shell: the next round is the same evidence, minutes sooner.
    let wipe_and_power_on = |lab: &mut Lab,
                             a: &mut pairos_lab::Vm,
                             b: &mut pairos_lab::Vm,
                             name: &str,
                             to_shell: bool| {
        b.kill();
        a.wait_for("pairos run: peer silent", BOOT)?;
        blank_disk(&b_disk, 10 * GIB)?;
        let from = a.console().text().len();
        let mut b = lab.start(newcomer(name, &b_disk).same_machine_as(4))?;
        a.wait_for(&format!("{B_MAC}: LocalBoot (a known peer, not live: told to boot its disk)"), BOOT)?;
        if to_shell {
            let power_on = Instant::now();
            b.wait_for("UEFI Interactive Shell", EVERY_OPTION)?;
            println!(
                "a wiped disk (OVMF, every network option): from power on to the firmware's shell {} s",
                power_on.elapsed().as_secs()
            );
        } else {
            a.wait_for("told to boot its disk) [Firmware xid", BOOT)?;
        }
        b.kill();
        Ok::<_, LabError>((lab.start(newcomer(&format!("{name}-again"), &b_disk).same_machine_as(4))?, from))
    };
    let (mut b, from) = wipe_and_power_on(&mut lab, &mut a, &mut b, "node-b-wiped", true)?;
    let again = Instant::now();
    let why = a.wait_for(&format!("to {B_MAC}: Recover (a known peer whose disk does not boot"), BOOT)?;
    assert!(why.contains("its firmware went round its boot options again"), "{why}");
    let offered_after = again.elapsed();
    let (_, first_ms) = a.console().find_since(from, &format!("to {B_MAC}: LocalBoot")).expect("told");
    let (_, offer_ms) = a.console().find_since(from, &format!("to {B_MAC}: Recover")).expect("offered");
    println!(
        "a wiped disk (OVMF, every network option): from its first network boot to the offer {} s, \
         of which {} s from its power-on again",
        (offer_ms.saturating_sub(first_ms)) / 1000,
        offered_after.as_secs()
    );
    b.wait_for("pairos-recover: enrolled with the peer 10.77.0.1", BOOT)?;
    b.wait_for("pairos-recover: identity written: node-2", WRITE)?;
    b.wait_for("pairos run: node-2 of pair", BOOT)?;
    a.wait_for(&format!("pairos run: peer live ({B_MAC})"), BOOT)?;
    let healed = a.console().text()[from..].to_owned();
    assert_eq!(imagings(&healed, B_MAC), 1, "the wiped B was offered recovery once:\n{healed}");
    assert_eq!(b.console().text().matches("pairos-recover: image written").count(), 1, "imaged once");

    // Wiped again right after: imaged twice within the hour, B is not imaged a third time. A
    // holds it, says why in its status (the console's alarm), and lets it go on once approved.
    let (mut b, from) = wipe_and_power_on(&mut lab, &mut a, &mut b, "node-b-wiped-twice", false)?;
    let held = a.wait_for(&format!("{B_MAC} held: {B_MAC} was imaged 2 times within the hour"), BOOT)?;
    assert!(held.contains(&format!("pairos pair approve {B_MAC}")), "{held}");
    a.wait_for("held for the operator (pairos pair approve MAC lets it go on)", BOOT)?;
    let (code, status) = a.run("pairos status", Duration::from_secs(60))?;
    assert_eq!(code, 0, "{status}");
    assert!(status.contains(&format!("ALARM: {B_MAC} was imaged 2 times within the hour")), "{status}");
    // The held round's iPXE (after the NIC ROM's) is told to boot the disk too.
    for _ in 0..2 {
        b.wait_for("pairos: booting the local disk", BOOT)?;
    }
    let since = a.console().text()[from..].to_owned();
    assert!(
        !since.contains(&format!("to {B_MAC}: Recover (")),
        "a held node is not offered recovery:\n{since}"
    );
    assert!(!b.console().text().contains("recovery mode"), "B booted no recovery environment");
    let (code, out) = a.run(&format!("pairos pair approve {B_MAC}"), Duration::from_secs(60))?;
    assert_eq!(code, 0, "{out}");
    a.wait_for("is not reset", BOOT)?;
    b.kill();
    let mut b = lab.start(newcomer("node-b-approved", &b_disk).same_machine_as(4))?;
    a.wait_for(&format!("to {B_MAC}: Recover (a known peer whose disk does not boot"), BOOT)?;
    b.wait_for("pairos-recover: identity written: node-2", WRITE)?;
    b.wait_for("pairos run: node-2 of pair", BOOT)?;
    a.wait_for(&format!("pairos run: peer live ({B_MAC})"), BOOT)?;
    let (_, status) = a.run("pairos status", Duration::from_secs(60))?;
    assert!(!status.contains("ALARM"), "the alarm cleared once approved:\n{status}");
    Ok(())
}

/// The rest of the boot-order matrix, on one pair. SeaBIOS with iPXE, network first: a blank
/// node is imaged once, and from then on iPXE boots its disk (`sanboot`, the disk's BIOS boot).
/// Its disk wiped, iPXE's local boot fails and says so: it is sent on to the recovery boot in
/// that same boot, imaged once and rejoins. Then an OVMF node whose disk comes first: blank, it
/// falls through to the network and is imaged once; power cycled, it boots its disk and says
/// that its firmware boots the disk first; wiped, its first network boot is offered recovery.
/// Last, an OVMF node booting the network first over IPv4 only: imaged once, and back to its
/// own disk through its network options after a power cut.
#[test]
fn bios_disk_first_and_ipv4_nodes_boot_their_disks_and_a_dead_disk_is_healed_on_evidence(
) -> Result<(), LabError> {
    let out = image::default_image()?;
    let mut lab = Lab::new("recover-order")?;
    let a_disk = lab.dir().join("a.raw");
    disk_from_image(&out.join("disk.raw"), &a_disk, 10 * GIB)?;
    let mut a = lab.start(
        VmSpec::new("node-a")
            .firmware(Firmware::Ovmf)
            .nic("private", NicModel::VirtioNet)
            .nic("public", NicModel::VirtioNet)
            .boot_disk(&a_disk, DiskBus::Virtio),
    )?;
    a.wait_for("pairos run: ready", BOOT)?;

    // SeaBIOS, network first (the NIC's iPXE ROM), then the disk.
    let bios_mac = "52:54:00:12:02:00";
    let b_disk = lab.dir().join("b.raw");
    blank_disk(&b_disk, 10 * GIB)?;
    let bios = |name: &str| {
        VmSpec::new(name)
            .firmware(Firmware::SeaBios)
            .boot_nic("private", NicModel::VirtioNet)
            .nic("public", NicModel::VirtioNet)
            .boot_disk(&b_disk, DiskBus::Virtio)
    };
    let mut b = lab.start(bios("bios-b"))?;
    b.wait_for("pairos-recover: identity written: node-2", WRITE)?;
    b.wait_for("pairos-recover: BIOS firmware: the peer's iPXE boots the disk", BOOT)?;
    // (iPXE and SeaBIOS write to the screen only: A's log shows what iPXE was told.)
    b.wait_for("pairos run: node-2 of pair", BOOT)?;
    a.wait_for(&format!("pairos run: peer live ({bios_mac})"), BOOT)?;
    let log = a.console().text();
    assert!(
        log.contains(&format!("to {bios_mac}: LocalBoot (a known peer, not live: told to boot its disk)")),
        "{log}"
    );
    assert_eq!(imagings(&log, bios_mac), 1, "imaged once:\n{log}");

    // Its disk wiped: iPXE cannot boot it, says so, and goes on to the recovery boot at once.
    b.kill();
    a.wait_for("pairos run: peer silent", BOOT)?;
    blank_disk(&b_disk, 10 * GIB)?;
    let from = a.console().text().len();
    let mut b = lab.start(bios("bios-b-wiped").same_machine_as(2))?;
    let why =
        a.wait_for(&format!("network boot: {bios_mac}: iPXE could not boot its disk: Recover"), BOOT)?;
    let (_, told_ms) = a.console().find_since(from, &format!("to {bios_mac}: LocalBoot")).expect("told");
    let (_, offer_ms) =
        a.console().find_since(from, "iPXE could not boot its disk: Recover").expect("offered");
    println!(
        "a wiped disk (SeaBIOS and iPXE, network first): from its first network boot to the offer {} ms ({why})",
        offer_ms.saturating_sub(told_ms)
    );
    b.wait_for("pairos-recover: identity written: node-2", WRITE)?;
    b.wait_for("pairos run: node-2 of pair", BOOT)?;
    a.wait_for(&format!("pairos run: peer live ({bios_mac})"), BOOT)?;
    assert_eq!(imagings(&a.console().text()[from..], bios_mac), 1, "imaged once more");
    b.kill();
    a.wait_for("pairos run: peer silent", BOOT)?;

    // OVMF, disk first, then the network: a blank disk falls through to the network at once.
    let c_mac = "52:54:00:12:03:00";
    let c_disk = lab.dir().join("c.raw");
    blank_disk(&c_disk, 10 * GIB)?;
    let disk_first = |name: &str| {
        VmSpec::new(name)
            .firmware(Firmware::Ovmf)
            .nic("private", NicModel::VirtioNet)
            .nic("public", NicModel::VirtioNet)
            .boot_disk(&c_disk, DiskBus::Virtio)
            .then_boot_nic("private")
    };
    let mut c = lab.start(disk_first("disk-first-c"))?;
    c.wait_for("pairos-recover: the disk boots next: Boot", WRITE)?;
    c.wait_for("pairos run: node-2 of pair", BOOT)?;
    a.wait_for(&format!("pairos run: peer live ({c_mac})"), BOOT)?;
    assert_eq!(imagings(&a.console().text(), c_mac), 1, "imaged once");
    // Power cycled, it boots its disk, its firmware's first option, and says so to A.
    c.kill();
    a.wait_for("pairos run: peer silent", BOOT)?;
    let mut c = lab.start(disk_first("disk-first-c-back").same_machine_as(3))?;
    c.wait_for("pairos run: boot order: booted the firmware's first boot option", BOOT)?;
    a.wait_for(&format!("pairos run: peer live ({c_mac})"), BOOT)?;

    // Its disk wiped: the firmware fails it and boots the network; A knows the disk comes
    // first, so this network boot is the evidence: offered recovery at once.
    c.kill();
    a.wait_for("pairos run: peer silent", BOOT)?;
    blank_disk(&c_disk, 10 * GIB)?;
    let from = a.console().text().len();
    let power_on = Instant::now();
    let mut c = lab.start(disk_first("disk-first-c-wiped").same_machine_as(3))?;
    let why = a.wait_for(&format!("to {c_mac}: Recover (a known peer whose disk does not boot"), BOOT)?;
    assert!(why.contains("its firmware boots its disk first"), "{why}");
    println!(
        "a wiped disk (OVMF, disk first): from power on to the offer {} s, at its first network boot",
        power_on.elapsed().as_secs()
    );
    let since = a.console().text()[from..].to_owned();
    assert!(!since.contains(&format!("to {c_mac}: LocalBoot")), "never sent to its dead disk:\n{since}");
    c.wait_for("pairos-recover: identity written: node-2", WRITE)?;
    c.wait_for("pairos run: node-2 of pair", BOOT)?;
    a.wait_for(&format!("pairos run: peer live ({c_mac})"), BOOT)?;
    assert_eq!(imagings(&a.console().text()[from..], c_mac), 1, "imaged once more");
    c.kill();
    a.wait_for("pairos run: peer silent", BOOT)?;

    // OVMF, network first over IPv4 only (PXE and HTTP boot), as servers are often set up: a
    // blank node is imaged once and boots its disk next; power cycled, it goes through its
    // network options to its disk and is never offered recovery.
    let d_mac = "52:54:00:12:04:00";
    let d_disk = lab.dir().join("d.raw");
    blank_disk(&d_disk, 10 * GIB)?;
    let ipv4_first = |name: &str| {
        VmSpec::new(name)
            .firmware(Firmware::Ovmf)
            .boot_nic("private", NicModel::VirtioNet)
            .nic("public", NicModel::VirtioNet)
            .boot_disk(&d_disk, DiskBus::Virtio)
    };
    let mut d = lab.start(ipv4_first("ipv4-first-d"))?;
    d.wait_for("pairos-recover: the disk boots next: Boot", WRITE)?;
    d.wait_for("pairos run: node-2 of pair", BOOT)?;
    a.wait_for(&format!("pairos run: peer live ({d_mac})"), BOOT)?;
    d.kill();
    a.wait_for("pairos run: peer silent", BOOT)?;
    let from = a.console().text().len();
    let mut d = lab.start(ipv4_first("ipv4-first-d-back").same_machine_as(4))?;
    d.wait_for("pairos run: node-2 of pair", EVERY_OPTION)?;
    a.wait_for(&format!("pairos run: peer live ({d_mac})"), BOOT)?;
    let back = a.console().text()[from..].to_owned();
    assert!(back.contains(&format!("to {d_mac}: LocalBoot (a known peer, not live")), "{back}");
    assert!(!back.contains(&format!("to {d_mac}: Recover (")), "a healthy disk is never reimaged:\n{back}");
    assert_eq!(imagings(&a.console().text(), d_mac), 1, "imaged once");
    Ok(())
}
