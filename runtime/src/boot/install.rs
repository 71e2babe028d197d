//! `pairos.mode=install`: the installer that the ISO (DVD or USB stick) boots. It installs the
//! first node of a pair:
//!
//! 1. the management network: from the kernel command line (`pairos.address=CIDR`,
//!    `pairos.gateway=`, `pairos.dns=`), or asked on the console, which is all it ever asks;
//! 2. the hardware, against the certified profiles (an uncertified machine says why and stops);
//! 3. the medium: the block device with an ISO 9660 file system holding `/image`;
//! 4. the image onto the system disk the board's profile names, with the one writer and its
//!    safety rules (foreign data is refused, said, and left alone);
//! 5. the node's identity (node-1 of a new pair) and its management network into its state
//!    partition; then a reboot into the installed OS.

use std::io::{BufRead, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use nix::mount::{mount, umount, MsFlags};
use pairos_boards::{probe, profiles, verdict};
use pairos_recovery::source::{verified_manifest, FolderSource};
use pairos_recovery::target::Target;
use pairos_recovery::writer::{write_image, Event, WriteError, WriteOptions};

use super::cmdline::BootArgs;
use super::console_progress::ConsoleProgress;
use super::recover::Outcome;
use super::state;
use crate::pair::identity;
use crate::pair::management::{parse_cidr, Management};

const MEDIUM: &str = "/run/pairos/medium";

fn say(msg: impl std::fmt::Display) {
    println!("pairos-install: {msg}");
}

/// Asks on the console until the answer parses (an empty answer is `None` where allowed).
fn ask<T>(
    question: &str,
    optional: bool,
    parse: impl Fn(&str) -> Result<T, String>,
) -> anyhow::Result<Option<T>> {
    let stdin = std::io::stdin();
    loop {
        print!("pairos-install: {question}: ");
        std::io::stdout().flush().ok();
        let mut line = String::new();
        if stdin.lock().read_line(&mut line).context("reading the console")? == 0 {
            bail!("the console closed before the management network was given");
        }
        let line = line.trim();
        if line.is_empty() && optional {
            return Ok(None);
        }
        match parse(line) {
            Ok(v) => return Ok(Some(v)),
            Err(e) => say(e),
        }
    }
}

fn management(args: &BootArgs) -> anyhow::Result<Management> {
    if let Some((address, prefix)) = args.address {
        return Ok(Management { address, prefix, gateway: args.gateway, dns: args.dns });
    }
    say("no pairos.address= on the kernel command line; the management network, please");
    let ip = |s: &str| s.parse::<Ipv4Addr>().map_err(|_| format!("{s:?}: expected an IPv4 address"));
    let (address, prefix) =
        ask("management address (like 192.168.1.10/24)", false, parse_cidr)?.expect("not optional");
    let gateway = ask("gateway (empty for none)", true, ip)?;
    let dns = ask("DNS server (empty for none)", true, ip)?;
    Ok(Management { address, prefix, gateway, dns })
}

/// Mounts the installation medium: the first block device (other than `system`) that holds an
/// ISO 9660 file system with `image/manifest.json`.
fn mount_medium(system: &Path) -> anyhow::Result<PathBuf> {
    let dir = Path::new(MEDIUM);
    std::fs::create_dir_all(dir).with_context(|| format!("making {MEDIUM}"))?;
    let mut tried = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")
        .context("listing /sys/block")?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !["loop", "ram", "zram", "dm-"].iter().any(|p| n.starts_with(p)))
        .collect();
    names.sort();
    for name in names {
        let dev = PathBuf::from("/dev").join(&name);
        if dev == system {
            continue;
        }
        if mount(Some(&dev), dir, Some("iso9660"), MsFlags::MS_RDONLY | MsFlags::MS_NOSUID, None::<&str>)
            .is_err()
        {
            tried.push(name);
            continue;
        }
        if dir.join("image/manifest.json").is_file() {
            return Ok(dev);
        }
        let _ = umount(dir);
        tried.push(name);
    }
    bail!(
        "no installation medium: none of the block devices ({}) holds an ISO 9660 file system with /image/manifest.json",
        if tried.is_empty() { "none".into() } else { tried.join(", ") }
    )
}

pub fn install(args: &BootArgs) -> anyhow::Result<Outcome> {
    let mgmt = management(args)?;
    say(format_args!("management network {mgmt}"));

    let inv = probe::probe(Path::new("/")).context("inventorying this machine")?;
    let v = verdict::check(&profiles::builtin()?, &inv);
    if !v.certified {
        say("this machine is not a certified board; pairos will not be installed:");
        for r in &v.reasons {
            say(format_args!("  {r}"));
        }
        return Ok(Outcome::Stop);
    }
    let disk = PathBuf::from("/dev").join(v.system_disk.clone().context("the verdict names no system disk")?);
    say(format_args!(
        "board {}, certified; its system disk is {}",
        v.profile.as_deref().unwrap_or_default(),
        disk.display()
    ));

    let medium = mount_medium(&disk)?;
    say(format_args!("installation medium {}", medium.display()));
    let key = crate::signing_key::public_key(None)?;
    let source = FolderSource { dir: Path::new(MEDIUM).join("image") };
    let image = verified_manifest(&source, &key).context("the medium's image")?;
    let m = &image.manifest;
    say(format_args!("image {} (signature good)", m.version));
    std::fs::create_dir_all("/run/pairos").context("making /run/pairos")?;
    let opts = WriteOptions {
        parallel: 2,
        journal: PathBuf::from("/run/pairos/install.pairos-write"),
        allow_foreign: false,
        // A new pair: a disk of any pair is foreign to it.
        pair: None,
        max_rate: None,
        allow_downgrade: false,
    };
    let mut progress = ConsoleProgress::new(|l| say(l));
    let mut on_event = |e: Event| {
        progress.show(&e);
    };
    let target = Target::open(&disk, None)?;
    match write_image(&source, &image, target, &opts, &mut on_event) {
        Ok(_) => {}
        Err(e @ WriteError::Foreign { .. }) => {
            say(format_args!("{e}"));
            say("nothing was written. To install here, wipe this disk first.");
            let _ = umount(MEDIUM);
            return Ok(Outcome::Stop);
        }
        Err(e) => return Err(e).context(format!("installing onto {}", disk.display())),
    }

    let node = identity::new_pair()?;
    let node_bytes = serde_json::to_vec_pretty(&node).expect("a node config serialises");
    // The pair is formed here: its key is made with it.
    let key = pairos_recovery::trust::PairKey::generate().context("reading randomness for the pair key")?;
    state::seed(
        &disk,
        &[
            (identity::NODE_FILE, node_bytes),
            (identity::KEY_FILE, identity::key_file_bytes(&key)),
            (crate::pair::management::FILE, mgmt.to_bytes()),
        ],
    )?;
    let _ = umount(MEDIUM);
    say(format_args!(
        "installed pairos {} on {} as {} of a new pair {}; remove the medium; rebooting",
        m.version,
        disk.display(),
        node.node_name,
        node.pair_id
    ));
    Ok(Outcome::Reboot)
}
