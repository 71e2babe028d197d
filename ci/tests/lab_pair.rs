//! Lab scenario for one primary: the lab pair ([`PairLab`], as `ci/lab up` makes it): two
//! nodes from one image, each with a BMC that is its power (`ipmi_sim`, connected to its VM
//! through a KCS interface, with an emulated `CPU Temp` sensor) and an i6300esb watchdog. A
//! client on the public network probes the pair's address by ARP and ping every 50 ms. One
//! boot, then a campaign:
//!
//! 1. The pair forms: node-1 (a) primary, the address answered from its public port.
//! 2. The private link is cut: an alarm on both, no move; healed, the alarm clears.
//! 3. a's public cable is pulled: it hands over to b. Plugged back; b hands back by a
//!    switchover.
//! 4. a's CPU Temp flaps around its critical threshold: one preventive move to b, no more. A
//!    switchover gives the role back to a.
//! 5. a's VM is killed: b fences it through a's BMC (which reports it off) and takes over;
//!    a is powered on through its BMC and joins as the secondary.
//! 6. Every cable of a is pulled, both nodes alive: b (primary) fences a at once and stays
//!    primary; a does not promote. Healed and powered on, a joins again.
//! 7. b's daemon hangs (SIGSTOP) while its BMC is unreachable, so a cannot fence it and does
//!    not promote: b's watchdog resets it, and the pair forms again with a primary.
//!
//! The client never sees two MACs answer within one 50 ms window.

use std::time::Duration;

use pairos_lab::address_probe::AddressProbe;
use pairos_lab::pair_lab::{LinkName, PairLab, PairLabOptions, BOOT, PAIR_ADDRESS};
use pairos_lab::{image, LabError};

const MINUTE: Duration = Duration::from_secs(60);
/// A node's status once it hears its peer on both links.
const BOTH_LINKS: [&str; 2] =
    ["private link eth0: carrier, peer heard", "public link eth1: carrier, peer heard"];

/// `pairos pair status` on node `letter`, once it says `what` (it is written once a second).
fn status_once(pair: &mut PairLab, letter: char, what: &str) -> Result<String, LabError> {
    status_all(pair, letter, &[what])
}

/// `pairos pair status` on node `letter`, once it says every one of `all`.
fn status_all(pair: &mut PairLab, letter: char, all: &[&str]) -> Result<String, LabError> {
    let greps: Vec<String> = all.iter().map(|w| format!("echo \"$s\" | grep -q '{w}'")).collect();
    let (code, status) = pair.exec(
        letter,
        &format!(
            "for i in $(seq 60); do s=$(pairos pair status); {} && break; sleep 1; done; pairos pair status",
            greps.join(" && ")
        ),
        Duration::from_secs(90),
    )?;
    assert_eq!(code, 0, "{status}");
    for what in all {
        assert!(status.contains(what), "node {letter}: {what:?} not in\n{status}");
    }
    Ok(status)
}

fn console_len(pair: &mut PairLab, letter: char) -> Result<usize, LabError> {
    Ok(pair.node(letter)?.vm.console().text().len())
}

fn console_since(pair: &mut PairLab, letter: char, from: usize) -> Result<String, LabError> {
    let text = pair.node(letter)?.vm.console().text();
    Ok(text.get(from..).unwrap_or_default().to_owned())
}

