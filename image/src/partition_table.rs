//! Writing a GPT: the protective MBR, the primary and backup headers and the 128-entry array.
//! The build writes the image's table with it, and a node's first boot rewrites its own (to add
//! the state partition and move the backup header to the disk's real end).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gpt::disk::LogicalBlockSize;
use gpt::mbr::ProtectiveMBR;
use gpt::partition::Partition;
use gpt::partition_types::{OperatingSystem, Type};

use crate::layout::{DiskLayout, PartitionEntry, SECTOR};

/// The GPT attribute (bit 2) that BIOS boot code such as syslinux's `gptmbr.bin` looks for.
pub const LEGACY_BIOS_BOOTABLE: u64 = 1 << 2;
/// GPT arrays hold 128 entries, as every tool expects; unused ones are zero.
const GPT_ENTRIES: u32 = 128;

#[derive(Debug, thiserror::Error)]
#[error("writing the partition table of {}: {message}", disk.display())]
pub struct TableError {
    pub disk: PathBuf,
    pub message: String,
}

fn gpt_err(disk: &Path) -> impl Fn(gpt::GptError) -> TableError + '_ {
    move |e| TableError { disk: disk.to_owned(), message: e.to_string() }
}

/// Writes the GPT for `layout` into `file`: a protective MBR, and primary and backup tables with
/// the backup at the end of `file` as it is now (for a device, its real end).
pub fn write_gpt(
    disk_path: &Path,
    file: std::fs::File,
    layout: &DiskLayout,
) -> Result<std::fs::File, TableError> {
    let lbas = layout.size / SECTOR;
    let mut file = file;
    // The MBR's boot code (the BIOS boot's, `stages::bios_boot`) is kept: only the table changes.
    let bootcode = gpt::mbr::read_bootcode(&mut file)
        .map_err(|e| TableError { disk: disk_path.to_owned(), message: format!("reading its MBR: {e}") })?;
    let mut mbr = ProtectiveMBR::with_lb_size(u32::try_from(lbas - 1).unwrap_or(u32::MAX));
    mbr.set_bootcode(bootcode);
    mbr.overwrite_lba0(&mut file)
        .map_err(|e| TableError { disk: disk_path.to_owned(), message: e.to_string() })?;
    let mut gpt = gpt::GptConfig::new()
        .writable(true)
        .logical_block_size(LogicalBlockSize::Lb512)
        .create_from_device(file, Some(layout.guid))
        .map_err(gpt_err(disk_path))?;
    gpt.update_partitions(partition_map(&layout.partitions)).map_err(gpt_err(disk_path))?;
    gpt.write().map_err(gpt_err(disk_path))
}

/// The full 128-entry array for `entries`.
pub fn partition_map(entries: &[PartitionEntry]) -> BTreeMap<u32, Partition> {
    let mut map = BTreeMap::new();
    for n in 1..=GPT_ENTRIES {
        let part = match entries.iter().find(|p| p.number == n) {
            Some(p) => Partition {
                part_type_guid: Type { guid: p.type_guid, os: OperatingSystem::Linux },
                part_guid: p.guid,
                first_lba: p.first_lba,
                last_lba: p.last_lba,
                // The ESP is the partition the MBR's boot code boots under BIOS.
                flags: if p.type_guid == crate::layout::TYPE_ESP { LEGACY_BIOS_BOOTABLE } else { 0 },
                name: p.name.clone(),
            },
            None => Partition::zero(),
        };
        map.insert(n, part);
    }
    map
}
