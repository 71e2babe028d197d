//! The disk boots under BIOS too, for the certified boards whose firmware is set to legacy boot
//! and for iPXE's `sanboot` of a BIOS node told to boot its disk: syslinux (Debian's, the field's
//! standard for FAT) in the ESP loads the same kernel and initramfs the UKI holds (the PXE set's,
//! in `/pairos/pxe`) with the same command line, and syslinux's `gptmbr.bin` in the protective
//! MBR boots the partition marked legacy-BIOS-bootable, the ESP. UEFI firmware ignores both.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use pairos_host::Cmd;

use crate::stages::StageError;

/// syslinux's MBR boot code for GPT disks (440 bytes).
pub const GPTMBR: &str = "/usr/lib/syslinux/mbr/gptmbr.bin";
/// syslinux's core module, which must sit beside its configuration and match its boot sector.
pub const LDLINUX_C32: &str = "/usr/lib/syslinux/modules/bios/ldlinux.c32";
/// Where syslinux's files live in the ESP.
pub const DIR: &str = "/syslinux";
/// The MBR boot code's size: the protective MBR's first 440 bytes.
const BOOTCODE: usize = 440;

/// `syslinux.cfg`: boot `kernel` with `initrd` and `cmdline` at once, with no menu.
pub fn config(kernel: &str, initrd: &str, cmdline: &str) -> String {
    format!(
        "# pairos: the disk's BIOS boot, the same kernel, initramfs and command line as the UKI's.\n\
         DEFAULT pairos\nPROMPT 0\nTIMEOUT 0\nLABEL pairos\n  LINUX {kernel}\n  INITRD {initrd}\n  APPEND {cmdline}\n"
    )
}

/// The BIOS boot's files for the ESP, made in `work`: (path in the ESP, file). `kernel` and
/// `initrd` are paths in the ESP.
pub fn esp_files(
    work: &Path,
    kernel: &str,
    initrd: &str,
    cmdline: &str,
) -> Result<Vec<(String, PathBuf)>, StageError> {
    let cfg = work.join("syslinux.cfg");
    std::fs::write(&cfg, config(kernel, initrd, cmdline)).map_err(StageError::io(&cfg))?;
    let ldlinux = work.join("ldlinux.c32");
    std::fs::copy(LDLINUX_C32, &ldlinux).map_err(StageError::io(Path::new(LDLINUX_C32)))?;
    Ok(vec![(format!("{DIR}/syslinux.cfg"), cfg), (format!("{DIR}/ldlinux.c32"), ldlinux)])
}

/// Installs syslinux's boot sector and `ldlinux.sys` into the FAT image `esp` (the mtools
/// installer: no mount, no loop device). mtools stamps the files with SOURCE_DATE_EPOCH.
pub fn install(esp: &Path, epoch: u64) -> Result<(), StageError> {
    Cmd::new("syslinux")
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .env("TZ", "UTC")
        .args(["--directory", DIR, "--install"])
        .arg(esp)
        .run()
        .map_err(|source| StageError::Tool {
            what: format!("installing syslinux into {}", esp.display()),
            source,
        })?;
    copy_boot_sector_to_backup(esp)
}

/// syslinux writes its boot code into the FAT32 boot sector only; the backup boot sector (its
/// sector number at offset 50 of the boot sector) gets the same, so that fsck finds the two alike.
fn copy_boot_sector_to_backup(esp: &Path) -> Result<(), StageError> {
    let f = std::fs::OpenOptions::new().read(true).write(true).open(esp).map_err(StageError::io(esp))?;
    let mut sector = [0u8; 512];
    f.read_exact_at(&mut sector, 0).map_err(StageError::io(esp))?;
    let backup = u64::from(u16::from_le_bytes([sector[50], sector[51]]));
    if backup == 0 || backup == 0xffff {
        return Ok(());
    }
    f.write_all_at(&sector, backup * 512).map_err(StageError::io(esp))
}

/// Writes syslinux's GPT MBR boot code into the first 440 bytes of `disk` (the rest of the
/// protective MBR is the partition table's).
pub fn write_mbr(disk: &Path) -> Result<(), StageError> {
    let code = std::fs::read(GPTMBR).map_err(StageError::io(Path::new(GPTMBR)))?;
    if code.len() != BOOTCODE {
        return Err(StageError::Parse {
            what: GPTMBR.into(),
            text: format!("{} bytes, expected {BOOTCODE}", code.len()),
        });
    }
    let f = std::fs::OpenOptions::new().write(true).open(disk).map_err(StageError::io(disk))?;
    f.write_all_at(&code, 0).map_err(StageError::io(disk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_boots_the_pxe_sets_kernel_with_the_disks_command_line_and_no_menu() {
        let c = config("/pairos/pxe/vmlinuz", "/pairos/pxe/initrd.img", "console=ttyS0 roothash=ab12");
        assert!(c.contains("DEFAULT pairos\nPROMPT 0\nTIMEOUT 0\n"), "{c}");
        assert!(c.contains("  LINUX /pairos/pxe/vmlinuz\n  INITRD /pairos/pxe/initrd.img\n"), "{c}");
        assert!(c.ends_with("  APPEND console=ttyS0 roothash=ab12\n"), "{c}");
    }
}
