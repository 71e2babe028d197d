//! What a resume record is bound to: the disk it was started on. A record that lets a write
//! skip its safety checks (a half-written disk looks like anything) must never be honoured on
//! another disk, even one of the same size at the same path.
//!
//! The identity is the disk's size, its serial or WWN where the kernel knows one (a file's
//! inode), and the
//! sha256 of its first and last MiB as they were when the record was started, leaving out the
//! bytes that this write changes before it ends (its data chunks and must-be-zero ranges). The
//! partition table and the record are written last, so the rest of those two MiB stays as it
//! was until the write is complete. Two blank disks of one size without serial numbers look
//! alike; a disk with data at either end never looks like one without.

use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::Path;

use pairos_image::digest::sha256_hex;
use pairos_image::manifest::DiskMap;

const EDGE: u64 = 1 << 20;

/// What names the disk itself: the WWN or serial number the kernel reports for a block device
/// (a loop device's backing file), or a disk image file's device and inode numbers.
pub fn serial(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return Some(format!("file:{}:{}", meta.dev(), meta.ino()));
    }
    if !meta.file_type().is_block_device() {
        return None;
    }
    let name = std::fs::canonicalize(path).ok()?.file_name()?.to_string_lossy().into_owned();
    let dev = Path::new("/sys/class/block").join(&name);
    ["wwid", "device/wwid", "serial", "device/serial", "loop/backing_file"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(dev.join(f)).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
}

/// The identity of the disk open as `file` (at `path`, `size` bytes) for a write of `map`.
pub fn identity(file: &std::fs::File, path: &Path, size: u64, map: &DiskMap) -> std::io::Result<String> {
    let written: Vec<(u64, u64)> = map
        .chunks
        .iter()
        .filter(|c| !c.partition_table)
        .map(|c| (c.offset, c.offset + c.length))
        .chain(map.zero.iter().map(|r| (r.offset, r.end())))
        .collect();
    let mut edges = String::new();
    for start in [0, size.saturating_sub(EDGE)] {
        let len = EDGE.min(size);
        let mut buf = vec![0u8; len as usize];
        file.read_exact_at(&mut buf, start)?;
        for &(a, b) in &written {
            let (a, b) = (a.max(start), b.min(start + len));
            if a < b {
                buf[(a - start) as usize..(b - start) as usize].fill(0);
            }
        }
        edges.push(' ');
        edges.push_str(&sha256_hex(&buf)[..16]);
    }
    let serial = serial(path).unwrap_or_else(|| "-".into()).replace(char::is_whitespace, "_");
    Ok(format!("{size} {serial}{edges}"))
}
