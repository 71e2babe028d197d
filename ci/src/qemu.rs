//! QEMU nodes: a spec, and the running VM as a guard.
//!
//! Every VM is a q35 machine under TCG (KVM cannot boot a kernel on these hosts). NICs and the
//! system disk sit at the PCI slots the `qemu-q35` board profile names: the first NIC (the
//! private link) at 00:03.0, the second (public) at 00:04.0, virtio disks from 00:05.0 on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pairos_host::Child;

use crate::error::io;
use crate::{Console, Lab, LabError};

const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
const FIRST_NIC_SLOT: u8 = 3;
const FIRST_DISK_SLOT: u8 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    SeaBios,
    /// OVMF with a fresh copy of its variable store in the VM's work folder.
    Ovmf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NicModel {
    VirtioNet,
    E1000e,
}

impl NicModel {
    fn device(self) -> &'static str {
        match self {
            NicModel::VirtioNet => "virtio-net-pci",
            NicModel::E1000e => "e1000e",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskBus {
    Virtio,
    /// A port of the q35's built-in ICH9 AHCI controller (00:1f.2).
    Ahci,
    /// A read-only CD/DVD drive on an AHCI port.
    Cdrom,
}

#[derive(Debug, Clone)]
struct NicSpec {
    link: String,
    model: NicModel,
    /// The firmware's boot order; None for NICs it should not boot from.
    bootindex: Option<u32>,
}

#[derive(Debug, Clone)]
struct DiskSpec {
    path: PathBuf,
    bus: DiskBus,
    format: &'static str,
    /// The firmware's boot order; None for disks it should not boot.
    bootindex: Option<u32>,
}

/// Boot a kernel directly (QEMU's `-kernel`), skipping the firmware's boot devices. Under OVMF
/// the kernel can be any EFI image, a UKI too: OVMF passes `append` as its load options, which
/// the systemd stub takes as the command line when Secure Boot is off, as from a boot loader.
#[derive(Debug, Clone)]
pub struct DirectBoot {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub append: String,
}

#[derive(Debug, Clone)]
pub struct VmSpec {
    name: String,
    memory_mib: u32,
    cpus: u32,
    firmware: Firmware,
    direct: Option<DirectBoot>,
    nics: Vec<NicSpec>,
    disks: Vec<DiskSpec>,
    exit_on_reboot: bool,
    nic_roms: bool,
    /// Use the MACs of the lab's VM with this number (the same machine, powered on again).
    same_machine_as: Option<usize>,
    /// OVMF network-boots by UEFI HTTP boot only (its PXE off, no iPXE ROMs).
    http_boot: bool,
    /// OVMF's network options as it ships them: PXE and HTTP boot over IPv4 and IPv6.
    every_network_option: bool,
    /// A BMC (`ipmi_sim`) listening on this port of 127.0.0.1 in the lab namespace, reached
    /// through a KCS interface: its "power off" ends the VM at once.
    bmc_port: Option<u16>,
    /// An i6300esb watchdog whose expiry resets the VM.
    watchdog: bool,
}

impl VmSpec {
    /// A VM with 1 GiB, one CPU, SeaBIOS, no NICs and no disks.
    pub fn new(name: &str) -> Self {
        VmSpec {
            name: name.to_owned(),
            memory_mib: 1024,
            cpus: 1,
            firmware: Firmware::SeaBios,
            direct: None,
            nics: Vec::new(),
            disks: Vec::new(),
            exit_on_reboot: false,
            nic_roms: true,
            same_machine_as: None,
            http_boot: false,
            every_network_option: false,
            bmc_port: None,
            watchdog: false,
        }
    }

    /// Connects the VM to the lab BMC ([`crate::bmc`]) whose VM port is `port`.
    pub fn bmc(mut self, port: u16) -> Self {
        self.bmc_port = Some(port);
        self
    }

    /// Adds an i6300esb watchdog (PCI slot 0x10); when it expires, the VM resets.
    pub fn watchdog(mut self) -> Self {
        self.watchdog = true;
        self
    }

    /// Under OVMF, network boot by UEFI HTTP boot only: no NIC ROMs, and the firmware's PXE off
    /// (`opt/org.tianocore/IPv4PXESupport`), as on servers set up for HTTP boot.
    pub fn http_boot(mut self) -> Self {
        self.http_boot = true;
        self.nic_roms = false;
        self
    }

    /// Under OVMF, every network option on as the firmware ships (PXE and HTTP boot, IPv4 and
    /// IPv6), as on a server nobody set up: a node told to boot its disk waits out each of them
    /// (minutes under TCG) before it reaches the disk. Without it, the lab's OVMF boots over
    /// IPv4 only, as server firmware usually is set up.
    pub fn every_network_option(mut self) -> Self {
        self.every_network_option = true;
        self
    }

    /// The same machine as the lab's `n`th VM (counting from 1), powered on again: its NICs get
    /// that VM's MACs.
    pub fn same_machine_as(mut self, n: usize) -> Self {
        self.same_machine_as = Some(n);
        self
    }

    /// NICs without their option ROMs (QEMU's are iPXE): the firmware's own network stack does
    /// the PXE boot, as on servers whose vendor firmware has its own PXE client. OVMF has a
    /// virtio-net driver and PXE of its own; SeaBIOS and OVMF's e1000e need the ROM.
    pub fn without_nic_roms(mut self) -> Self {
        self.nic_roms = false;
        self
    }

    /// QEMU exits when the guest reboots or panics, instead of starting it again.
    pub fn exit_on_reboot(mut self) -> Self {
        self.exit_on_reboot = true;
        self
    }

    pub fn memory_mib(mut self, mib: u32) -> Self {
        self.memory_mib = mib;
        self
    }

    pub fn cpus(mut self, cpus: u32) -> Self {
        self.cpus = cpus;
        self
    }

    pub fn firmware(mut self, firmware: Firmware) -> Self {
        self.firmware = firmware;
        self
    }

    pub fn direct_boot(mut self, boot: DirectBoot) -> Self {
        self.direct = Some(boot);
        self
    }

    /// Adds a NIC on `link`; the first one added is the private link's port.
    pub fn nic(mut self, link: &str, model: NicModel) -> Self {
        self.nics.push(NicSpec { link: link.to_owned(), model, bootindex: None });
        self
    }

    /// Adds a NIC on `link` that the firmware network-boots from (through the NIC's iPXE option
    /// ROM, or OVMF's own PXE over it), before any boot device added later.
    pub fn boot_nic(mut self, link: &str, model: NicModel) -> Self {
        let next = self.next_bootindex();
        self.nics.push(NicSpec { link: link.to_owned(), model, bootindex: Some(next) });
        self
    }

    /// Lets the firmware network-boot from the NIC already added on `link`, after the boot
    /// devices added so far: a server whose disk does not boot falls back to the network.
    pub fn then_boot_nic(mut self, link: &str) -> Self {
        let next = self.next_bootindex();
        if let Some(nic) = self.nics.iter_mut().find(|n| n.link == link) {
            nic.bootindex = Some(next);
        }
        self
    }

    fn next_bootindex(&self) -> u32 {
        let nics = self.nics.iter().filter(|n| n.bootindex.is_some()).count();
        let disks = self.disks.iter().filter(|d| d.bootindex.is_some()).count();
        (nics + disks) as u32
    }

    /// Adds a raw disk image; the first virtio disk is the system disk.
    pub fn disk(mut self, path: &Path, bus: DiskBus) -> Self {
        self.disks.push(DiskSpec { path: path.to_owned(), bus, format: "raw", bootindex: None });
        self
    }

    /// Adds a raw disk image that the firmware boots from, before anything added later.
    pub fn boot_disk(mut self, path: &Path, bus: DiskBus) -> Self {
        let next = self.next_bootindex();
        self.disks.push(DiskSpec { path: path.to_owned(), bus, format: "raw", bootindex: Some(next) });
        self
    }
}

/// A running VM; killed on drop. Its console log stays in the lab's folder.
#[derive(Debug)]
pub struct Vm {
    name: String,
    power: Power,
    console: Console,
    /// Console lines that end any wait at once, as failures.
    fail_on: Vec<String>,
    /// Each NIC's tap device in the lab namespace, in the order the NICs were added.
    taps: Vec<String>,
}

/// MAC addresses in QEMU's locally administered range, unique per VM and NIC within a lab.
fn mac(vm_index: usize, nic: usize) -> String {
    format!("52:54:00:12:{:02x}:{:02x}", vm_index & 0xff, nic & 0xff)
}

/// A VM's QEMU command line and the files it uses, before it runs.
#[derive(Debug, Clone)]
pub struct Launch {
    pub name: String,
    /// QEMU's arguments (the program is `qemu-system-x86_64`, run in the lab namespace).
    pub args: Vec<String>,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub log: PathBuf,
    pub taps: Vec<String>,
}

impl Lab {
    /// Boots `spec`. Returns once QEMU runs; wait on the console for the guest.
    pub fn start(&mut self, spec: VmSpec) -> Result<Vm, LabError> {
        let launch = self.prepare(spec)?;
        let mut child = self
            .netns()
            .cmd("qemu-system-x86_64")
            .args(&launch.args)
            .spawn(Some(&launch.dir.join("qemu.log")))?;
        wait_for_socket(&launch.name, || child.check_running().map_err(|e| e.to_string()), &launch.socket)?;
        let console = Console::connect(&launch.name, launch.socket, launch.log)?;
        tracing::info!(vm = %launch.name, "started");
        Ok(Vm {
            name: launch.name,
            power: Power::Own(child),
            console,
            fail_on: vec!["pairos-init: FATAL".into()],
            taps: launch.taps,
        })
    }

    /// The QEMU command line for `spec`, with its taps made and its firmware variables copied;
    /// nothing runs yet. [`Lab::start`] runs it; a lab BMC runs it as the node's power.
    pub fn prepare(&mut self, spec: VmSpec) -> Result<Launch, LabError> {
        let dir = self.dir().join(&spec.name);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let log = dir.join("console.log");
        let socket = dir.join("console.sock");
        // The same machine started again: its last console's socket is stale.
        let _ = std::fs::remove_file(&socket);
        let vm_index = match spec.same_machine_as {
            Some(n) => n,
            None => self.next_vm(),
        };

        let mut args: Vec<String> = vec![
            "-machine".into(),
            "q35,accel=tcg".into(),
            "-m".into(),
            spec.memory_mib.to_string(),
            "-smp".into(),
            spec.cpus.to_string(),
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-display".into(),
            "none".into(),
            "-chardev".into(),
            // wait=on: the guest starts only once the lab listens, so no output is lost.
            format!("socket,id=con,path={},server=on,wait=on", socket.display()),
            "-serial".into(),
            "chardev:con".into(),
        ];
        if spec.exit_on_reboot {
            args.push("-no-reboot".into());
        }
        if spec.firmware == Firmware::Ovmf {
            let vars = dir.join("OVMF_VARS.fd");
            std::fs::copy(OVMF_VARS, &vars).map_err(io(OVMF_VARS))?;
            args.push("-drive".into());
            args.push(format!("if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"));
            args.push("-drive".into());
            args.push(format!("if=pflash,format=raw,unit=1,file={}", vars.display()));
            // Network boot over IPv4 only, as server firmware is usually set up: otherwise a node
            // told to boot its disk first waits out PXE and HTTP boot over IPv6 (minutes under TCG).
            if !spec.every_network_option {
                args.push("-fw_cfg".into());
                args.push("name=opt/org.tianocore/IPv6Support,string=no".into());
            }
            if spec.http_boot {
                args.push("-fw_cfg".into());
                args.push("name=opt/org.tianocore/IPv4PXESupport,string=no".into());
            }
        }
        if let Some(boot) = &spec.direct {
            args.extend(["-kernel".into(), boot.kernel.display().to_string()]);
            if let Some(initrd) = &boot.initrd {
                args.extend(["-initrd".into(), initrd.display().to_string()]);
            }
            args.extend(["-append".into(), boot.append.clone()]);
        }
        let mut taps = Vec::new();
        for (i, nic) in spec.nics.iter().enumerate() {
            let tap = self.tap(&nic.link)?;
            taps.push(tap.clone());
            let slot = FIRST_NIC_SLOT + i as u8;
            args.push("-netdev".into());
            args.push(format!("tap,id=net{i},ifname={tap},script=no,downscript=no"));
            args.push("-device".into());
            let mut boot = nic.bootindex.map(|b| format!(",bootindex={b}")).unwrap_or_default();
            if !spec.nic_roms {
                boot.push_str(",romfile=");
            }
            args.push(format!(
                "{},netdev=net{i},mac={},bus=pcie.0,addr={slot:#x}{boot}",
                nic.model.device(),
                mac(vm_index, i)
            ));
        }
        let (mut virtio_slot, mut ahci_port) = (FIRST_DISK_SLOT, 0);
        for (i, disk) in spec.disks.iter().enumerate() {
            let media = if disk.bus == DiskBus::Cdrom { ",media=cdrom,readonly=on" } else { "" };
            args.push("-drive".into());
            args.push(format!(
                "file={},format={},if=none,id=disk{i}{media}",
                disk.path.display(),
                disk.format
            ));
            let boot = disk.bootindex.map(|b| format!(",bootindex={b}")).unwrap_or_default();
            args.push("-device".into());
            match disk.bus {
                DiskBus::Virtio => {
                    args.push(format!("virtio-blk-pci,drive=disk{i},bus=pcie.0,addr={virtio_slot:#x}{boot}"));
                    virtio_slot += 1;
                }
                DiskBus::Ahci | DiskBus::Cdrom => {
                    let dev = if disk.bus == DiskBus::Cdrom { "ide-cd" } else { "ide-hd" };
                    args.push(format!("{dev},drive=disk{i},bus=ide.{ahci_port}{boot}"));
                    ahci_port += 1;
                }
            }
        }

        if let Some(port) = spec.bmc_port {
            // OpenIPMI's sample: QEMU connects to the BMC's VM port (and again if it restarts).
            args.extend([
                "-chardev".into(),
                format!("socket,id=ipmi0,host=127.0.0.1,port={port},reconnect=2"),
                "-device".into(),
                "ipmi-bmc-extern,id=bmc0,chardev=ipmi0".into(),
                "-device".into(),
                "isa-ipmi-kcs,bmc=bmc0,irq=5".into(),
            ]);
        }
        if spec.watchdog {
            args.extend(["-device".into(), "i6300esb,bus=pcie.0,addr=0x10".into()]);
            args.extend(["-action".into(), "watchdog=reset".into()]);
        }
        // Where the VM's process is found when something else (a BMC) started it.
        args.extend(["-pidfile".into(), dir.join("qemu.pid").display().to_string()]);
        Ok(Launch { name: spec.name, args, dir, socket, log, taps })
    }

    /// A VM whose QEMU the lab BMC runs as the node's power (`launch`, written as the BMC's
    /// power command): waits until it runs and connects its console.
    pub fn attach_powered(&mut self, launch: Launch) -> Result<Vm, LabError> {
        let pidfile = launch.dir.join("qemu.pid");
        wait_for_socket(&launch.name, || Ok(()), &launch.socket)?;
        let console = Console::connect(&launch.name, launch.socket, launch.log)?;
        Ok(Vm {
            name: launch.name,
            power: Power::Bmc { pidfile },
            console,
            fail_on: vec!["pairos-init: FATAL".into()],
            taps: launch.taps,
        })
    }
}

/// Who runs the VM's QEMU.
#[derive(Debug)]
enum Power {
    /// The lab, as its child.
    Own(Child),
    /// The node's BMC: its power can go off and on; QEMU's process id is in its pid file.
    Bmc { pidfile: PathBuf },
    /// The lab's, killed: it stays off.
    Killed,
}

impl Power {
    /// Ok while the VM runs. A VM behind a BMC may be off for a while and on again, so it is
    /// never reported gone: a wait on it ends at its timeout.
    fn check(&mut self) -> Result<(), pairos_host::CommandError> {
        match self {
            Power::Own(child) => child.check_running(),
            Power::Bmc { .. } | Power::Killed => Ok(()),
        }
    }

    fn pid(&self) -> Option<i32> {
        let Power::Bmc { pidfile } = self else { return None };
        std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()
    }
}

impl Vm {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn console(&mut self) -> &mut Console {
        &mut self.console
    }

    /// Waits for a console line containing `needle`; returns that line. A line containing one
    /// of the failure markers (by default `pairos-init: FATAL`) ends the wait as an error.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<String, LabError> {
        let power = &mut self.power;
        let fail_on = &self.fail_on;
        let line = self.console.wait_line(
            needle,
            timeout,
            |l| l.contains(needle) || fail_on.iter().any(|f| l.contains(f.as_str())),
            || power.check(),
        )?;
        if line.contains(needle) {
            return Ok(line);
        }
        Err(LabError::Failed {
            vm: self.name.clone(),
            what: needle.to_owned(),
            line,
            tail: self.console.tail(30),
        })
    }

    /// Replaces the failure markers (an empty list waits through anything).
    pub fn fail_on(&mut self, markers: &[&str]) {
        self.fail_on = markers.iter().map(|m| m.to_string()).collect();
    }

    /// Runs a shell command on the console (the guest must be at a shell prompt).
    pub fn run(&mut self, command: &str, timeout: Duration) -> Result<(i32, String), LabError> {
        let power = &mut self.power;
        self.console.run(command, timeout, || power.check())
    }

    /// As [`Vm::run`], with only the command's own lines (see [`Console::run_tagged`]).
    pub fn run_tagged(&mut self, command: &str, timeout: Duration) -> Result<(i32, String), LabError> {
        let power = &mut self.power;
        self.console.run_tagged(command, timeout, || power.check())
    }

    /// Stops the VM now, as a pulled power cord (also done on drop).
    pub fn kill(&mut self) {
        if let Power::Own(child) = &mut self.power {
            child.kill();
            self.power = Power::Killed;
        } else if let Some(pid) = self.power.pid().filter(|&pid| process_runs(pid)) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        }
    }

