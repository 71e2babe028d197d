//! Stage 7, the PXE boot set: what a peer serves a blank node on the private link.
//!
//! - `vmlinuz` and `initrd.img`, booted with `pairos.mode=recover`;
//! - `recover-bios.ipxe` and `recover-uefi.ipxe`. Under iPXE's EFI build the kernel only finds
//!   an initrd loaded with `--name NAME` if its command line says `initrd=NAME`, so both
//!   scripts name it (the BIOS kernel ignores the word);
//! - `pairos-recover.efi`, the UKI for firmware that boots an EFI file directly (HTTP boot);
//! - `ipxe/`: Debian's iPXE binaries for firmware PXE to chain into.

use std::path::Path;

use crate::stages::StageError;

pub fn ipxe_script(firmware: &str, cmdline: &str) -> String {
    format!(
        "#!ipxe\n\
         # pairos recovery boot ({firmware}); paths are relative to this script's URL.\n\
         echo pairos: booting the recovery environment\n\
         kernel vmlinuz initrd=initrd.img {cmdline}\n\
         initrd --name initrd.img initrd.img\n\
         boot\n"
    )
}

#[derive(Debug)]
pub struct PxeSet<'a> {
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    pub uki: &'a Path,
    pub ipxe: &'a [std::path::PathBuf],
    pub cmdline: &'a str,
}

pub fn run(p: &PxeSet<'_>, out: &Path) -> Result<(), StageError> {
    let dir = out.join("pxe");
    std::fs::create_dir_all(dir.join("ipxe")).map_err(StageError::io(&dir))?;
    let copy = |src: &Path, dest: &Path| -> Result<(), StageError> {
        std::fs::copy(src, dest).map(|_| ()).map_err(StageError::io(src))
    };
    copy(p.kernel, &dir.join("vmlinuz"))?;
    copy(p.initrd, &dir.join("initrd.img"))?;
    copy(p.uki, &dir.join("pairos-recover.efi"))?;
    for bin in p.ipxe {
        copy(bin, &dir.join("ipxe").join(bin.file_name().expect("a file name")))?;
    }
    for fw in ["bios", "uefi"] {
        let path = dir.join(format!("recover-{fw}.ipxe"));
        std::fs::write(&path, ipxe_script(fw, p.cmdline)).map_err(StageError::io(&path))?;
    }
    Ok(())
}
