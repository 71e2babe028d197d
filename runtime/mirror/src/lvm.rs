//! The volume group on the data partition, and the logical volumes under the pair's volumes,
//! through LVM's own tools. The node has no udev, so device-mapper makes its nodes itself
//! (`DM_DISABLE_UDEV`); the root is read-only, so LVM's metadata backups go to the state
//! partition; DRBD devices are never scanned as physical volumes.
//!
//! The data partition is made a physical volume only when it holds nothing at all (no
//! signature `blkid` knows): one that holds anything else is left alone, and said.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use pairos_host::{Cmd, CommandError};

use super::drbd_conf::VG;
use super::spec::show_size;

/// The data partition's GPT name (as the first boot names it).
pub const DATA_LABEL: &str = "pairos-data";

/// Runs an LVM tool with the node's settings.
fn lvm(tool: &str, backups: &Path) -> Cmd {
    let config = format!(
        "devices {{ global_filter = [ \"r|^/dev/drbd|\" ] obtain_device_list_from_udev = 0 }} \
         activation {{ udev_sync = 0 udev_rules = 0 }} \
         backup {{ backup_dir = \"{b}/backup\" archive_dir = \"{b}/archive\" }}",
        b = backups.display()
    );
    Cmd::new(tool)
        .args(["--config", &config])
        .env("DM_DISABLE_UDEV", "1")
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
}

/// What the data partition holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataState {
    /// The volume group is there (made now, or found), with this many bytes free.
    Ready { free: u64, made: bool },
    /// Something else: left alone.
    Foreign(String),
}

/// The volume group on `partition`: found and activated, or made on a blank partition.
/// LVM keeps its metadata backups under `backups` (on the state partition).
pub fn ensure_vg(partition: &Path, backups: &Path) -> anyhow::Result<DataState> {
    std::fs::create_dir_all(backups).with_context(|| format!("making {}", backups.display()))?;
    // blkid -p: exit 2 and nothing printed when the partition has no signature at all.
    let probe = Cmd::new("blkid").args(["-p", "-o", "value", "-s", "TYPE"]).arg(partition).run_text();
    let kind = match probe {
        Ok(text) => text.trim().to_owned(),
        Err(CommandError::Failed { status, .. }) if status.code() == Some(2) => String::new(),
        Err(e) => return Err(e).with_context(|| format!("probing {}", partition.display())),
    };
    let made = match kind.as_str() {
        "" => {
            lvm("pvcreate", backups)
                .arg(partition)
                .run()
                .context("making the data partition a physical volume")?;
            lvm("vgcreate", backups).arg(VG).arg(partition).run().context("making the volume group")?;
            true
        }
        "LVM2_member" => {
            let vg = lvm("pvs", backups)
                .args(["--noheadings", "-o", "vg_name"])
                .arg(partition)
                .run_text()
                .context("reading the physical volume")?;
            if vg.trim() != VG {
                return Ok(DataState::Foreign(format!("a physical volume of volume group {:?}", vg.trim())));
            }
            false
        }
        other => return Ok(DataState::Foreign(format!("a {other} signature"))),
    };
    lvm("vgchange", backups).args(["-a", "y", VG]).run().context("activating the volume group")?;
    Ok(DataState::Ready { free: vg_free(backups)?, made })
}

/// Bytes free in the volume group.
pub fn vg_free(backups: &Path) -> anyhow::Result<u64> {
    let text = lvm("vgs", backups)
        .args(["--noheadings", "--units", "b", "--nosuffix", "-o", "vg_free", VG])
        .run_text()
        .context("reading the volume group's free space")?;
    text.trim().parse().with_context(|| format!("vgs printed {text:?}: expected a number of bytes"))
}

/// The logical volume `name` of `size` bytes (zeroed at its start), unless there is one; a
/// size larger than the free space is refused before anything is made.
pub fn ensure_lv(name: &str, size: u64, backups: &Path) -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(format!("/dev/{VG}/{name}"));
    if lv_size(name, backups)?.is_some() {
        return Ok(path);
    }
    let free = vg_free(backups)?;
    if size > free {
        bail!("volume {name} needs {}, and the data partition has {} free", show_size(size), show_size(free));
    }
    lvm("lvcreate", backups)
        .args(["-y", "-W", "y", "-Z", "y", "-n", name, "-L"])
        .arg(format!("{size}b"))
        .arg(VG)
        .run()
        .with_context(|| format!("making logical volume {name}"))?;
    Ok(path)
}

