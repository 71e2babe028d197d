//! Stage 6, the PXE boot set: what a peer serves a blank node on the private link.
//!
//! - `vmlinuz` and `initrd.img`, booted with `pairos.mode=recover`;
//! - `recover-bios.ipxe` and `recover-uefi.ipxe`. Under iPXE's EFI build the kernel only finds
//!   an initrd loaded with `--name NAME` if its command line says `initrd=NAME`, so both
//!   scripts name it (the BIOS kernel ignores the word);
//! - `pairos-recover.efi`, the UKI for firmware that boots an EFI file directly (HTTP boot);
//! - `ipxe/`: Debian's iPXE binaries for firmware PXE to chain into.
//!
//! The set also goes into the ESP, under [`ESP_DIR`], so that every installed node can serve
//! it to its peer; the signed manifest pins those bytes like the rest of the disk.
//!
//! The scripts pass what iPXE learnt to the recovery agent: the booting port's MAC, the address
//! and netmask it was given, and the server it booted from (the peer).

use std::path::Path;

use crate::stages::StageError;

/// Where the PXE set lives in the ESP.
pub const ESP_DIR: &str = "pairos/pxe";
/// The files of the set that a peer serves: the iPXE chain, and the UKI for UEFI HTTP boot.
pub const SERVED: [&str; 8] = [
    "vmlinuz",
    "initrd.img",
    "recover-bios.ipxe",
    "recover-uefi.ipxe",
    "pairos-recover.efi",
    "ipxe/undionly.kpxe",
    "ipxe/snponly.efi",
    "ipxe/ipxe.efi",
];
/// What the scripts add to the kernel command line, from iPXE's settings.
pub const IPXE_NET_ARGS: &str =
    "pairos.mac=${netX/mac} pairos.ip=${netX/ip} pairos.netmask=${netX/netmask} pairos.peer=${next-server}";

pub fn ipxe_script(firmware: &str, cmdline: &str) -> String {
    format!(
        "#!ipxe\n\
         # pairos recovery boot ({firmware}); paths are relative to this script's URL.\n\
         echo pairos: booting the recovery environment\n\
         kernel vmlinuz initrd=initrd.img {cmdline} {IPXE_NET_ARGS}\n\
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
