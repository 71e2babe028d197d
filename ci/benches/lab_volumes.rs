//! Mirrored volumes in the lab under TCG, each figure beside its reference from the same run:
//! - a full resync of a 256 MiB volume (b's side invalidated; DRBD's own `Resync done ...
//!   K/sec` from b's kernel log) against a plain TCP stream of 256 MiB between the same two
//!   nodes on the private link (bash's `/dev/tcp` into busybox's `nc -l`);
//! - DRBD's write cost: `dd` with O_DIRECT to the volume on the primary (1 MiB blocks for
//!   throughput, 4 KiB synchronous ones for latency) against the same to a plain logical volume
//!   of the same size on the same node. (fio is not in the image: Debian's pulls in python3 and
//!   Ceph's libraries.)
//! - time to redundancy of a node whose disk is swapped for a blank one, phase by phase, as the
//!   consoles show it (polled every second).
//!
//! Prints Markdown. Usage: `cargo bench -p pairos-lab --bench lab_volumes -- [RUNS]` (default
//! 3), as root, after `cargo build --release -p pairos-runtime`.

use std::time::{Duration, Instant};

use pairos_lab::pair_lab::{PairLab, PairLabOptions};
use pairos_lab::stats::median;
use pairos_lab::{image, LabError};
use serde_json::Value;

const MINUTE: Duration = Duration::from_secs(60);
const MIB: f64 = (1 << 20) as f64;

fn run(pair: &mut PairLab, node: char, command: &str) -> Result<String, LabError> {
    pair.run(node, command, 10 * MINUTE)
}

/// The one volume of the bench on `node`.
fn volume(pair: &mut PairLab, node: char) -> Result<Value, LabError> {
    Ok(pair.json(node, "pairos volume list --json", MINUTE)?["volumes"][0].clone())
}

