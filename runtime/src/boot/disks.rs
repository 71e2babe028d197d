//! Finding this image's partitions: root A and verity A carry the root hash's halves as their
//! partition UUIDs (Discoverable Partitions Specification), so the root hash on the command
//! line names them on whichever disk they are, with no labels and no guessing.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use gpt::partition::Partition;
use pairos_image::layout::{root_guid, verity_guid, TYPE_ROOT_VERITY_X86_64, TYPE_ROOT_X86_64};

#[derive(Debug, Clone)]
pub struct RootDisk {
    /// The whole disk, like /dev/vda.
    pub disk: PathBuf,
    pub root: PathBuf,
    pub verity: PathBuf,
}

/// The device node of partition `number` of `disk` (vda → vda2, nvme0n1 → nvme0n1p2).
pub fn partition_path(disk: &Path, number: u32) -> PathBuf {
    let name = disk.to_string_lossy();
    let sep = if name.ends_with(|c: char| c.is_ascii_digit()) { "p" } else { "" };
    PathBuf::from(format!("{name}{sep}{number}"))
}

/// Whole disks the kernel knows now.
fn disks() -> Vec<PathBuf> {
    const SKIP: [&str; 6] = ["loop", "ram", "zram", "dm-", "sr", "fd"];
    let Ok(entries) = std::fs::read_dir("/sys/block") else { return Vec::new() };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !SKIP.iter().any(|s| n.starts_with(s)))
        .map(|n| PathBuf::from("/dev").join(n))
        .collect();
    out.sort();
    out
}

/// The used entries of `disk`'s GPT, or None when it has none we can read.
pub fn read_gpt(disk: &Path) -> Option<Vec<(u32, Partition)>> {
    let gpt = gpt::GptConfig::new().writable(false).open(disk).ok()?;
    Some(gpt.partitions().iter().filter(|(_, p)| p.is_used()).map(|(n, p)| (*n, p.clone())).collect())
}

/// Waits (polling) until a disk holds root A and verity A for `root_hash`.
pub fn find_root(root_hash: &[u8; 32], timeout: Duration) -> anyhow::Result<RootDisk> {
    let (want_root, want_verity) = (root_guid(root_hash), verity_guid(root_hash));
    let start = Instant::now();
    loop {
        for disk in disks() {
            let Some(parts) = read_gpt(&disk) else { continue };
            let find =
                |guid, ty| parts.iter().find(|(_, p)| p.part_guid == guid && p.part_type_guid.guid == ty);
            let (Some((r, _)), Some((v, _))) =
                (find(want_root, TYPE_ROOT_X86_64), find(want_verity, TYPE_ROOT_VERITY_X86_64))
            else {
                continue;
            };
            let found = RootDisk { root: partition_path(&disk, *r), verity: partition_path(&disk, *v), disk };
            if found.root.exists() && found.verity.exists() {
                return Ok(found);
            }
        }
        if start.elapsed() > timeout {
            let seen: Vec<String> = disks().iter().map(|d| d.display().to_string()).collect();
            bail!(
                "no disk holds root A {want_root} and verity A {want_verity} for this root hash \
                 after {timeout:?} (disks seen: {})",
                if seen.is_empty() { "none".into() } else { seen.join(", ") }
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The device of `disk`'s ESP (the image's partition named `esp`, of the ESP type).
pub fn esp_of(disk: &Path) -> anyhow::Result<PathBuf> {
    let parts = read_gpt(disk).with_context(|| format!("reading the GPT of {}", disk.display()))?;
    let (n, _) = parts
        .iter()
        .find(|(_, p)| p.name == "esp" && p.part_type_guid.guid == pairos_image::layout::TYPE_ESP)
        .with_context(|| format!("{} has no ESP named esp", disk.display()))?;
    Ok(partition_path(disk, *n))
}

/// The disk's size in bytes, from sysfs.
pub fn disk_size(disk: &Path) -> anyhow::Result<u64> {
    let name = disk.file_name().context("disk path without a name")?;
    let path = Path::new("/sys/block").join(name).join("size");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.trim().parse::<u64>().with_context(|| format!("{}: not a number", path.display()))? * 512)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_follow_the_kernel() {
        assert_eq!(partition_path(Path::new("/dev/vda"), 2), PathBuf::from("/dev/vda2"));
        assert_eq!(partition_path(Path::new("/dev/nvme0n1"), 3), PathBuf::from("/dev/nvme0n1p3"));
        assert_eq!(partition_path(Path::new("/dev/sda"), 1), PathBuf::from("/dev/sda1"));
    }
}
