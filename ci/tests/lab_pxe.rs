//! Lab scenarios for network boot: a blank node, booting from the network first, on a private
//! link to `pairos pxe` serving the PXE set of our image build, reaches the recovery initramfs
//! under SeaBIOS and OVMF, with virtio-net and e1000e NICs. With the LocalBoot policy, a node
//! with an installed disk boots that disk after the PXE round.
//!
//! The NICs' option ROMs in QEMU are iPXE, which asks for its script at once. So that the chain
//! real servers take is proven too, OVMF with virtio-net runs without the ROM: OVMF's own PXE
//! asks first, loads snponly.efi over TFTP, and iPXE asks again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pairos_host::Child;
use pairos_lab::pxe::start_pxe;
use pairos_lab::{
    blank_disk, disk_from_image, image, DiskBus, Endpoint, Firmware, Lab, LabError, NicModel, VmSpec,
};

/// Firmware, PXE, 20 MB over HTTP, then the kernel to its initramfs, all under TCG.
const BOOT: Duration = Duration::from_secs(400);
const GIB: u64 = 1 << 30;

/// The lab with `pairos pxe --policy POLICY ARGS…` on its private link, serving the image's
/// PXE set.
fn lab_with_pxe(name: &str, policy: &str, args: &[&str]) -> Result<(Lab, Endpoint, Child), LabError> {
    let out = image::default_image()?;
    let mut lab = Lab::new(name)?;
    let server = lab.endpoint("private", "peer", "10.88.0.1/24")?;
    let leases = lab.dir().join("leases.json");
    let mut all = vec!["--policy", policy, "--lease-file", leases.to_str().unwrap_or("leases.json")];
    all.extend_from_slice(args);
    let pxe = start_pxe(&server, &out.join("pxe"), &all, &lab.dir().join("pxe.log"))?;
    Ok((lab, server, pxe))
}

fn pxe_log(lab: &Lab) -> String {
    std::fs::read_to_string(lab.dir().join("pxe.log")).unwrap_or_default()
}

/// A blank node (an empty disk after the NIC in the boot order) reaches the recovery initramfs.
fn blank_node_recovers(name: &str, firmware: Firmware, nic: NicModel) -> Result<(), LabError> {
    let (mut lab, _server, _pxe) = lab_with_pxe(name, "recover", &[])?;
    let disk = lab.dir().join("blank.raw");
    blank_disk(&disk, 8 * GIB)?;
    let firmware_pxe = firmware == Firmware::Ovmf && nic == NicModel::VirtioNet;
    let mut spec = VmSpec::new("blank")
        .memory_mib(1024)
        .firmware(firmware)
        .boot_nic("private", nic)
        .nic("public", nic)
        .boot_disk(&disk, DiskBus::Virtio);
    if firmware_pxe {
        spec = spec.without_nic_roms();
    }
    let mut vm = lab.start(spec)?;
    vm.wait_for("pairos-init: recovery mode (pairos.mode=recover)", BOOT)?;
    let log = pxe_log(&lab);
    let fw = if firmware == Firmware::Ovmf { "uefi" } else { "bios" };
    assert!(log.contains(&format!("recover-{fw}.ipxe")), "the {fw} script was served:\n{log}");
    assert!(log.contains("path=\"/vmlinuz\" status=200"), "{log}");
    assert!(log.contains("path=\"/initrd.img\" status=200"), "{log}");
    assert!(!log.contains("localboot"), "a blank node is never told to boot its disk:\n{log}");
    if firmware_pxe {
        // The firmware's own PXE loaded iPXE over TFTP before iPXE asked for its script.
        assert!(log.contains("TFTP sending") && log.contains("file=ipxe/snponly.efi"), "{log}");
    }
    Ok(())
}

#[test]
fn seabios_virtio_net_blank_node_pxe_boots_to_recovery() -> Result<(), LabError> {
    blank_node_recovers("pxe-seabios-virtio", Firmware::SeaBios, NicModel::VirtioNet)
}

#[test]
fn seabios_e1000e_blank_node_pxe_boots_to_recovery() -> Result<(), LabError> {
    blank_node_recovers("pxe-seabios-e1000e", Firmware::SeaBios, NicModel::E1000e)
}

#[test]
fn ovmf_virtio_net_blank_node_pxe_boots_to_recovery() -> Result<(), LabError> {
    blank_node_recovers("pxe-ovmf-virtio", Firmware::Ovmf, NicModel::VirtioNet)
}

#[test]
fn ovmf_e1000e_blank_node_pxe_boots_to_recovery() -> Result<(), LabError> {
    blank_node_recovers("pxe-ovmf-e1000e", Firmware::Ovmf, NicModel::E1000e)
}

