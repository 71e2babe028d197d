//! Inventories a machine from sysfs and procfs.
//!
//! Everything is read below a root folder: `/` on a live machine, or a captured tree (see
//! `ci/scripts/capture-sysfs.sh`) that holds the same `sys/` and `proc/` paths. Links are
//! resolved inside that root, so a capture keeps the kernel's relative symlinks as they are.
//! Missing attributes are normal (a down link has no speed, a VM has no DMI serial) and become
//! `None`; only a root with no sysfs at all is an error.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::inventory::{Cpu, Disk, Dmi, FirmwareMode, Inventory, Memory, Nic, PciDevice, Transport};
use crate::profile::is_pci_address;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{}: {what}: {source}", path.display())]
    Io { path: PathBuf, what: &'static str, source: std::io::Error },
    #[error("{}: {what}", path.display())]
    Format { path: PathBuf, what: String },
}

/// Probes the machine whose sysfs and procfs are below `root`.
pub fn probe(root: &Path) -> Result<Inventory, ProbeError> {
    let root = fs::canonicalize(root).map_err(|source| ProbeError::Io {
        path: root.to_owned(),
        what: "opening the probe root",
        source,
    })?;
    let sys = root.join("sys");
    if !sys.join("class").is_dir() || !sys.join("bus").is_dir() {
        return Err(ProbeError::Format {
            path: sys,
            what: "expected a sysfs tree with class/ and bus/ below it".into(),
        });
    }
    let pci = probe_pci(&sys)?;
    let nics = probe_nics(&sys, &pci)?;
    let disks = probe_disks(&sys)?;
    Ok(Inventory {
        dmi: probe_dmi(&sys),
        firmware: if sys.join("firmware/efi").is_dir() { FirmwareMode::Uefi } else { FirmwareMode::Bios },
        cpu: probe_cpu(&root.join("proc/cpuinfo"))?,
        memory: probe_memory(&root.join("proc/meminfo"))?,
        pci,
        nics,
        disks,
    })
}

/// A sysfs attribute as trimmed text; None when absent, unreadable or empty.
fn attr(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn attr_hex(path: &Path) -> Option<u32> {
    let text = attr(path)?;
    u32::from_str_radix(text.trim_start_matches("0x"), 16).ok()
}

fn link_name(path: &Path) -> Option<String> {
    let target = fs::read_link(path).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

fn list_dir(dir: &Path) -> Result<Vec<String>, ProbeError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        // A machine without any NIC or disk driver loaded may lack the class folder.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(ProbeError::Io { path: dir.to_owned(), what: "listing", source }),
    };
    let mut names: Vec<String> =
        entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    Ok(names)
}

/// Resolves a link inside the probe root; sysfs links are relative, so this stays in a capture.
fn resolve(path: &Path) -> Option<PathBuf> {
    fs::canonicalize(path).ok()
}

/// The PCI function a device belongs to: the nearest folder, from `dev` up, named like one.
fn pci_ancestor(dev: &Path) -> Option<String> {
    dev.ancestors().filter_map(|p| p.file_name()?.to_str()).find(|n| is_pci_address(n)).map(str::to_owned)
}

fn probe_dmi(sys: &Path) -> Dmi {
    let id = sys.join("class/dmi/id");
    let get = |f: &str| attr(&id.join(f));
    Dmi {
        sys_vendor: get("sys_vendor"),
        product_name: get("product_name"),
        product_version: get("product_version"),
        board_vendor: get("board_vendor"),
        board_name: get("board_name"),
        bios_vendor: get("bios_vendor"),
        bios_version: get("bios_version"),
    }
}

fn probe_pci(sys: &Path) -> Result<Vec<PciDevice>, ProbeError> {
    let dir = sys.join("bus/pci/devices");
    let mut out = Vec::new();
    for address in list_dir(&dir)? {
        let Some(dev) = resolve(&dir.join(&address)) else {
            continue;
        };
        let (Some(vendor), Some(device)) = (attr_hex(&dev.join("vendor")), attr_hex(&dev.join("device")))
        else {
            continue;
        };
        let onboard_index = attr(&dev.join("acpi_index"))
            .or_else(|| attr(&dev.join("index")))
            .and_then(|s| s.parse().ok())
            .filter(|&i: &u32| i > 0);
        out.push(PciDevice {
            address,
            vendor: vendor as u16,
            device: device as u16,
            class: attr_hex(&dev.join("class")).unwrap_or(0),
            subsystem_vendor: attr_hex(&dev.join("subsystem_vendor")).map(|v| v as u16),
            subsystem_device: attr_hex(&dev.join("subsystem_device")).map(|v| v as u16),
            driver: link_name(&dev.join("driver")),
            label: attr(&dev.join("label")),
            onboard_index,
        });
    }
    Ok(out)
}

