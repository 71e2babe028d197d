//! The profile file format, exactly as written in `boards/profiles/*.toml`.
//!
//! These types only describe the file; they are strict (`deny_unknown_fields`) so that a typo is
//! an error rather than a silently ignored requirement. Values are checked when they become a
//! [`crate::Profile`].

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    /// Short kebab-case name, equal to the file stem.
    pub name: String,
    /// One line a person reads in `pairos boards list`.
    pub description: String,
    /// Firmware modes the board offers: "uefi", "bios".
    pub firmware: Vec<String>,
    #[serde(rename = "match")]
    pub dmi: DmiMatch,
    pub minimum: Minimum,
    #[serde(rename = "nic")]
    pub nics: Vec<NicRule>,
    /// Ordered: the first selector that matches any disk decides.
    pub system_disk: Vec<DiskSelector>,
    pub modules: Modules,
    #[serde(default, rename = "sensor")]
    pub sensors: Vec<Sensor>,
}

/// How the board is recognised from DMI. Every given field must match; a value ending in `*`
/// matches by prefix (vendors append build-to-order codes to product names).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DmiMatch {
    pub sys_vendor: String,
    pub product_name: Option<String>,
    pub board_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Minimum {
    pub cpu_cores: u32,
    /// As the kernel reports it (MemTotal), which is a little below the installed size.
    pub ram_mib: u64,
    pub system_disk_gib: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NicRule {
    /// "private" (the crossover link to the peer) or "public".
    pub role: String,
    /// PCI address of the port, like "0000:00:03.0".
    pub pci_path: Option<String>,
    /// Firmware onboard index (SMBIOS type 41 / ACPI _DSM), as systemd's `enoN` names use it.
    pub onboard_index: Option<u32>,
    /// Kernel drivers that may drive this port.
    pub drivers: Vec<String>,
    pub min_speed_mbps: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSelector {
    /// "virtio", "sata", "nvme", "scsi" or "usb".
    pub transport: Option<String>,
    /// PCI address of the controller the disk hangs off.
    pub pci_path: Option<String>,
    /// Substring of the disk's model string.
    pub model_contains: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Modules {
    pub storage: Vec<String>,
    pub nic: Vec<String>,
    #[serde(default)]
    pub sensors: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Sensor {
    /// hwmon chip name (`/sys/class/hwmon/*/name`), or "ipmi" for BMC sensors.
    pub chip: String,
    /// The sensor's label, as the chip reports it.
    pub label: String,
    /// "temperature", "fan", "voltage", "power" or "disk-health".
    pub kind: String,
    pub warn: Option<f64>,
    pub critical: Option<f64>,
}