fn wait_in_sync(pair: &mut PairLab) -> Result<(), LabError> {
    let start = Instant::now();
    loop {
        let (a, b) = (volume(pair, 'a')?, volume(pair, 'b')?);
        if [&a, &b].iter().all(|v| v["disk"] == "UpToDate" && v["peer_disk"] == "UpToDate") {
            return Ok(());
        }
        if start.elapsed() > 10 * MINUTE {
            return Err(LabError::Setup(format!("not in sync after 10 minutes:\na: {a}\nb: {b}")));
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// MiB/s from `dd`'s last line (`... copied, 2.1 s, 64.0 MB/s`): bytes over seconds.
fn dd_rate(out: &str) -> Option<f64> {
    let line = out.lines().rev().find(|l| l.contains(" copied, "))?;
    let bytes: f64 = line.split_whitespace().next()?.parse().ok()?;
    let secs: f64 = line.split(" copied, ").nth(1)?.split_whitespace().next()?.parse().ok()?;
    Some(bytes / secs / MIB)
}

/// KiB/s of the last `Resync done` in the kernel's log.
fn resync_rate(dmesg: &str) -> Option<f64> {
    let line = dmesg.lines().rev().find(|l| l.contains("Resync done"))?;
    let k = line.rsplit_once("; ")?.1.trim_end_matches(')').trim_end_matches(" K/sec");
    k.replace(',', "").trim().parse().ok()
}

fn med(v: &[f64]) -> f64 {
    median(v.to_vec())
}

fn all(v: &[f64]) -> String {
    v.iter().map(|x| format!("{x:.1}")).collect::<Vec<_>>().join(", ")
}

/// Seconds from `start` until node `node`'s console, past `from`, shows `needle`.
fn seen(pair: &mut PairLab, node: char, from: usize, needle: &str, start: Instant) -> Result<f64, LabError> {
    loop {
        let text = pair.node(node)?.vm.console().text();
        if text.get(from..).unwrap_or_default().contains(needle) {
            return Ok(start.elapsed().as_secs_f64());
        }
        if start.elapsed() > 30 * MINUTE {
            return Err(LabError::Setup(format!("node {node}: no {needle:?} in 30 minutes")));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn main() -> Result<(), LabError> {
    let runs: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(3);
    let out = image::default_image()?;
    let opts = PairLabOptions { name: "bench-volumes".into(), image: out, bmcs: true, witness: false };
    let mut pair = PairLab::up(&opts, &mut |msg| eprintln!("lab: {msg}"))?;
    for n in ['a', 'b'] {
        run(&mut pair, n, "dmesg -n 1")?;
    }
    run(&mut pair, 'a', "pairos volume create bench 256M")?;
    wait_in_sync(&mut pair)?;
    // A plain logical volume beside it, made as the node makes its own (no udev, read-only root).
    run(
        &mut pair,
        'a',
        "DM_DISABLE_UDEV=1 lvcreate --config 'activation { udev_sync = 0 udev_rules = 0 } \
         devices { obtain_device_list_from_udev = 0 global_filter = [ \"r|^/dev/drbd|\" ] } \
         backup { backup = 0 archive = 0 }' -q -y -n local -L 256M pairos",
    )?;

    let (mut tcp, mut resync, mut big, mut big_local, mut small, mut small_local) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        // A plain TCP stream a -> b on the private link.
        run(&mut pair, 'b', "(busybox nc -l -p 9000 > /dev/null &) ; sleep 1")?;
        let ms = run(
            &mut pair,
            'a',
            // The console's shell is busybox's, which has no /dev/tcp: bash (in every Debian
            // root) runs it, with coreutils' date.
            "bash -c 's=$(date +%s%N); dd if=/dev/zero bs=1M count=256 status=none > /dev/tcp/10.77.0.2/9000; \
             e=$(date +%s%N); echo $(( (e - s) / 1000000 ))'",
        )?;
        let ms: f64 = ms.trim().parse().map_err(|_| LabError::Setup(format!("the stream's time: {ms:?}")))?;
        tcp.push(256.0 / (ms / 1000.0));
        // A full resync of the volume, b the target.
        // busybox's dmesg clears with -c (it has no -C).
        run(&mut pair, 'b', "dmesg -c > /dev/null && drbdadm -c /run/pairos/drbd.conf invalidate bench")?;
        std::thread::sleep(Duration::from_secs(3));
        wait_in_sync(&mut pair)?;
        let log = run(&mut pair, 'b', "dmesg")?;
        let k =
            resync_rate(&log).ok_or_else(|| LabError::Setup(format!("no Resync done in b's log:\n{log}")))?;
        resync.push(k / 1024.0);
        // Writes on the primary: to the volume, and to a plain logical volume beside it.
        // coreutils' dd by its path: the console's busybox shell would run its own.
        for (device, out_big, out_small) in
            [("/dev/drbd0", &mut big, &mut small), ("/dev/pairos/local", &mut big_local, &mut small_local)]
        {
            let b = run(
                &mut pair,
                'a',
                &format!("/usr/bin/dd if=/dev/zero of={device} bs=1M count=128 oflag=direct 2>&1"),
            )?;
            let s = run(
                &mut pair,
                'a',
                &format!("/usr/bin/dd if=/dev/zero of={device} bs=4k count=2000 oflag=direct,dsync 2>&1"),
            )?;
            out_big.push(dd_rate(&b).ok_or_else(|| LabError::Setup(format!("dd said {b:?}")))?);
            out_small.push(dd_rate(&s).ok_or_else(|| LabError::Setup(format!("dd said {s:?}")))?);
        }
        eprintln!(
            "run {i}: tcp {:.1} MiB/s, resync {:.1} MiB/s, writes {:.1}/{:.1} MiB/s (1M), {:.2}/{:.2} MiB/s (4k sync)",
            tcp[i], resync[i], big[i], big_local[i], small[i], small_local[i]
        );
    }
    println!(
        "| in the lab, TCG, 256 MiB ({runs} runs) | pairos | reference | ratio | runs (pairos / reference) |"
    );
    println!("|---|---|---|---|---|");
    let row = |what: &str, ours: &[f64], theirs: &[f64], unit: &str| {
        println!(
            "| {what} | {:.1} {unit} | {:.1} {unit} | {:.2} | {} / {} |",
            med(ours),
            med(theirs),
            med(ours) / med(theirs),
            all(ours),
            all(theirs)
        );
    };
    row("full resync against a TCP stream on the private link", &resync, &tcp, "MiB/s");
    row("writes, 1 MiB O_DIRECT: the volume against a plain LV", &big, &big_local, "MiB/s");
    row("writes, 4 KiB O_DIRECT+O_DSYNC: the volume against a plain LV", &small, &small_local, "MiB/s");

    // b's disk swapped for a blank one, and b powered on: to redundancy, phase by phase.
    let from_a = pair.node('a')?.vm.console().text().len();
    pair.power('b', false)?;
    seen(&mut pair, 'a', from_a, "fence: node-2 is confirmed powered off", Instant::now())?;
    pair.swap_disk('b')?;
    let (from_a, from_b) =
        (pair.node('a')?.vm.console().text().len(), pair.node('b')?.vm.console().text().len());
    let start = Instant::now();
    pair.power('b', true)?;
    // b's firmware boots its disk first (its heartbeats said so): its network boot, the blank
    // disk having failed, is offered recovery at once.
    let offered = seen(&mut pair, 'a', from_a, "Recover (a known peer whose disk does not boot", start)?;
    let enrolled = seen(&mut pair, 'b', from_b, "pairos-recover: enrolled with the peer", start)?;
    let imaged = seen(&mut pair, 'b', from_b, "pairos-recover: identity written", start)?;
    let daemon = seen(&mut pair, 'b', from_b, "pair: watchdog", start)?;
    let syncing = loop {
        let b = volume(&mut pair, 'b')?;
        if b["replication"] == "SyncTarget" || b["disk"] == "UpToDate" {
            break start.elapsed().as_secs_f64();
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    wait_in_sync(&mut pair)?;
    let done = start.elapsed().as_secs_f64();
    println!("\n| a blank disk in b, from power on (one run) | s | phase |");
    println!("|---|---|---|");
    for (what, at, from) in [
        ("firmware, its blank disk failing, to network boot: offered recovery at once", offered, 0.0),
        ("recovery agent: enrolled", enrolled, offered),
        ("imaging its disk from the peer", imaged, enrolled),
        ("boot from its disk to the pair daemon", daemon, imaged),
        ("the rest: configuration adopted, volumes made, connected", syncing, daemon),
        ("full sync of 256 MiB", done, syncing),
    ] {
        println!("| {what} | {at:.0} | {:.0} |", at - from);
    }
    println!("| **redundant again** | **{done:.0}** | |");
    Ok(())
}