    /// Connects the console again after the VM's power came back on (its BMC started QEMU
    /// anew, and QEMU waits for the console before the guest runs). What it prints is added
    /// to the same log.
    pub fn reattach(&mut self) -> Result<(), LabError> {
        wait_for_socket(&self.name, || Ok(()), self.console.socket())?;
        self.console.reconnect()
    }

    /// The tap device of the VM's `n`th NIC (counting from 0), in the lab namespace: taking it
    /// down pulls that cable.
    pub fn tap(&self, n: usize) -> Option<&str> {
        self.taps.get(n).map(String::as_str)
    }

    /// Whether QEMU runs (a BMC's power off ends it).
    pub fn running(&mut self) -> bool {
        match &mut self.power {
            Power::Own(child) => child.check_running().is_ok(),
            Power::Bmc { .. } => self.power.pid().is_some_and(process_runs),
            Power::Killed => false,
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if matches!(self.power, Power::Bmc { .. }) {
            self.kill();
        }
    }
}

/// Whether `pid` is a process that has not ended (a zombie has).
fn process_runs(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

fn wait_for_socket(
    vm: &str,
    mut alive: impl FnMut() -> Result<(), String>,
    socket: &Path,
) -> Result<(), LabError> {
    let start = std::time::Instant::now();
    while !socket.exists() {
        alive()
            .map_err(|e| LabError::Setup(format!("{vm}: QEMU exited before it opened its console: {e}")))?;
        if start.elapsed() > Duration::from_secs(30) {
            return Err(LabError::Setup(format!("{vm}: QEMU did not open {}", socket.display())));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Copies a raw image into a sparse disk of `size` bytes (a node's disk is larger than the image).
pub fn disk_from_image(image: &Path, disk: &Path, size: u64) -> Result<(), LabError> {
    pairos_host::Cmd::new("cp").arg("--sparse=always").arg(image).arg(disk).run()?;
    let f = std::fs::OpenOptions::new().write(true).open(disk).map_err(io(disk))?;
    f.set_len(size).map_err(io(disk))
}

/// Creates a sparse raw disk image of `size` bytes.
pub fn blank_disk(path: &Path, size: u64) -> Result<(), LabError> {
    let f = std::fs::File::create(path).map_err(io(path))?;
    f.set_len(size).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::mac;

    #[test]
    fn macs_are_distinct_per_vm_and_nic() {
        assert_ne!(mac(1, 0), mac(1, 1));
        assert_ne!(mac(1, 0), mac(2, 0));
        assert_eq!(mac(1, 0), "52:54:00:12:01:00");
    }
}
