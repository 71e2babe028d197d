//! `pairos volume`: make and list the pair's volumes. The command changes the pair's
//! configuration document; the volume managers of both nodes do the rest.

use std::os::unix::fs::OpenOptionsExt;

use anyhow::{bail, Context};

use crate::cli::{VolumeCommand, VolumeFencePeerArgs, VolumeFolders};
use crate::pair::daemon::control;
use crate::pair::daemon::status;
use crate::volumes::view::{self, VolumesView};
use crate::Exit;
use pairos_mirror::document::PairConfig;
use pairos_mirror::lvm;
use pairos_mirror::spec::{parse_size, show_size, VolumeName};

pub fn run(cmd: VolumeCommand) -> anyhow::Result<Exit> {
    match cmd {
        VolumeCommand::Create(a) => create(&a.name, &a.size, &a.at),
        VolumeCommand::Grow(a) => grow(&a.name, &a.size, &a.at),
        VolumeCommand::Remove(a) => remove(&a.name, a.discard_data, &a.at),
        VolumeCommand::List(a) => list(&a.at),
        VolumeCommand::FencePeer(a) => fence_peer(&a),
        VolumeCommand::BeforeResyncTarget(a) => {
            let name: VolumeName = a.resource.parse().map_err(anyhow::Error::msg)?;
            match control::ask(&a.run_dir, control::Request::MaySyncTarget(name.to_string())) {
                Ok(Ok(_)) => Ok(Exit::Success),
                Ok(Err(why)) => {
                    eprintln!("pairos volume before-resync-target {name}: {why}");
                    Ok(Exit::Negative)
                }
                Err(e) => {
                    eprintln!("pairos volume before-resync-target {name}: {e:#}: refused; DRBD tries again");
                    Ok(Exit::Negative)
                }
            }
        }
        VolumeCommand::SplitBrain(a) => {
            let name: VolumeName = a.resource.parse().map_err(anyhow::Error::msg)?;
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            crate::volumes::split_brain::mark(&a.run_dir, name.as_str(), now)?;
            eprintln!(
                "pairos volume split-brain {name}: both sides wrote apart; the volume manager resolves it"
            );
            Ok(Exit::Success)
        }
    }
}