#[test]
fn one_primary_with_bmcs_and_watchdogs() -> Result<(), LabError> {
    let out = image::default_image()?;
    let opts = PairLabOptions { name: "pair".into(), image: out, bmcs: true, witness: false };
    let mut pair = PairLab::up(&opts, &mut |msg| eprintln!("lab: {msg}"))?;
    let mac_a = pair.node('a')?.macs[1].clone();
    let mac_b = pair.node('b')?.macs[1].clone();
    let probe = AddressProbe::start(&pair.client().ns, "eth0", PAIR_ADDRESS)?;

    // 1. The pair forms.
    probe.wait_for(&mac_a, MINUTE)?;
    assert!(pair.ipmi('a', &["chassis", "power", "status"])?.contains("on"));
    let status = status_once(&mut pair, 'b', "node-1: primary")?;
    assert!(status.contains("node-2: secondary, health 1000"), "{status}");
    // The node reads its own BMC's sensors in-band.
    let (code, sdr) = pair.exec('a', "ipmitool sdr list", MINUTE)?;
    assert_eq!(code, 0, "{sdr}");
    assert!(sdr.contains("CPU Temp") && sdr.contains("40 degrees C"), "{sdr}");

    // 2. The private link is cut: both raise an alarm and nothing moves; healed, it clears.
    pair.set_link(LinkName::Private, 'a', false)?;
    status_once(&mut pair, 'a', "ALARM: the peer is silent on the private link")?;
    let status = status_once(&mut pair, 'b', "ALARM: the peer is silent on the private link")?;
    assert!(status.contains("node-1: primary"), "one link down is not a failover: {status}");
    pair.set_link(LinkName::Private, 'a', true)?;
    let status = status_once(&mut pair, 'a', "private link eth0: carrier, peer heard")?;
    assert!(!status.contains("ALARM"), "{status}");

    // 3. a's public cable is pulled: it hands over to b. Then b hands back by a switchover.
    pair.set_link(LinkName::Public, 'a', false)?;
    pair.node('a')?.vm.wait_for("pair: secondary: preventive move: the peer is healthier", MINUTE)?;
    pair.node('b')?.vm.wait_for("pair: primary in epoch", MINUTE)?;
    probe.wait_for(&mac_b, MINUTE)?;
    pair.set_link(LinkName::Public, 'a', true)?;
    status_once(&mut pair, 'b', "node-1: secondary, health 1000")?;
    let (code, out) = pair.exec('b', "pairos pair switchover", MINUTE)?;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("handed over to node-1"), "{out}");
    pair.node('a')?.vm.wait_for("pair: primary in epoch", MINUTE)?;
    probe.wait_for(&mac_a, MINUTE)?;

    // 4. a's CPU temperature flaps around its critical threshold (85): the first critical
    //    spell outlasts the hold time and moves the role to b, once; the rest move nothing.
    let (a_from, b_from) = (console_len(&mut pair, 'a')?, console_len(&mut pair, 'b')?);
    for _ in 0..4 {
        pair.sensor('a', "CPU Temp", 90)?;
        std::thread::sleep(Duration::from_secs(6));
        pair.sensor('a', "cpu-temp", 60)?;
        std::thread::sleep(Duration::from_secs(4));
    }
    pair.sensor('a', "CPU Temp", 90)?;
    let status =
        status_once(&mut pair, 'a', "sensor past its critical threshold: CPU Temp: 90 degrees C (cr)")?;
    assert!(status.contains("node-1: secondary, health 700"), "{status}");
    let (a_log, b_log) = (console_since(&mut pair, 'a', a_from)?, console_since(&mut pair, 'b', b_from)?);
    assert!(a_log.contains("pair: sensors CRITICAL: CPU Temp: 90 degrees C (cr)"), "{a_log}");
    assert_eq!(
        a_log.matches("pair: secondary: preventive move: the peer is healthier").count(),
        1,
        "{a_log}"
    );
    assert_eq!(b_log.matches("pair: primary in epoch").count(), 1, "{b_log}");
    assert!(!a_log.contains("pair: primary in epoch"), "the role moved back:\n{a_log}");
    probe.wait_for(&mac_b, MINUTE)?;
    pair.sensor('a', "CPU Temp", 40)?;
    status_once(&mut pair, 'b', "node-1: secondary, health 1000")?;
    let (code, out) = pair.exec('b', "pairos pair switchover", MINUTE)?;
    assert_eq!(code, 0, "{out}");
    pair.node('a')?.vm.wait_for("pair: primary in epoch", MINUTE)?;
    probe.wait_for(&mac_a, MINUTE)?;

    // 5. a dies: b fences it through a's BMC and takes over. Powered on, a joins as secondary.
    pair.kill('a')?;
    pair.node('b')?.vm.wait_for("pair: fencing node-1 (IPMI admin@192.168.50.21:623)", MINUTE)?;
    pair.node('b')?.vm.wait_for("pair: primary in epoch", MINUTE)?;
    probe.wait_for(&mac_b, MINUTE)?;
    assert!(pair.ipmi('a', &["chassis", "power", "status"])?.contains("off"));
    pair.power('a', true)?;
    pair.node('a')?.vm.wait_for("pair: node-1 of pair pair-lab starting", BOOT)?;
    let status = status_all(&mut pair, 'a', &BOTH_LINKS)?;
    assert!(status.contains("node-2: primary") && status.contains("node-1: secondary"), "{status}");
    status_all(&mut pair, 'b', &BOTH_LINKS)?;

    // 6. Every cable of a is pulled, both alive: b, the primary, fences a at once and stays
    //    primary; a cannot reach b's BMC and does not promote.
    let b_from = console_len(&mut pair, 'b')?;
    pair.set_link(LinkName::Private, 'a', false)?;
    pair.set_link(LinkName::Public, 'a', false)?;
    pair.node('b')?.vm.wait_for("pair: fencing node-1", MINUTE)?;
    pair.node('b')?.vm.wait_for("pair: fence: node-1 is confirmed powered off", MINUTE)?;
    let start = std::time::Instant::now();
    while pair.node('a')?.vm.running() {
        assert!(start.elapsed() < Duration::from_secs(10), "a is still powered after b fenced it");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!console_since(&mut pair, 'b', b_from)?.contains("pair: secondary"), "b stood down");
    assert_eq!(probe.holder(Duration::from_secs(1)).as_deref(), Some(mac_b.as_str()));
    pair.heal_all()?;
    pair.power('a', true)?;
    pair.node('a')?.vm.wait_for("pair: node-1 of pair pair-lab starting", BOOT)?;
    let status = status_all(&mut pair, 'a', &BOTH_LINKS)?;
    assert!(status.contains("node-2: primary"), "{status}");
    status_all(&mut pair, 'b', &BOTH_LINKS)?;

    // 7. b's daemon hangs while its BMC is unreachable: a cannot fence it and does not
    //    promote; b's watchdog (10 s) resets it, and the pair forms again with a primary.
    pair.lab().netns().ip(&["addr", "del", "192.168.50.22/24", "dev", "br-public"])?;
    pair.hang('b')?;
    // The watchdog's reset, then firmware and kernel under TCG: on a loaded machine this takes
    // minutes, not seconds.
    pair.node('b')?.vm.wait_for("pairos-init: pairos", BOOT)?;
    pair.node('a')?.vm.wait_for("pair: primary in epoch", BOOT)?;
    probe.wait_for(&mac_a, Duration::from_secs(120))?;

    let doubles = probe.double_windows();
    assert!(doubles.is_empty(), "two MACs answered for the address in one 50 ms window: {doubles:?}");
    Ok(())
}
