//! What the probe found on a machine. Serialisable, so `pairos boards probe --json` prints it and
//! a node can send it to its peer when it is not certified.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub dmi: Dmi,
    pub firmware: FirmwareMode,
    pub cpu: Cpu,
    pub memory: Memory,
    pub pci: Vec<PciDevice>,
    pub nics: Vec<Nic>,
    pub disks: Vec<Disk>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dmi {
    pub sys_vendor: Option<String>,
    pub product_name: Option<String>,
    pub product_version: Option<String>,
    pub board_vendor: Option<String>,
    pub board_name: Option<String>,
    pub bios_vendor: Option<String>,
    pub bios_version: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FirmwareMode {
    Uefi,
    #[default]
    Bios,
}

impl fmt::Display for FirmwareMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FirmwareMode::Uefi => "uefi",
            FirmwareMode::Bios => "bios",
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cpu {
    /// Logical processors the kernel runs.
    pub logical: u32,
    /// Physical cores: distinct (package, core) pairs, or `logical` where cpuinfo does not say.
    pub cores: u32,
    pub model: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// MemTotal from /proc/meminfo.
    pub total_mib: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PciDevice {
    pub address: String,
    pub vendor: u16,
    pub device: u16,
    pub class: u32,
    pub subsystem_vendor: Option<u16>,
    pub subsystem_device: Option<u16>,
    pub driver: Option<String>,
    /// Firmware label (SMBIOS type 41 or ACPI), like "Embedded NIC 1".
    pub label: Option<String>,
    /// Firmware onboard index (`acpi_index`, else SMBIOS `index`).
    pub onboard_index: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nic {
    /// The kernel's name this boot; only for people, never for decisions.
    pub name: String,
    pub mac: Option<String>,
    /// The PCI function the port is, found by walking up from the net device.
    pub pci_address: Option<String>,
    pub driver: Option<String>,
    pub onboard_index: Option<u32>,
    /// None when the interface is down and the kernel cannot say.
    pub carrier: Option<bool>,
    pub speed_mbps: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    Virtio,
    Sata,
    Nvme,
    Scsi,
    Usb,
    Other,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Virtio => "virtio",
            Transport::Sata => "sata",
            Transport::Nvme => "nvme",
            Transport::Scsi => "scsi",
            Transport::Usb => "usb",
            Transport::Other => "other",
        })
    }
}

impl FromStr for Transport {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "virtio" => Transport::Virtio,
            "sata" => Transport::Sata,
            "nvme" => Transport::Nvme,
            "scsi" => Transport::Scsi,
            "usb" => Transport::Usb,
            _ => return Err(()),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    pub name: String,
    pub size_bytes: u64,
    pub rotational: bool,
    pub removable: bool,
    pub transport: Transport,
    /// The PCI function of the controller the disk hangs off.
    pub pci_address: Option<String>,
    pub model: Option<String>,
}

impl Disk {
    pub fn size_gib(&self) -> f64 {
        self.size_bytes as f64 / f64::from(1u32 << 30)
    }
}
