//! `pairos.mode=recover`: the recovery agent. A blank (or repaired, or swapped) node that
//! network-booted from its peer images itself, with nobody at the console:
//!
//! 1. bring up the port iPXE booted from, with the address it was given, and enrol with the
//!    peer (only a pair that misses a node enrols anyone; it may ask its operator first);
//! 2. check the hardware against the certified profiles: an uncertified node says why, on its
//!    console and to the peer, and stops;
//! 3. classify the system disk the board's profile names, and image it from the peer with the
//!    one writer (a disk with foreign data is refused, said, and left as it is);
//! 4. write the node's identity, the pair key and the pair's settings (from the peer, with the
//!    enrolment's token) into its new state partition;
//! 5. make the disk the firmware's next boot (UEFI `BootNext`, and first in `BootOrder`), so
//!    that firmware which boots the network first does not come back to the peer, and reboot
//!    into the installed OS.
//!
//! Every step is reported to the peer, which shows it in its log and `pairos status`.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use pairos_boards::{probe, profiles, verdict};
use pairos_recovery::peer::{self, EnrolAnswer, PeerClient, Report, Step};
use pairos_recovery::source::{verified_manifest, HttpSource};
use pairos_recovery::target::Target;
use pairos_recovery::writer::{write_image, Event, WriteError, WriteOptions};

use super::cmdline::BootArgs;
use super::console_progress::ConsoleProgress;
use super::state;
use crate::pair::{handover, private_link};

const BUSYBOX: &str = "/usr/bin/busybox";

fn say(msg: impl std::fmt::Display) {
    println!("pairos-recover: {msg}");
}

/// How a recovery ended, when it did not fail.
pub enum Outcome {
    /// The image is installed: reboot into it.
    Reboot,
    /// The node must not be imaged (uncertified, foreign data): stay, and say so.
    Stop,
}

/// The peer and how to reach it, from what iPXE put on the command line.
struct Link {
    mac: String,
    interface: String,
    ip: Ipv4Addr,
    prefix: u8,
    peer: Ipv4Addr,
}

