//! The state partition: the node's own writable data (identity, configuration, leases). It is
//! never part of the image; the first boot makes it in the free space after the image's
//! partitions and the MiB that carries the disk's signed manifest. If the disk is larger than the image (it always is), the GPT is rewritten
//! first so that its backup header sits at the disk's real end.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount, MsFlags};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use pairos_host::Cmd;
use pairos_image::layout::{derived_guid, PartitionEntry, GPT_SECTORS, SECTOR, STATE_LABEL, TYPE_VAR};

use super::disks::{disk_size, partition_path, read_gpt};
use super::say;

/// The state partition's size; a smaller disk gets what is left, down to MIN.
const STATE_MIB: u64 = 1024;
const MIN_STATE_MIB: u64 = 128;

/// Asks the kernel to read `disk`'s partition table again: busybox's blockdev in the
/// initramfs, util-linux's on a host.
fn reread_table(disk: &Path) -> anyhow::Result<()> {
    const BUSYBOX: &str = "/usr/bin/busybox";
    let cmd =
        if Path::new(BUSYBOX).is_file() { Cmd::new(BUSYBOX).arg("blockdev") } else { Cmd::new("blockdev") };
    cmd.arg("--rereadpt").arg(disk).run()?;
    Ok(())
}

/// The state partition's device, made (and formatted) first if the disk has none.
pub fn ensure(disk: &Path) -> anyhow::Result<PathBuf> {
    let parts = read_gpt(disk).with_context(|| format!("reading the GPT of {}", disk.display()))?;
    if let Some((n, _)) =
        parts.iter().find(|(_, p)| p.part_type_guid.guid == TYPE_VAR && p.name == STATE_LABEL)
    {
        return Ok(partition_path(disk, *n));
    }
    say(format_args!("first boot: making the state partition on {}", disk.display()));
    let entry = add_partition(disk, disk_size(disk)?)?;
    // The kernel re-reads the table (nothing on this disk is in use yet).
    let dev = wait_for_partition(disk, entry.number)?;
    format(&dev)?;
    say(format_args!("state partition {} made ({} MiB, ext4)", dev.display(), entry.size() >> 20));
    Ok(dev)
}

/// Makes the state file system on `dev`.
pub fn format(dev: &Path) -> anyhow::Result<()> {
    Cmd::new("mke2fs").args(["-q", "-t", "ext4", "-L", STATE_LABEL]).arg(dev).run()?;
    Ok(())
}

/// Adds the state partition to `disk`'s GPT (a device, or a disk image file of `size` bytes):
/// after the image's partitions and the manifest record's MiB, up to 1 GiB. The backup header
/// moves to the real end. Returns the new entry.
pub fn add_partition(disk: &Path, size: u64) -> anyhow::Result<PartitionEntry> {
    let parts = read_gpt(disk).with_context(|| format!("reading the GPT of {}", disk.display()))?;
    let last_usable = size / SECTOR - GPT_SECTORS - 1;
    let end_used = parts.iter().map(|(_, p)| p.last_lba).max().unwrap_or(0);
    let record = pairos_image::manifest_record::offset_after(end_used);
    let first = (record + pairos_image::manifest_record::RESERVED) / SECTOR;
    let room_mib = (last_usable.saturating_sub(first) * SECTOR) >> 20;
    if room_mib < MIN_STATE_MIB {
        bail!("{} has {room_mib} MiB after the image's partitions; the state partition needs {MIN_STATE_MIB} MiB", disk.display());
    }
    let len = STATE_MIB.min(room_mib) * ((1 << 20) / SECTOR);
    append_partition(disk, size, STATE_LABEL, TYPE_VAR, "state", first, len)
}

/// Appends a partition to `disk`'s GPT (a device, or a disk image file of `size` bytes), from
/// LBA `first` for `len` sectors, its GUID derived from the disk's and `purpose`; the backup
/// header moves to the real end. Nothing is written into the partition.
pub fn append_partition(
    disk: &Path,
    size: u64,
    name: &str,
    type_guid: pairos_image::layout::Uuid,
    purpose: &str,
    first: u64,
    len: u64,
) -> anyhow::Result<PartitionEntry> {
    let parts = read_gpt(disk).with_context(|| format!("reading the GPT of {}", disk.display()))?;
    let number = parts.iter().map(|(n, _)| *n).max().unwrap_or(0) + 1;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(disk)
        .with_context(|| format!("opening {} for writing", disk.display()))?;
    let old = gpt::GptConfig::new().writable(false).open(disk)?;
    let disk_guid = *old.guid();
    let mut entries: Vec<PartitionEntry> = parts
        .iter()
        .map(|(n, p)| PartitionEntry {
            number: *n,
            name: p.name.clone(),
            type_guid: p.part_type_guid.guid,
            guid: p.part_guid,
            first_lba: p.first_lba,
            last_lba: p.last_lba,
        })
        .collect();
    let entry = PartitionEntry {
        number,
        name: name.into(),
        type_guid,
        guid: derived_guid(disk_guid.as_bytes(), purpose),
        first_lba: first,
        last_lba: first + len - 1,
    };
    entries.push(entry.clone());
    let layout = pairos_image::layout::DiskLayout { guid: disk_guid, size, partitions: entries };
    let file = pairos_image::partition_table::write_gpt(disk, file, &layout)?;
    file.sync_all()?;
    Ok(entry)
}

/// Re-reads `disk`'s table and waits for partition `number`'s device.
pub fn wait_for_partition(disk: &Path, number: u32) -> anyhow::Result<PathBuf> {
    reread_table(disk)?;
    let dev = partition_path(disk, number);
    let start = Instant::now();
    while !dev.exists() {
        if start.elapsed() > Duration::from_secs(10) {
            bail!("{} did not appear after re-reading the partition table", dev.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(dev)
}

/// After an image was written to `disk` (a block device): makes its state partition and puts `files` (name,
/// bytes) into its `pairos/` folder, the node's identity and configuration before its first
/// boot.
pub fn seed(disk: &Path, files: &[(&str, Vec<u8>)]) -> anyhow::Result<()> {
    reread_table(disk)?;
    let dev = ensure(disk)?;
    populate(&dev, files)
}

/// Mounts the state file system on `dev` and writes `files` into its `pairos/` folder.
pub fn populate(dev: &Path, files: &[(&str, Vec<u8>)]) -> anyhow::Result<()> {
    let dir = Path::new("/run/pairos/new-state");
    std::fs::create_dir_all(dir).with_context(|| format!("making {}", dir.display()))?;
    mount(Some(dev), dir, Some("ext4"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, None::<&str>)
        .with_context(|| format!("mounting {}", dev.display()))?;
    let written = files.iter().try_for_each(|(name, bytes)| {
        crate::pair::identity::write_atomically(&dir.join("pairos").join(name), bytes)
    });
    let unmounted = umount(dir).with_context(|| format!("unmounting {}", dev.display()));
    written?;
    unmounted?;
    nix::unistd::sync();
    Ok(())
}
