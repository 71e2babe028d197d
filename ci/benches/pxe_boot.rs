//! Time to initramfs over the network: from VM start to the first line the recovery initramfs
//! prints, with `pairos pxe` serving the image's PXE set, and with dnsmasq (DHCP + TFTP, the
//! reference) serving the same files to the same VM. Runs alternate between the two servers so
//! that drift in the machine's load affects both alike. Prints Markdown rows.
//!
//! Usage: `cargo bench -p pairos-lab --bench pxe_boot -- [RUNS]` (default 3), as root, after
//! `cargo build --release -p pairos-runtime` (PAIROS_BIN points at it).

use std::path::Path;
use std::time::{Duration, Instant};

use pairos_host::Child;
use pairos_lab::pxe::start_pxe;
use pairos_lab::stats::median;
use pairos_lab::{blank_disk, image, DiskBus, Endpoint, Firmware, Lab, LabError, NicModel, VmSpec};

const FIRST_INITRAMFS_LINE: &str = "pairos-init: pairos";

fn dnsmasq(server: &Endpoint, root: &Path, log: &Path) -> Result<Child, LabError> {
    let child = server
        .ns
        .cmd("dnsmasq")
        .args(["--no-daemon", "--port=0", "--interface=eth0", "--bind-interfaces", "--conf-file=/dev/null"])
        .args(["--dhcp-range=10.88.0.100,10.88.0.199,255.255.255.0,1h", "--enable-tftp"])
        .arg(format!("--tftp-root={}", root.display()))
        .arg(format!("--dhcp-leasefile={}", log.with_extension("leases").display()))
        // The same chain as ours: firmware → iPXE binary, iPXE (option 175) → its script; the
        // script's relative paths then load the kernel and initramfs over TFTP from dnsmasq.
        .args(["--dhcp-match=set:ipxe,175", "--dhcp-match=set:efi64,option:client-arch,7"])
        .args([
            "--dhcp-boot=tag:ipxe,tag:efi64,recover-uefi.ipxe",
            "--dhcp-boot=tag:ipxe,tag:!efi64,recover-bios.ipxe",
        ])
        .args([
            "--dhcp-boot=tag:!ipxe,tag:efi64,ipxe/snponly.efi",
            "--dhcp-boot=tag:!ipxe,tag:!efi64,ipxe/undionly.kpxe",
        ])
        .spawn(Some(log))?;
    std::thread::sleep(Duration::from_millis(500));
    Ok(child)
}

fn one_boot(run: usize, server_kind: &str, firmware: Firmware, root: &Path) -> Result<f64, LabError> {
    let fw = if firmware == Firmware::Ovmf { "ovmf" } else { "seabios" };
    let mut lab = Lab::new(&format!("bench-pxe-{server_kind}-{fw}-{run}"))?;
    let server = lab.endpoint("private", "peer", "10.88.0.1/24")?;
    let log = lab.dir().join(format!("{server_kind}.log"));
    let _served = match server_kind {
        "pairos" => {
            let leases = lab.dir().join("leases.json");
            start_pxe(&server, root, &["--lease-file", leases.to_str().unwrap_or("l.json")], &log)?
        }
        _ => dnsmasq(&server, root, &log)?,
    };
    let disk = lab.dir().join("blank.raw");
    blank_disk(&disk, 8 << 30)?;
    let start = Instant::now();
    let mut vm = lab.start(
        VmSpec::new("blank")
            .firmware(firmware)
            .boot_nic("private", NicModel::VirtioNet)
            .boot_disk(&disk, DiskBus::Virtio),
    )?;
    vm.wait_for(FIRST_INITRAMFS_LINE, Duration::from_secs(600))?;
    Ok(start.elapsed().as_secs_f64())
}

fn main() -> Result<(), LabError> {
    let runs: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(3);
    let root = image::default_image()?.join("pxe");
    let size = |f: &str| std::fs::metadata(root.join(f)).map_or(0.0, |m| m.len() as f64 / 1e6);
    eprintln!("kernel {:.1} MB, initramfs {:.1} MB, {runs} runs each", size("vmlinuz"), size("initrd.img"));
    println!("| firmware (NIC ROM: iPXE) | pairos pxe, median s | dnsmasq, median s | ratio |");
    println!("|---|---|---|---|");
    for firmware in [Firmware::SeaBios, Firmware::Ovmf] {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for run in 0..runs {
            ours.push(one_boot(run, "pairos", firmware, &root)?);
            theirs.push(one_boot(run, "dnsmasq", firmware, &root)?);
            eprintln!("{firmware:?} run {run}: pairos {:.1} s, dnsmasq {:.1} s", ours[run], theirs[run]);
        }
        let (a, b) = (median(ours), median(theirs));
        println!("| {firmware:?} | {a:.1} | {b:.1} | {:.2}x |", a / b);
    }
    Ok(())
}
