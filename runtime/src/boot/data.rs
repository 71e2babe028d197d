//! The data partition: the rest of the disk after the state partition, for the pair's mirrored
//! volumes (an LVM volume group that `pairos run` makes on it). The first boot adds it to the
//! GPT, as it does the state partition; nothing is written into it here, so a disk that
//! already has one (of this node) keeps what it holds.

use std::path::{Path, PathBuf};

use anyhow::Context;
use pairos_image::layout::{GPT_SECTORS, SECTOR, TYPE_SRV};

use super::disks::{disk_size, partition_path, read_gpt};
use super::say;
use super::state::{append_partition, wait_for_partition};

pub use pairos_mirror::lvm::DATA_LABEL;
/// Less room than this after the state partition makes no data partition.
const MIN_DATA_MIB: u64 = 64;
const MIB_SECTORS: u64 = (1 << 20) / SECTOR;

/// The data partition's device: found, or added after the state partition when there is
/// room. `None` (said) when the disk has no room for one.
pub fn ensure(disk: &Path) -> anyhow::Result<Option<PathBuf>> {
    let parts = read_gpt(disk).with_context(|| format!("reading the GPT of {}", disk.display()))?;
    if let Some((n, _)) =
        parts.iter().find(|(_, p)| p.part_type_guid.guid == TYPE_SRV && p.name == DATA_LABEL)
    {
        return Ok(Some(partition_path(disk, *n)));
    }
    let size = disk_size(disk)?;
    let Some((first, len)) = room(size, parts.iter().map(|(_, p)| p.last_lba).max().unwrap_or(0)) else {
        say(format_args!("{} has no room for a data partition: this node has no volumes", disk.display()));
        return Ok(None);
    };
    say(format_args!(
        "first boot: making the data partition on {} ({} MiB)",
        disk.display(),
        len / MIB_SECTORS
    ));
    let entry = append_partition(disk, size, DATA_LABEL, TYPE_SRV, "data", first, len)?;
    Ok(Some(wait_for_partition(disk, entry.number)?))
}

/// Where a data partition goes on a disk of `size` bytes whose last partition ends at LBA
/// `end_used`: from the next MiB to the last whole MiB before the backup GPT, if that is at
/// least [`MIN_DATA_MIB`].
fn room(size: u64, end_used: u64) -> Option<(u64, u64)> {
    let first = (end_used + 1).div_ceil(MIB_SECTORS) * MIB_SECTORS;
    let last_usable = (size / SECTOR).checked_sub(GPT_SECTORS + 1)?;
    let len = (last_usable + 1).checked_sub(first)? / MIB_SECTORS * MIB_SECTORS;
    (len >= MIN_DATA_MIB * MIB_SECTORS).then_some((first, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_partition_takes_the_whole_mibs_left() {
        let gib = 1u64 << 30;
        // A 10 GiB disk whose state partition ends at 2 GiB - 1 sector.
        let (first, len) = room(10 * gib, 2 * gib / SECTOR - 1).expect("room");
        assert_eq!(first, 2 * gib / SECTOR);
        assert_eq!(len % MIB_SECTORS, 0);
        assert!((first + len) * SECTOR <= 10 * gib - (GPT_SECTORS + 1) * SECTOR + SECTOR);
        assert_eq!(len / MIB_SECTORS, 8 * 1024 - 1, "all but the MiB holding the backup GPT");
        // Too little room: none.
        assert_eq!(room(2 * gib + (32 << 20), 2 * gib / SECTOR - 1), None);
        assert_eq!(room(1 << 20, 1 << 20), None);
    }
}