/// Extends logical volume `name` to `size` bytes; refused, before anything changes, when the
/// volume group has not the room.
pub fn extend(name: &str, size: u64, backups: &Path) -> anyhow::Result<()> {
    let now = lv_size(name, backups)?.with_context(|| format!("there is no logical volume {name}"))?;
    if now >= size {
        return Ok(());
    }
    let free = vg_free(backups)?;
    if size - now > free {
        bail!(
            "volume {name} needs {} more, and the data partition has {} free",
            show_size(size - now),
            show_size(free)
        );
    }
    lvm("lvextend", backups)
        .args(["-L", &format!("{size}b"), &format!("{VG}/{name}")])
        .run()
        .with_context(|| format!("extending logical volume {name}"))?;
    Ok(())
}

/// Removes logical volume `name` and its data.
pub fn remove(name: &str, backups: &Path) -> anyhow::Result<()> {
    lvm("lvremove", backups)
        .args(["-y", &format!("{VG}/{name}")])
        .run()
        .with_context(|| format!("removing logical volume {name}"))?;
    Ok(())
}

/// The size of logical volume `name`, if there is one.
pub fn lv_size(name: &str, backups: &Path) -> anyhow::Result<Option<u64>> {
    let text = lvm("lvs", backups)
        .args(["--noheadings", "--units", "b", "--nosuffix", "-o", "lv_name,lv_size", VG])
        .run_text()
        .context("listing the logical volumes")?;
    Ok(text.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next() == Some(name)).then(|| w.next().and_then(|s| s.parse().ok())).flatten()
    }))
}

/// The word in the name of a snapshot that keeps a volume's divergent data.
pub const DIVERGENT: &str = "divergent";

/// A snapshot of volume `origin` as it is now, named `ORIGIN-divergent-STAMP`, as large as the
/// volume (so it holds whatever is overwritten after). Refused, before anything is made, when
/// the volume group has not that much free.
pub fn snapshot(origin: &str, stamp: u64, backups: &Path) -> anyhow::Result<String> {
    let size = lv_size(origin, backups)?.with_context(|| format!("there is no logical volume {origin}"))?;
    let free = vg_free(backups)?;
    if size > free {
        bail!(
            "a snapshot of {origin} needs {} free in the volume group, and it has {}",
            show_size(size),
            show_size(free)
        );
    }
    let name = format!("{origin}-{DIVERGENT}-{stamp}");
    lvm("lvcreate", backups)
        .args(["-y", "-s", "-n", &name, "-L"])
        .arg(format!("{size}b"))
        .arg(format!("{VG}/{origin}"))
        .run()
        .with_context(|| format!("making snapshot {name}"))?;
    Ok(name)
}

/// The snapshots that keep divergent data: (snapshot, its volume).
pub fn divergent_snapshots(backups: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = lvm("lvs", backups)
        .args(["--noheadings", "-o", "lv_name,origin", VG])
        .run_text()
        .context("listing the logical volumes")?;
    Ok(parse_snapshots(&text))
}

fn parse_snapshots(lvs: &str) -> Vec<(String, String)> {
    lvs.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (name, origin) = (w.next()?, w.next()?);
            name.contains(&format!("-{DIVERGENT}-")).then(|| (name.to_owned(), origin.to_owned()))
        })
        .collect()
}

/// The data partition on the disk whose partition is mounted at `state_mount` (`/state`),
/// found through sysfs (the node has no udev): the partition named [`DATA_LABEL`].
pub fn data_partition(state_mount: &Path) -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    let source = mounts.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        let (dev, at) = (w.next()?, w.next()?);
        (Path::new(at) == state_mount).then(|| dev.to_owned())
    })?;
    let part = Path::new(&source).file_name()?.to_str()?.to_owned();
    // /sys/class/block/vda4 -> ../../devices/.../block/vda/vda4: the disk is the parent.
    let real = std::fs::canonicalize(Path::new("/sys/class/block").join(&part)).ok()?;
    let disk = real.parent()?;
    std::fs::read_dir(disk).ok()?.flatten().find_map(|e| {
        let uevent = std::fs::read_to_string(e.path().join("uevent")).ok()?;
        let named = uevent.lines().any(|l| l == format!("PARTNAME={DATA_LABEL}"));
        let dev = uevent.lines().find_map(|l| l.strip_prefix("DEVNAME="))?;
        named.then(|| PathBuf::from("/dev").join(dev))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divergent_snapshots_are_told_from_volumes_and_other_snapshots() {
        let lvs = "  data\n  raw\n  raw-divergent-1796243666 raw\n  other-snap raw\n";
        assert_eq!(parse_snapshots(lvs), [("raw-divergent-1796243666".to_owned(), "raw".to_owned())]);
    }
}
