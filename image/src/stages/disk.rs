//! Stage 7, disk: `disk.raw`, a GPT disk made with the gpt crate, holding the ESP (FAT, with
//! the UKI as \EFI\BOOT\BOOTX64.EFI), root A with verity A, and an empty root B with verity B.
//! The state and data partitions are made on the node at first boot, never here.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use pairos_host::Cmd;

use crate::layout::DiskLayout;
use crate::partition_table::write_gpt;
use crate::stages::StageError;

/// A FAT32 file system image of `size_mib` holding `files` (path on FAT, source file).
/// mkfs.fat's --invariant and mtools' SOURCE_DATE_EPOCH make it reproducible.
pub fn fat_image(
    out: &Path,
    size_mib: u64,
    label: &str,
    files: &[(&str, &Path)],
    epoch: u64,
) -> Result<(), StageError> {
    let _ = std::fs::remove_file(out);
    let volid = &crate::digest::sha256_hex(label.as_bytes())[..8];
    Cmd::new("mkfs.fat")
        .args(["-C", "-F", "32", "-n", label, "-i", volid, "--invariant"])
        .arg(out)
        .arg((size_mib * 1024).to_string())
        .run()?;
    let mtools = |cmd: &str| Cmd::new(cmd).env("SOURCE_DATE_EPOCH", epoch.to_string()).env("TZ", "UTC");
    for (fat_path, src) in files {
        let mut dirs = Vec::new();
        let mut acc = String::new();
        for part in fat_path
            .trim_start_matches('/')
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |(_, d)| d)
        {
            acc = format!("{acc}/{part}");
            dirs.push(format!("::{acc}"));
        }
        for d in dirs {
            // An existing folder is fine; mmd says so and fails, which we do not treat as an error.
            let _ = mtools("mmd").arg("-i").arg(out).arg(&d).succeeds();
        }
        // mcopy -m keeps the file's mtime in the directory entry: make it the build's epoch.
        let file = std::fs::File::options().write(true).open(src).map_err(StageError::io(src))?;
        file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch))
            .map_err(StageError::io(src))?;
        mtools("mcopy").arg("-m").arg("-i").arg(out).arg(src).arg(format!("::{fat_path}")).run()?;
    }
    Ok(())
}

/// Makes `out/disk.raw` (sparse) from the layout and the partition payloads.
pub fn run(layout: &DiskLayout, payloads: &[(&str, &Path)], out: &Path) -> Result<PathBuf, StageError> {
    let path = out.join("disk.raw");
    let _ = std::fs::remove_file(&path);
    let file = std::fs::File::create_new(&path).map_err(StageError::io(&path))?;
    file.set_len(layout.size).map_err(StageError::io(&path))?;
    let file = write_gpt(&path, file, layout)?;
    for (name, src) in payloads {
        let part = layout.partition(name).ok_or_else(|| StageError::Disk {
            path: path.clone(),
            message: format!("no partition named {name} in the layout"),
        })?;
        let data = std::fs::read(src).map_err(StageError::io(src))?;
        if data.len() as u64 > part.size() {
            return Err(StageError::TooBig {
                what: format!("{name}'s contents"),
                size: data.len() as u64,
                room: part.size(),
            });
        }
        // Whole zero blocks are skipped so that the file stays sparse.
        for (i, block) in data.chunks(1 << 16).enumerate() {
            if block.iter().any(|&b| b != 0) {
                file.write_all_at(block, part.offset() + (i as u64) * (1 << 16))
                    .map_err(StageError::io(&path))?;
            }
        }
    }
    file.sync_all().map_err(StageError::io(&path))?;
    Ok(path)
}
