//! Lab scenario for the ISO installer. The ISO's own boot file (the installer UKI from its El
//! Torito image) boots under OVMF with the management network on its kernel command line, as
//! a boot loader would pass it; the ISO is the node's DVD. It installs onto the blank system
//! disk. The installed disk then boots alone, as node-1 of a new pair, with the management
//! address on its public port, where a host on the public network reaches it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pairos_host::Cmd;
use pairos_lab::{blank_disk, image, DirectBoot, DiskBus, Firmware, Lab, LabError, NicModel, VmSpec};

const BOOT: Duration = Duration::from_secs(400);
const WRITE: Duration = Duration::from_secs(900);
const GIB: u64 = 1 << 30;

/// The installer UKI, as the ISO's firmware boot path holds it.
fn iso_boot_file(iso: &Path, dir: &Path) -> Result<PathBuf, LabError> {
    let img = dir.join("efiboot.img");
    let efi = dir.join("installer.efi");
    let _ = std::fs::remove_file(&img);
    let _ = std::fs::remove_file(&efi);
    Cmd::new("osirrox").arg("-indev").arg(iso).arg("-extract").arg("/boot/efiboot.img").arg(&img).run()?;
    Cmd::new("mcopy").arg("-i").arg(&img).arg("::/EFI/BOOT/BOOTX64.EFI").arg(&efi).run()?;
    Ok(efi)
}

#[test]
fn the_iso_installs_a_blank_disk_that_then_boots_with_its_management_address() -> Result<(), LabError> {
    let out = image::default_image()?;
    let mut lab = Lab::new("iso-install")?;
    let iso = out.join("pairos.iso");
    let efi = iso_boot_file(&iso, lab.dir())?;
    let disk = lab.dir().join("system.raw");
    blank_disk(&disk, 10 * GIB)?;

    let append = "console=tty0 console=ttyS0,115200 panic=30 pairos.mode=install \
                  pairos.address=192.168.77.10/24 pairos.gateway=192.168.77.1";
    let mut installer = lab.start(
        VmSpec::new("installer")
            .firmware(Firmware::Ovmf)
            .exit_on_reboot()
            .direct_boot(DirectBoot { kernel: efi, initrd: None, append: append.into() })
            .nic("private", NicModel::VirtioNet)
            .nic("public", NicModel::VirtioNet)
            .disk(&disk, DiskBus::Virtio)
            .disk(&iso, DiskBus::Cdrom),
    )?;
    installer.wait_for("pairos-install: management network 192.168.77.10/24 via 192.168.77.1", BOOT)?;
    installer.wait_for("board qemu-q35, certified; its system disk is /dev/vda", BOOT)?;
    installer.wait_for("pairos-install: installation medium /dev/sr0", BOOT)?;
    installer.wait_for("\"class\":\"blank\"", BOOT)?;
    installer.wait_for("pairos-install: image written", WRITE)?;
    let done = installer.wait_for("pairos-install: installed pairos", BOOT)?;
    assert!(done.contains("on /dev/vda as node-1 of a new pair"), "{done}");
    installer.kill();

    // The installed disk boots by itself, and its management address answers on the public link.
    let host = lab.endpoint("public", "admin", "192.168.77.1/24")?;
    let mut node = lab.start(
        VmSpec::new("installed")
            .firmware(Firmware::Ovmf)
            .nic("private", NicModel::VirtioNet)
            .nic("public", NicModel::VirtioNet)
            .boot_disk(&disk, DiskBus::Virtio),
    )?;
    node.wait_for("pairos run: node-1 of pair", BOOT)?;
    node.wait_for("pairos run: management address 192.168.77.10/24 via 192.168.77.1 on", BOOT)?;
    node.wait_for("pairos run: ready", BOOT)?;
    assert!(!node.console().text().contains("first run"), "the installer wrote the identity");
    let ping = host.ns.cmd("ping").args(["-c", "3", "-W", "5", "192.168.77.10"]).run();
    assert!(ping.is_ok(), "the management address answers: {ping:?}");
    Ok(())
}