fn interface_with_mac(mac: &str, timeout: Duration) -> anyhow::Result<String> {
    let start = Instant::now();
    loop {
        if let Ok(entries) = std::fs::read_dir("/sys/class/net") {
            for e in entries.filter_map(Result::ok) {
                let addr = std::fs::read_to_string(e.path().join("address")).unwrap_or_default();
                if addr.trim().eq_ignore_ascii_case(mac) {
                    return Ok(e.file_name().to_string_lossy().into_owned());
                }
            }
        }
        if start.elapsed() > timeout {
            bail!("no network port has the MAC {mac} that iPXE booted from (after {timeout:?})");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn link(args: &BootArgs) -> anyhow::Result<Link> {
    if args.mac.is_none() {
        // Booted without iPXE (UEFI HTTP boot of the recovery UKI): ask DHCP on each port.
        say("no link parameters on the command line (UEFI HTTP boot): asking DHCP on each port");
        let lease = super::dhcp_link::find(BUSYBOX, Duration::from_secs(120))?;
        let prefix = private_link::prefix_len(lease.netmask)
            .with_context(|| format!("the peer's netmask {} is not contiguous", lease.netmask))?;
        return Ok(Link {
            mac: lease.mac,
            interface: lease.interface,
            ip: lease.ip,
            prefix,
            peer: lease.server,
        });
    }
    let missing = |what: &str| {
        format!(
            "no {what} on the kernel command line: the recovery environment is booted by a peer's \
             network boot service, whose iPXE script passes pairos.mac, pairos.ip, pairos.netmask \
             and pairos.peer"
        )
    };
    let mac = args.mac.clone().with_context(|| missing("pairos.mac"))?;
    let ip = args.ip.with_context(|| missing("pairos.ip"))?;
    let netmask = args.netmask.with_context(|| missing("pairos.netmask"))?;
    let peer = args.peer.with_context(|| missing("pairos.peer"))?;
    let prefix = private_link::prefix_len(netmask)
        .with_context(|| format!("pairos.netmask={netmask} is not a contiguous netmask"))?;
    let interface = interface_with_mac(&mac, Duration::from_secs(30))?;
    Ok(Link { mac, interface, ip, prefix, peer })
}

/// Enrols with the peer, asking until it is enrolled: the peer's services may be starting, or
/// its operator must approve first. Gives the token and the pair's id; `None`: the peer refuses
/// this node for good (the pair has both its nodes), and the recovery stops.
fn enrol(client: &PeerClient, mac: &str, peer: Ipv4Addr) -> anyhow::Result<Option<(String, String)>> {
    let start = Instant::now();
    let mut said = String::new();
    let say_once = |said: &mut String, line: String| {
        if line != *said {
            say(&line);
            *said = line;
        }
    };
    loop {
        match client.enrol(mac) {
            Ok(Ok(EnrolAnswer::Enrolled { token, expires_secs, pair_id })) => {
                say(format_args!(
                    "enrolled with the peer {peer}, pair {pair_id} (for {} min)",
                    expires_secs / 60
                ));
                return Ok(Some((token, pair_id)));
            }
            Ok(Ok(EnrolAnswer::Waiting { message })) => {
                say_once(&mut said, format!("the peer {peer}: {message}"))
            }
            Ok(Err(d)) if d.status == 403 => {
                say(format_args!("the peer {peer} refuses this node: {}", d.message));
                return Ok(None);
            }
            Ok(Err(d)) => {
                say_once(&mut said, format!("the peer {peer} cannot enrol this node yet: {}", d.message))
            }
            Err(e) if start.elapsed() > Duration::from_secs(90) && said.is_empty() => {
                return Err(e).with_context(|| format!("the peer {peer} does not answer"))
            }
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

pub fn recover(args: &BootArgs) -> anyhow::Result<Outcome> {
    let link = link(args)?;
    private_link::bring_up(&[BUSYBOX, "ip"], &link.interface, link.ip, link.prefix)?;
    say(format_args!(
        "{} ({}) is {}/{}; the peer is {}",
        link.interface, link.mac, link.ip, link.prefix, link.peer
    ));
    let client = PeerClient::new(link.peer, peer::PORT);
    let Some((token, pair_id)) = enrol(&client, &link.mac, link.peer)? else { return Ok(Outcome::Stop) };
    let tell = |step: Step, message: String, written: u64, total: u64| {
        let r = Report { mac: link.mac.clone(), step, message, written_bytes: written, total_bytes: total };
        if let Err(e) = client.report(&r, &token) {
            say(format_args!("could not tell the peer: {e}"));
        }
    };
    tell(Step::Started, format!("recovery environment up on {} ({})", link.interface, link.ip), 0, 0);

    let config = Enrolled { client: &client, mac: &link.mac, token: &token, pair_id: &pair_id };
    match image_this_node(&client, &config, &tell) {
        Ok(outcome) => Ok(outcome),
        Err(e) => {
            tell(Step::Failed, format!("{e:#}"), 0, 0);
            Err(e)
        }
    }
}

/// What the enrolled newcomer needs to ask the peer for its configuration.
struct Enrolled<'a> {
    client: &'a PeerClient,
    mac: &'a str,
    token: &'a str,
    /// The pair's id: a disk of this pair keeps its state and data and rejoins.
    pair_id: &'a str,
}

fn image_this_node(
    client: &PeerClient,
    enrolled: &Enrolled<'_>,
    tell: &dyn Fn(Step, String, u64, u64),
) -> anyhow::Result<Outcome> {
    // The hardware, against the certified profiles.
    let inv = probe::probe(Path::new("/")).context("inventorying this machine")?;
    let v = verdict::check(&profiles::builtin()?, &inv);
    if !v.certified {
        say("this machine is not a certified board; it will not be imaged:");
        for r in &v.reasons {
            say(format_args!("  {r}"));
        }
        tell(Step::Uncertified, format!("not a certified board: {}", v.reasons.join("; ")), 0, 0);
        return Ok(Outcome::Stop);
    }
    let board = v.profile.clone().unwrap_or_default();
    let disk = PathBuf::from("/dev").join(v.system_disk.clone().context("the verdict names no system disk")?);
    say(format_args!("board {board}, certified; its system disk is {}", disk.display()));

    // The image, from the peer; its manifest checked with the key built into this initramfs.
    let key = crate::signing_key::public_key(None)?;
    let source = HttpSource::new(&client.image_url());
    let image = verified_manifest(&source, &key).context("the peer's image")?;
    let m = &image.manifest;
    say(format_args!("image {} from the peer (signature good)", m.version));
    let target = Target::open(&disk, None)?;
    let opts = WriteOptions {
        parallel: 4,
        journal: PathBuf::from("/run/pairos/recover.pairos-write"),
        allow_foreign: false,
        pair: Some(enrolled.pair_id.to_owned()),
        max_rate: None,
        allow_downgrade: false,
    };
    std::fs::create_dir_all("/run/pairos").context("making /run/pairos")?;
    let mut progress = ConsoleProgress::new(|l| say(l));
    let mut on_event = |e: Event| {
        if let (Some(line), Event::Progress { written_bytes, total_bytes, .. }) = (progress.show(&e), &e) {
            tell(Step::Writing, line, *written_bytes, *total_bytes);
        }
    };
    match write_image(&source, &image, target, &opts, &mut on_event) {
        Ok(_) => {}
        Err(e @ WriteError::Foreign { .. }) => {
            say(format_args!("{e}"));
            say("nothing was written. To reuse this disk, wipe it first, or set the pair's policy to allow wiping foreign disks.");
            tell(Step::Refused, e.to_string(), 0, 0);
            return Ok(Outcome::Stop);
        }
        Err(e) => return Err(e).context(format!("imaging {}", disk.display())),
    }

    // The pair's identity and key come last, once the disk holds the image.
    let given =
        enrolled.client.node_config(enrolled.mac, enrolled.token).context("the node configuration")?;
    let given = handover::take(given)?;
    state::seed(&disk, &given.files())?;
    say(format_args!("identity written: {} of pair {}", given.node_name, given.pair_id));
    if given.pair.is_some() {
        say("the pair's settings written: the pair daemon starts at the first boot");
    }
    say(boot_the_disk_next(&disk));
    let msg = format!("installed pairos {} as {}; rebooting into it", m.version, given.node_name);
    say(&msg);
    let total = m.disk.chunks.iter().filter(|c| !c.partition_table).map(|c| c.length).sum();
    tell(Step::Finished, msg, total, total);
    Ok(Outcome::Reboot)
}

/// Makes the disk just written the firmware's next boot and its first ([`efi_boot`]); says what
/// was done. Not fatal: the peer still tells this node to boot its disk when it network-boots.
fn boot_the_disk_next(disk: &Path) -> String {
    use pairos_recovery::efi_boot::{self, Esp, EFIVARFS};
    match super::switch::mount_efivarfs(false) {
        Ok(true) => {}
        Ok(false) => {
            return "BIOS firmware: the peer's iPXE boots the disk when this node network-boots".into()
        }
        Err(e) => return format!("{e:#}: the boot order is left as it is"),
    }
    let vars = Path::new(EFIVARFS);
    let esp = super::disks::read_gpt(disk).and_then(|parts| {
        parts
            .into_iter()
            .find(|(_, p)| p.name == "esp" && p.part_type_guid.guid == pairos_image::layout::TYPE_ESP)
    });
    let Some((number, p)) = esp else {
        return format!("{} has no ESP: the boot order is left as it is", disk.display());
    };
    let esp =
        Esp { number, first_lba: p.first_lba, sectors: p.last_lba + 1 - p.first_lba, guid: p.part_guid };
    match efi_boot::boot_disk_next(vars, &esp) {
        Ok(o) => {
            let order: Vec<String> = o.boot_order.iter().map(|n| format!("{n:04X}")).collect();
            format!(
                "the disk boots next: Boot{:04X} ({}{}) is BootNext, BootOrder {}",
                o.entry,
                efi_boot::LOADER,
                if o.created { ", made now" } else { "" },
                order.join(",")
            )
        }
        Err(e) => format!("cannot make the disk the next boot: {e}; the boot order is left as it is"),
    }
}
