//! Lab scenarios for the image that `pairos build` makes: the disk boots under OVMF to
//! `pairos run`, on a read-only root that dm-verity protects; a tampered root is refused; the
//! ISO boots into the installer, which asks for the management network and refuses a machine
//! that is not a certified board.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use pairos_image::manifest::Manifest;
use pairos_lab::{disk_from_image, image, DiskBus, Firmware, Lab, LabError, NicModel, Vm, VmSpec};

/// OVMF under TCG, then the kernel, module loading and a full verity check of the root.
const BOOT: Duration = Duration::from_secs(300);
const COMMAND: Duration = Duration::from_secs(60);
const GIB: u64 = 1 << 30;

fn manifest(dir: &Path) -> Manifest {
    Manifest::parse(&std::fs::read(dir.join("manifest.json")).expect("manifest")).expect("valid manifest")
}

/// A q35 node under OVMF whose 8 GiB system disk starts as a copy of `disk_raw`.
fn boot_disk(lab: &mut Lab, disk_raw: &Path) -> Result<Vm, LabError> {
    let disk = lab.dir().join("system.raw");
    disk_from_image(disk_raw, &disk, 8 * GIB)?;
    lab.start(
        VmSpec::new("node")
            .memory_mib(1024)
            .firmware(Firmware::Ovmf)
            .nic("private", NicModel::VirtioNet)
            .nic("public", NicModel::VirtioNet)
            .boot_disk(&disk, DiskBus::Virtio),
    )
}

#[test]
fn the_disk_image_boots_to_pairos_run_on_a_verified_read_only_root() -> Result<(), LabError> {
    let out = image::default_image()?;
    let m = manifest(&out);
    let mut lab = Lab::new("image-boot")?;
    let mut vm = boot_disk(&mut lab, &out.join("disk.raw"))?;

    vm.wait_for("first boot: making the state partition", BOOT)?;
    vm.wait_for("root A verified against the root hash", BOOT)?;
    vm.wait_for(&format!("pairos run: pairos {} starting", m.version), BOOT)?;
    vm.wait_for("pairos run: board qemu-q35, certified", BOOT)?;
    vm.wait_for("pairos run: ready", BOOT)?;

    let (rc, out_text) = vm.run("pairos boards check", COMMAND)?;
    assert_eq!(rc, 0, "{out_text}");
    assert!(out_text.contains("certified: qemu-q35"), "{out_text}");

    // The root is the verity device, mounted read-only; writing to it fails.
    let (_, mounts) = vm.run("cat /proc/mounts", COMMAND)?;
    let root = mounts.lines().find(|l| l.split_whitespace().nth(1) == Some("/")).unwrap_or_default();
    assert!(root.starts_with("/dev/mapper/root / squashfs ro"), "root mount: {root:?}\n{mounts}");
    let (rc, _) = vm.run("touch /usr/pairos-was-here", COMMAND)?;
    assert_ne!(rc, 0, "the root must be read-only");
    let (rc, table) = vm.run("veritysetup status root", COMMAND)?;
    assert_eq!(rc, 0, "{table}");
    assert!(table.contains("verified"), "{table}");
    assert!(mounts.lines().any(|l| l.contains(" /state ext4 rw")), "state partition mounted:\n{mounts}");
    Ok(())
}

#[test]
fn a_root_with_one_flipped_byte_is_refused() -> Result<(), LabError> {
    let out = image::default_image()?;
    let m = manifest(&out);
    let mut lab = Lab::new("image-tampered")?;
    let tampered = lab.dir().join("tampered.raw");
    pairos_host::Cmd::new("cp").arg("--sparse=always").arg(out.join("disk.raw")).arg(&tampered).run()?;
    // One byte, 1 MiB into root A: inside the squashfs, which is tens of MiB.
    let root_a = m.disk.layout.partition("root-a").expect("root-a").offset();
    let f = std::fs::OpenOptions::new().read(true).write(true).open(&tampered).expect("open copy");
    let mut byte = [0u8];
    f.read_exact_at(&mut byte, root_a + (1 << 20)).expect("read");
    f.write_all_at(&[byte[0] ^ 0xff], root_a + (1 << 20)).expect("flip");
    drop(f);

    let mut vm = boot_disk(&mut lab, &tampered)?;
    vm.fail_on(&["pairos run: ready"]);
    let line = vm.wait_for("does not match the root hash", BOOT)?;
    assert!(line.contains("FATAL: root A on /dev/vda2"), "{line}");
    vm.wait_for("refusing to boot", COMMAND)?;
    assert!(!vm.console().text().contains("pairos run: ready"));
    Ok(())
}

#[test]
fn the_iso_boots_into_the_installer_mode() -> Result<(), LabError> {
    let out = image::default_image()?;
    let mut lab = Lab::new("image-iso")?;
    let blank = lab.dir().join("blank.raw");
    pairos_lab::blank_disk(&blank, 8 * GIB)?;
    let mut vm = lab.start(
        VmSpec::new("node")
            .memory_mib(1024)
            .firmware(Firmware::Ovmf)
            .boot_disk(&out.join("pairos.iso"), DiskBus::Cdrom)
            .disk(&blank, DiskBus::Virtio),
    )?;
    vm.wait_for("pairos-init: installer mode (pairos.mode=install)", BOOT)?;
    // Without parameters on the command line it asks for the management network, and only that.
    vm.wait_for("the management network, please", BOOT)?;
    // The console's line discipline keeps what is typed until the installer reads it, so each
    // answer can go as soon as its question is due; nothing waits on a clock.
    vm.console().send_line("192.168.77.300/24")?;
    vm.wait_for("expected an IPv4 address with its prefix length", BOOT)?;
    for answer in ["192.168.77.20/24", "192.168.77.1", ""] {
        vm.console().send_line(answer)?;
    }
    vm.wait_for("pairos-install: management network 192.168.77.20/24 via 192.168.77.1", BOOT)?;
    // This VM has no NICs: not a certified board, so nothing is installed, and it says why.
    vm.wait_for("not a certified board; pairos will not be installed", BOOT)?;
    vm.wait_for("private-link NIC", BOOT)?;
    Ok(())
}
