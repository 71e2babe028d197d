//! Stage 1, fetch: the Debian packages the image takes files from directly (the kernel, the
//! systemd-boot EFI stub, iPXE), through the machine's apt, checked against apt's index.

use std::path::{Path, PathBuf};

use crate::debian::{self, PackageVersion};
use crate::kmod::KernelTree;
use crate::stages::StageError;

pub const STUB: &str = "usr/lib/systemd/boot/efi/linuxx64.efi.stub";
/// iPXE binaries the PXE set serves, where Debian's ipxe package puts them: BIOS (through the
/// firmware's UNDI driver), UEFI through the firmware's SNP driver, and UEFI with iPXE's own.
pub const IPXE: [&str; 3] = ["usr/lib/ipxe/undionly.kpxe", "usr/lib/ipxe/snponly.efi", "boot/ipxe.efi"];

#[derive(Debug)]
pub struct Fetched {
    pub kernel: KernelTree,
    pub stub: PathBuf,
    pub ipxe: Vec<PathBuf>,
    pub packages: Vec<PackageVersion>,
}

pub fn run(cache: &Path) -> Result<Fetched, StageError> {
    let debs = cache.join("debs");
    std::fs::create_dir_all(&debs).map_err(StageError::io(&debs))?;
    let kernel_pkg = debian::kernel_package()?;
    let kernel_tree = debian::unpacked(&kernel_pkg, &debs)?;
    let kernel = KernelTree::open(&kernel_tree)?;

    let boot_pkg = debian::candidate("systemd-boot-efi")?;
    let stub = debian::unpacked(&boot_pkg, &debs)?.join(STUB);
    if !stub.is_file() {
        return Err(StageError::Missing { what: "the systemd-boot EFI stub".into(), path: stub });
    }

    let ipxe_pkg = debian::candidate("ipxe")?;
    let ipxe_root = debian::unpacked(&ipxe_pkg, &debs)?;
    let mut ipxe = Vec::new();
    for name in IPXE {
        let path = ipxe_root.join(name);
        if !path.is_file() {
            return Err(StageError::Missing { what: format!("iPXE's {name}"), path });
        }
        ipxe.push(path);
    }
    Ok(Fetched { kernel, stub, ipxe, packages: vec![kernel_pkg, boot_pkg, ipxe_pkg] })
}