/// Asks the daemon every 2 s until it knows; says each answer on stderr (DRBD logs it).
fn fence_peer(a: &VolumeFencePeerArgs) -> anyhow::Result<Exit> {
    let name: VolumeName = a.resource.parse().map_err(anyhow::Error::msg)?;
    let until = std::time::Instant::now() + std::time::Duration::from_secs(a.within);
    loop {
        let answer = control::ask(&a.run_dir, control::Request::FencePeer(name.to_string()));
        let exit = match &answer {
            Ok(Ok(s)) if s == "outdated" => Some(Exit::PeerOutdated),
            Ok(Ok(s)) if s == "inconsistent" => Some(Exit::PeerInconsistent),
            Ok(Ok(s)) if s == "primary" => Some(Exit::PeerPrimary),
            Ok(Ok(s)) if s == "off" => Some(Exit::PeerFenced),
            _ => None,
        };
        match (&answer, exit) {
            (Ok(Ok(s)), Some(exit)) => {
                eprintln!("pairos volume fence-peer {name}: the peer's side is {s}");
                return Ok(exit);
            }
            (Ok(Err(why)), _) => eprintln!("pairos volume fence-peer {name}: {why}"),
            (Err(e), _) => eprintln!("pairos volume fence-peer {name}: {e:#}"),
            (Ok(Ok(s)), None) => eprintln!("pairos volume fence-peer {name}: unexpected answer {s:?}"),
        }
        if std::time::Instant::now() >= until {
            eprintln!(
                "pairos volume fence-peer {name}: nothing known in {} s: the writes stay frozen",
                a.within
            );
            return Ok(Exit::Negative);
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}

/// This node's status, if it is the primary: the pair's volumes change only there.
pub(crate) fn on_the_primary(a: &VolumeFolders, what: &str) -> anyhow::Result<status::PairStatus> {
    crate::volumes::create::on_the_primary(&a.run_dir, &format!("volumes are {what}"))
}

/// This node's pair configuration, checked.
pub(crate) fn document(a: &VolumeFolders) -> anyhow::Result<PairConfig> {
    crate::volumes::create::document(&a.state)
}

fn create(name: &str, size: &str, a: &VolumeFolders) -> anyhow::Result<Exit> {
    let c = crate::volumes::create::create(&a.state, &a.run_dir, name, size)?;
    if a.json {
        crate::output::json(&serde_json::json!({
            "name": c.name, "size": c.size, "device": c.device, "version": c.version,
        }))?;
    } else {
        println!(
            "volume {}: {}, {} on both nodes (pair configuration version {}); the peer makes its side within seconds",
            c.name,
            show_size(c.size),
            c.device,
            c.version
        );
    }
    Ok(Exit::Success)
}

fn grow(name: &str, size: &str, a: &VolumeFolders) -> anyhow::Result<Exit> {
    let name: VolumeName = name.parse().map_err(anyhow::Error::msg)?;
    let size = parse_size(size).map_err(anyhow::Error::msg)?;
    on_the_primary(a, "grown")?;
    let mut doc = document(a)?;
    let before = doc.volume(&name).map(|v| v.size).with_context(|| format!("there is no volume {name}"))?;
    doc.grow(&name, size)?;
    let free = lvm::vg_free(&a.state.join("lvm"))?;
    if size - before > free {
        bail!(
            "volume {name} needs {} more, and the data partition has {} free: nothing was changed",
            show_size(size - before),
            show_size(free)
        );
    }
    doc.save(&a.state)?;
    say_changed(
        a.json,
        "volume",
        name.as_str(),
        &doc,
        &format!("grows from {} to {} on both nodes", show_size(before), show_size(size)),
    )
}

fn remove(name: &str, discard_data: bool, a: &VolumeFolders) -> anyhow::Result<Exit> {
    let name: VolumeName = name.parse().map_err(anyhow::Error::msg)?;
    on_the_primary(a, "removed")?;
    let mut doc = document(a)?;
    let volume = doc.volume(&name).cloned().with_context(|| format!("there is no volume {name}"))?;
    if !discard_data {
        bail!(
            "removing volume {name} destroys its {} of data on both nodes: say so with --discard-data (nothing was changed)",
            show_size(volume.size)
        );
    }
    // A volume in use (mounted, or opened exclusively) is not taken down under its user.
    let busy = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_EXCL)
        .open(format!("/dev/drbd{}", volume.minor))
        .is_err_and(|e| e.raw_os_error() == Some(nix::libc::EBUSY));
    if busy {
        bail!(
            "volume {name} is in use on this node (/dev/drbd{} is open): nothing was changed",
            volume.minor
        );
    }
    doc.remove(&name)?;
    doc.save(&a.state)?;
    say_changed(a.json, "volume", name.as_str(), &doc, "is removed on both nodes, its data with it")
}

/// Says what a change to the pair's document did (`what` happened to the `kind` `name`), as
/// text or JSON.
pub(crate) fn say_changed(
    json: bool,
    kind: &str,
    name: &str,
    doc: &PairConfig,
    what: &str,
) -> anyhow::Result<Exit> {
    if json {
        crate::output::json(&serde_json::json!({ "name": name, "version": doc.version, "change": what }))?;
    } else {
        println!(
            "{kind} {name} {what} (pair configuration version {}); the peer follows within seconds",
            doc.version
        );
    }
    Ok(Exit::Success)
}

fn list(a: &VolumeFolders) -> anyhow::Result<Exit> {
    let doc = PairConfig::load(&a.state)?;
    // The manager's view when it runs; the document alone otherwise.
    let v = match std::fs::read(view::path(&a.run_dir)) {
        Ok(bytes) => serde_json::from_slice::<VolumesView>(&bytes).context("the volume manager's view")?,
        Err(_) => VolumesView {
            version: doc.version,
            volumes: doc
                .volumes
                .iter()
                .map(|x| view::VolumeView {
                    name: x.name.to_string(),
                    size: x.size,
                    device: format!("/dev/drbd{}", x.minor),
                    ..Default::default()
                })
                .collect(),
            alarms: vec!["the volume manager is not running (no pair daemon, or no volume group)".into()],
            updated: 0,
            last_heal: None,
        },
    };
    if a.json {
        crate::output::json(&v)?;
    } else {
        print!("{}", view::render(&v));
    }
    Ok(Exit::Success)
}