/// A BIOS boot sector that prints `message` on COM1 and halts: a BIOS-bootable test disk.
fn bios_test_disk(path: &Path, message: &str) -> Result<PathBuf, LabError> {
    let mut sector = vec![
        0xfa, // cli
        0x31, 0xc0, // xor ax, ax
        0x8e, 0xd8, // mov ds, ax
        0xfc, // cld
        0xbe, 0x00, 0x00, // mov si, MESSAGE (patched below)
        0xba, 0xf8, 0x03, // mov dx, 0x3f8
        0xac, // next: lodsb
        0x84, 0xc0, // test al, al
        0x74, 0x03, // jz done
        0xee, // out dx, al
        0xeb, 0xf8, // jmp next
        0xf4, // done: hlt
        0xeb, 0xfd, // jmp done
    ];
    let at = 0x7c00 + sector.len() as u16;
    sector[7..9].copy_from_slice(&at.to_le_bytes());
    sector.extend_from_slice(message.as_bytes());
    sector.extend_from_slice(b"\r\n\0");
    sector.resize(510, 0);
    sector.extend_from_slice(&[0x55, 0xaa]);
    blank_disk(path, 64 << 20)?;
    let f = std::fs::OpenOptions::new().write(true).open(path).map_err(|e| LabError::Setup(e.to_string()))?;
    std::os::unix::fs::FileExt::write_all_at(&f, &sector, 0).map_err(|e| LabError::Setup(e.to_string()))?;
    Ok(path.to_owned())
}

#[test]
fn seabios_localboot_client_boots_its_disk_after_the_pxe_round() -> Result<(), LabError> {
    let (mut lab, _server, _pxe) = lab_with_pxe("pxe-local-seabios", "local", &[])?;
    let disk = bios_test_disk(&lab.dir().join("bios.raw"), "lab test disk: booted from the local disk")?;
    let mut vm = lab.start(
        VmSpec::new("installed")
            .firmware(Firmware::SeaBios)
            .boot_nic("private", NicModel::VirtioNet)
            .boot_disk(&disk, DiskBus::Virtio),
    )?;
    vm.wait_for("lab test disk: booted from the local disk", BOOT)?;
    let log = pxe_log(&lab);
    assert!(log.contains("path=\"/localboot-bios.ipxe\" status=200"), "{log}");
    assert!(!log.contains("recover-"), "a LocalBoot client is never offered recovery:\n{log}");
    Ok(())
}

#[test]
fn ovmf_localboot_client_boots_its_installed_pairos_disk_after_the_pxe_round() -> Result<(), LabError> {
    let out = image::default_image()?;
    let (mut lab, _server, _pxe) = lab_with_pxe("pxe-local-ovmf", "local", &[])?;
    let disk = lab.dir().join("system.raw");
    disk_from_image(&out.join("disk.raw"), &disk, 8 * GIB)?;
    let mut vm = lab.start(
        VmSpec::new("installed")
            .firmware(Firmware::Ovmf)
            .boot_nic("private", NicModel::VirtioNet)
            .nic("public", NicModel::VirtioNet)
            .boot_disk(&disk, DiskBus::Virtio)
            .without_nic_roms(),
    )?;
    vm.wait_for("pairos run: ready", BOOT)?;
    let log = pxe_log(&lab);
    assert!(log.contains("path=\"/localboot-uefi.ipxe\" status=200"), "{log}");
    assert!(!log.contains("recover-"), "a LocalBoot client is never offered recovery:\n{log}");
    Ok(())
}

/// A network that already has a DHCP server (dnsmasq, addresses only) and `pairos pxe --proxy`
/// beside it: the node takes its address from dnsmasq and its boot file from us.
fn boots_through_proxy_dhcp(name: &str, firmware: Firmware) -> Result<(), LabError> {
    let (mut lab, _server, _pxe) = lab_with_pxe(name, "recover", &["--proxy"])?;
    let dhcp = lab.endpoint("private", "dhcp", "10.88.0.2/24")?;
    let dnsmasq_log = lab.dir().join("dnsmasq.log");
    let _dnsmasq = dhcp
        .ns
        .cmd("dnsmasq")
        .args(["--no-daemon", "--port=0", "--interface=eth0", "--bind-interfaces", "--log-dhcp"])
        .args(["--dhcp-range=10.88.0.50,10.88.0.60,255.255.255.0,1h", "--conf-file=/dev/null"])
        .arg(format!("--dhcp-leasefile={}", lab.dir().join("dnsmasq.leases").display()))
        .spawn(Some(&dnsmasq_log))?;
    let disk = lab.dir().join("blank.raw");
    blank_disk(&disk, 8 * GIB)?;
    let mut spec = VmSpec::new("blank")
        .firmware(firmware)
        .boot_nic("private", NicModel::VirtioNet)
        .boot_disk(&disk, DiskBus::Virtio);
    if firmware == Firmware::Ovmf {
        spec = spec.without_nic_roms();
    }
    let mut vm = lab.start(spec)?;
    vm.wait_for("pairos-init: recovery mode (pairos.mode=recover)", BOOT)?;
    let log = pxe_log(&lab);
    assert!(log.contains("proxy OFFER"), "{log}");
    assert!(!log.contains("decision=OFFER 10.88"), "the proxy never offers an address:\n{log}");
    assert!(log.contains("path=\"/initrd.img\" status=200"), "{log}");
    let leases = std::fs::read_to_string(lab.dir().join("dnsmasq.leases")).unwrap_or_default();
    assert!(leases.contains("10.88.0.5"), "the address came from dnsmasq: {leases:?}");
    Ok(())
}

#[test]
fn seabios_node_boots_through_proxy_dhcp_beside_another_dhcp_server() -> Result<(), LabError> {
    boots_through_proxy_dhcp("pxe-proxy-seabios", Firmware::SeaBios)
}

#[test]
fn ovmf_firmware_pxe_boots_through_proxy_dhcp_beside_another_dhcp_server() -> Result<(), LabError> {
    boots_through_proxy_dhcp("pxe-proxy-ovmf", Firmware::Ovmf)
}
