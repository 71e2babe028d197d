//! Stage 8, the ISO: a hybrid image for DVD and USB, made with xorriso. It boots under UEFI
//! (an El Torito EFI image holding the installer UKI, also a GPT partition for USB sticks)
//! into the installer mode, and carries the disk image with its own signed manifest in
//! `/image`, which the installer writes to the target disk.

use std::path::Path;

use pairos_host::Cmd;

use crate::stages::disk::fat_image;
use crate::stages::StageError;

#[derive(Debug)]
pub struct IsoParts<'a> {
    pub installer_uki: &'a Path,
    /// Files for `/image` on the ISO: (name, source).
    pub image_files: Vec<(&'a str, &'a Path)>,
    pub version: &'a str,
    pub epoch: u64,
}

/// Sets every file's and folder's mtime below `dir` to `epoch`: xorriso records them.
fn stamp_tree(dir: &Path, epoch: u64) -> Result<(), StageError> {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch);
    for entry in std::fs::read_dir(dir).map_err(StageError::io(dir))? {
        let path = entry.map_err(StageError::io(dir))?.path();
        if path.is_dir() {
            stamp_tree(&path, epoch)?;
        } else {
            let f = std::fs::File::options().write(true).open(&path).map_err(StageError::io(&path))?;
            f.set_modified(time).map_err(StageError::io(&path))?;
        }
    }
    // Folders last: placing files in them changed their times.
    std::fs::File::open(dir).and_then(|f| f.set_modified(time)).map_err(StageError::io(dir))
}

pub fn run(p: &IsoParts<'_>, work: &Path, out: &Path) -> Result<(), StageError> {
    let staging = work.join("iso-root");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(staging.join("boot")).map_err(StageError::io(&staging))?;
    std::fs::create_dir_all(staging.join("image")).map_err(StageError::io(&staging))?;

    let uki_mib = std::fs::metadata(p.installer_uki).map_err(StageError::io(p.installer_uki))?.len() >> 20;
    // FAT32 needs 33 MiB at least; leave room for the FAT itself.
    let efiboot = staging.join("boot/efiboot.img");
    fat_image(
        &efiboot,
        (uki_mib + 8).max(40),
        "PAIROS-EFI",
        &[("/EFI/BOOT/BOOTX64.EFI", p.installer_uki)],
        p.epoch,
    )?;
    for (name, src) in &p.image_files {
        let dest = staging.join("image").join(name);
        // A hard link where the file system allows it: the disk image is hundreds of MiB.
        if std::fs::hard_link(src, &dest).is_err() {
            std::fs::copy(src, &dest).map_err(StageError::io(src))?;
        }
    }

    stamp_tree(&staging, p.epoch)?;
    let iso = out.join("pairos.iso");
    let _ = std::fs::remove_file(&iso);
    Cmd::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-iso-level", "3", "-rational-rock", "-volid"])
        .arg(
            format!("PAIROS_{}", p.version.replace(['.', '-', '+', '~'], "_"))
                .chars()
                .take(32)
                .collect::<String>(),
        )
        .args(["-eltorito-alt-boot", "-e", "boot/efiboot.img", "-no-emul-boot", "-isohybrid-gpt-basdat"])
        .arg("-output")
        .arg(&iso)
        .arg(&staging)
        .env("SOURCE_DATE_EPOCH", p.epoch.to_string())
        .run()?;
    Ok(())
}