fn probe_nics(sys: &Path, pci: &[PciDevice]) -> Result<Vec<Nic>, ProbeError> {
    let dir = sys.join("class/net");
    let mut out = Vec::new();
    for name in list_dir(&dir)? {
        let Some(iface) = resolve(&dir.join(&name)) else {
            continue;
        };
        // Bridges, veths, taps and loopback have no `device`: they are not ports.
        let Some(dev) = resolve(&iface.join("device")) else {
            continue;
        };
        let pci_address = pci_ancestor(&dev);
        let onboard_index = pci_address
            .as_ref()
            .and_then(|a| pci.iter().find(|p| &p.address == a))
            .and_then(|p| p.onboard_index);
        out.push(Nic {
            name,
            mac: attr(&iface.join("address")),
            pci_address,
            driver: link_name(&dev.join("driver")),
            onboard_index,
            carrier: attr(&iface.join("carrier")).map(|c| c == "1"),
            speed_mbps: attr(&iface.join("speed"))
                .and_then(|s| s.parse::<i64>().ok())
                .and_then(|s| u32::try_from(s).ok()),
        });
    }
    Ok(out)
}

/// Block devices that are never a server's disk.
const NOT_DISKS: [&str; 9] = ["loop", "ram", "zram", "dm-", "md", "sr", "fd", "nbd", "mtd"];

fn transport_of(path: &Path) -> Transport {
    let parts: Vec<&str> = path.iter().filter_map(|c| c.to_str()).collect();
    let numbered = |prefix: &str| {
        parts.iter().any(|c| {
            c.strip_prefix(prefix).is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    if numbered("usb") {
        Transport::Usb
    } else if parts.iter().any(|c| c.starts_with("nvme")) {
        Transport::Nvme
    } else if numbered("virtio") {
        Transport::Virtio
    } else if numbered("ata") {
        Transport::Sata
    } else if numbered("host") {
        Transport::Scsi
    } else {
        Transport::Other
    }
}

fn probe_disks(sys: &Path) -> Result<Vec<Disk>, ProbeError> {
    let dir = sys.join("block");
    let mut out = Vec::new();
    for name in list_dir(&dir)? {
        if NOT_DISKS.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let Some(real) = resolve(&dir.join(&name)) else {
            continue;
        };
        let Some(sectors) = attr(&real.join("size")).and_then(|s| s.parse::<u64>().ok()) else {
            continue;
        };
        out.push(Disk {
            size_bytes: sectors * 512,
            rotational: attr(&real.join("queue/rotational")).is_some_and(|v| v == "1"),
            removable: attr(&real.join("removable")).is_some_and(|v| v == "1"),
            transport: transport_of(&real),
            pci_address: pci_ancestor(&real),
            model: attr(&real.join("device/model")),
            name,
        });
    }
    Ok(out)
}

fn read_proc(path: &Path) -> Result<String, ProbeError> {
    fs::read_to_string(path).map_err(|source| ProbeError::Io {
        path: path.to_owned(),
        what: "reading",
        source,
    })
}

fn probe_cpu(path: &Path) -> Result<Cpu, ProbeError> {
    Ok(parse_cpuinfo(&read_proc(path)?))
}

/// Counts processors and distinct (physical id, core id) pairs in /proc/cpuinfo text.
pub fn parse_cpuinfo(text: &str) -> Cpu {
    let mut logical = 0u32;
    let mut model = None;
    let mut cores = BTreeSet::new();
    let mut package = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "processor" => logical += 1,
            "model name" if model.is_none() => model = Some(value.to_owned()),
            "physical id" => package = Some(value.to_owned()),
            "core id" => {
                cores.insert((package.clone(), value.to_owned()));
            }
            _ => {}
        }
    }
    let cores = if cores.is_empty() { logical } else { cores.len() as u32 };
    Cpu { logical, cores, model }
}

fn probe_memory(path: &Path) -> Result<Memory, ProbeError> {
    let text = read_proc(path)?;
    let kib = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .ok_or_else(|| ProbeError::Format {
            path: path.to_owned(),
            what: "expected a line \"MemTotal: N kB\"".into(),
        })?;
    Ok(Memory { total_mib: kib / 1024 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuinfo_counts_cores_not_threads() {
        let text = "processor\t: 0\nmodel name\t: Xeon\nphysical id\t: 0\ncore id\t: 0\n\n\
                    processor\t: 1\nphysical id\t: 0\ncore id\t: 0\n\n\
                    processor\t: 2\nphysical id\t: 1\ncore id\t: 0\n";
        let cpu = parse_cpuinfo(text);
        assert_eq!((cpu.logical, cpu.cores), (3, 2));
        assert_eq!(cpu.model.as_deref(), Some("Xeon"));
    }

    #[test]
    fn transport_comes_from_the_device_path() {
        let t = |p: &str| transport_of(Path::new(p));
        assert_eq!(t("/sys/devices/pci0000:00/0000:00:05.0/virtio2/block/vda"), Transport::Virtio);
        assert_eq!(
            t("/sys/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda"),
            Transport::Sata
        );
        assert_eq!(t("/sys/devices/pci0000:00/0000:01:00.0/nvme/nvme0/nvme0n1"), Transport::Nvme);
        assert_eq!(
            t("/sys/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb"),
            Transport::Usb
        );
        assert_eq!(
            t("/sys/devices/pci0000:00/0000:18:00.0/host0/target0:2:0/0:2:0:0/block/sda"),
            Transport::Scsi
        );
    }

    #[test]
    fn a_folder_without_sysfs_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = probe(dir.path()).expect_err("no sysfs");
        assert!(err.to_string().contains("expected a sysfs tree"), "{err}");
    }
}
