//! The checked board profile that the rest of pairos uses.
//!
//! A [`Profile`] is built from a [`wire::ProfileFile`] with `TryFrom`; every value is checked
//! there, so code that holds a `Profile` never re-validates. Loading touches nothing but the file.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::inventory::{FirmwareMode, Transport};
use crate::wire;

/// A profile file that could not be used: which file, which field, what was expected.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{}: reading the profile: {source}", file.display())]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{}: not a valid profile: {message}", file.display())]
    Syntax { file: PathBuf, message: String },
    #[error("{}: field `{field}`: expected {expected}, found {found}", file.display())]
    Field { file: PathBuf, field: String, expected: String, found: String },
    #[error("{}: two profiles are named `{name}` (the other is {})", file.display(), other.display())]
    Duplicate { file: PathBuf, other: PathBuf, name: String },
}

/// What an invalid value was, before the file name is known.
#[derive(Debug)]
pub struct FieldError {
    pub field: String,
    pub expected: String,
    pub found: String,
}

impl FieldError {
    fn new(field: impl Into<String>, expected: impl Into<String>, found: impl fmt::Debug) -> Self {
        Self { field: field.into(), expected: expected.into(), found: format!("{found:?}") }
    }

    pub fn in_file(self, file: &Path) -> ProfileError {
        ProfileError::Field {
            file: file.to_owned(),
            field: self.field,
            expected: self.expected,
            found: self.found,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NicRole {
    Private,
    Public,
}

impl fmt::Display for NicRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NicRole::Private => "private-link",
            NicRole::Public => "public",
        })
    }
}

/// How a NIC port is found. Kernel interface names change between boots; these do not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NicLocation {
    PciPath(String),
    OnboardIndex(u32),
}

impl fmt::Display for NicLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NicLocation::PciPath(p) => write!(f, "PCI {p}"),
            NicLocation::OnboardIndex(i) => write!(f, "onboard index {i}"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct NicRule {
    pub role: NicRole,
    pub location: NicLocation,
    pub drivers: Vec<String>,
    pub min_speed_mbps: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DiskSelector {
    pub transport: Option<Transport>,
    pub pci_path: Option<String>,
    pub model_contains: Option<String>,
}

impl fmt::Display for DiskSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(t) = self.transport {
            parts.push(format!("{t} disk"));
        }
        if let Some(p) = &self.pci_path {
            parts.push(format!("on PCI {p}"));
        }
        if let Some(m) = &self.model_contains {
            parts.push(format!("with model containing {m:?}"));
        }
        f.write_str(&parts.join(" "))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DmiMatch {
    pub sys_vendor: String,
    pub product_name: Option<String>,
    pub board_name: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Minimum {
    pub cpu_cores: u32,
    pub ram_mib: u64,
    pub system_disk_gib: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Modules {
    pub storage: Vec<String>,
    pub nic: Vec<String>,
    pub sensors: Vec<String>,
}

impl Modules {
    /// Every module the board needs, in a stable order, without repeats.
    pub fn all(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        for m in self.storage.iter().chain(&self.nic).chain(&self.sensors) {
            if !all.contains(m) {
                all.push(m.clone());
            }
        }
        all
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Sensor {
    pub chip: String,
    pub label: String,
    pub kind: String,
    pub warn: Option<f64>,
    pub critical: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub name: String,
    pub description: String,
    pub firmware: Vec<FirmwareMode>,
    pub dmi: DmiMatch,
    pub minimum: Minimum,
    pub nics: Vec<NicRule>,
    pub system_disk: Vec<DiskSelector>,
    pub modules: Modules,
    pub sensors: Vec<Sensor>,
}

impl Profile {
    /// Parses one profile file's text; `file` is only used to name it in errors.
    pub fn parse(file: &Path, text: &str) -> Result<Profile, ProfileError> {
        let raw: wire::ProfileFile = toml::from_str(text).map_err(|e| ProfileError::Syntax {
            file: file.to_owned(),
            message: e.to_string().trim_end().replace('\n', "\n    "),
        })?;
        let profile = Profile::try_from(raw).map_err(|e| e.in_file(file))?;
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        if !stem.is_empty() && stem != profile.name {
            return Err(
                FieldError::new("name", format!("the file's stem {stem:?}"), &profile.name).in_file(file)
            );
        }
        Ok(profile)
    }

    /// Reads and parses one profile file.
    pub fn load(file: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(file)
            .map_err(|source| ProfileError::Read { file: file.to_owned(), source })?;
        Profile::parse(file, &text)
    }

    pub fn nic(&self, role: NicRole) -> &NicRule {
        self.nics.iter().find(|n| n.role == role).expect("TryFrom keeps exactly one NIC rule per role")
    }
}

fn check_name(field: &str, value: &str) -> Result<(), FieldError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(field, "a kebab-case name (a-z, 0-9, -)", value))
    }
}

/// Checks a PCI address in the kernel's long form, `DDDD:BB:SS.F`.
pub fn is_pci_address(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 12
        && b[4] == b':'
        && b[7] == b':'
        && b[10] == b'.'
        && [0, 1, 2, 3, 5, 6, 8, 9].iter().all(|&i| b[i].is_ascii_hexdigit())
        && matches!(b[11], b'0'..=b'7')
}

fn check_pci(field: &str, value: &str) -> Result<String, FieldError> {
    if is_pci_address(value) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(FieldError::new(field, "a PCI address like \"0000:00:03.0\"", value))
    }
}

fn check_module_names(field: &str, names: &[String]) -> Result<(), FieldError> {
    for (i, m) in names.iter().enumerate() {
        let ok = !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(FieldError::new(format!("{field}[{i}]"), "a kernel module name", m));
        }
    }
    Ok(())
}

impl TryFrom<wire::ProfileFile> for Profile {
    type Error = FieldError;

    fn try_from(w: wire::ProfileFile) -> Result<Self, FieldError> {
        check_name("name", &w.name)?;
        if w.description.trim().is_empty() {
            return Err(FieldError::new("description", "one line describing the board", ""));
        }

        let mut firmware = Vec::new();
        for (i, f) in w.firmware.iter().enumerate() {
            let mode = match f.as_str() {
                "uefi" => FirmwareMode::Uefi,
                "bios" => FirmwareMode::Bios,
                _ => return Err(FieldError::new(format!("firmware[{i}]"), "\"uefi\" or \"bios\"", f)),
            };
            firmware.push(mode);
        }
        // pairos images boot through a UKI; a board without UEFI cannot run them.
        if !firmware.contains(&FirmwareMode::Uefi) {
            return Err(FieldError::new("firmware", "a list that includes \"uefi\"", &w.firmware));
        }

        if w.dmi.sys_vendor.trim().is_empty() {
            return Err(FieldError::new("match.sys_vendor", "the DMI system vendor", ""));
        }
        if w.dmi.product_name.is_none() && w.dmi.board_name.is_none() {
            return Err(FieldError::new(
                "match",
                "product_name or board_name besides sys_vendor",
                "only sys_vendor",
            ));
        }

        let m = &w.minimum;
        for (field, v) in [
            ("minimum.cpu_cores", u64::from(m.cpu_cores)),
            ("minimum.ram_mib", m.ram_mib),
            ("minimum.system_disk_gib", m.system_disk_gib),
        ] {
            if v == 0 {
                return Err(FieldError::new(field, "a number above 0", v));
            }
        }

        let mut nics = Vec::new();
        for (i, n) in w.nics.iter().enumerate() {
            let field = |f: &str| format!("nic[{i}].{f}");
            let role = match n.role.as_str() {
                "private" => NicRole::Private,
                "public" => NicRole::Public,
                _ => return Err(FieldError::new(field("role"), "\"private\" or \"public\"", &n.role)),
            };
            let location = match (&n.pci_path, n.onboard_index) {
                (Some(p), None) => NicLocation::PciPath(check_pci(&field("pci_path"), p)?),
                (None, Some(idx)) if idx > 0 => NicLocation::OnboardIndex(idx),
                (None, Some(idx)) => {
                    return Err(FieldError::new(field("onboard_index"), "an index from 1", idx))
                }
                _ => {
                    return Err(FieldError::new(
                        format!("nic[{i}]"),
                        "exactly one of pci_path and onboard_index",
                        (&n.pci_path, n.onboard_index),
                    ))
                }
            };
            if n.drivers.is_empty() {
                return Err(FieldError::new(field("drivers"), "at least one kernel driver", "[]"));
            }
            check_module_names(&field("drivers"), &n.drivers)?;
            nics.push(NicRule {
                role,
                location,
                drivers: n.drivers.clone(),
                min_speed_mbps: n.min_speed_mbps,
            });
        }
        for role in [NicRole::Private, NicRole::Public] {
            let count = nics.iter().filter(|n| n.role == role).count();
            if count != 1 {
                return Err(FieldError::new(
                    "nic",
                    format!("exactly one {role} NIC"),
                    format!("{count} of them"),
                ));
            }
        }
        // Exactly one rule per role, so there are two rules.
        if nics[0].location == nics[1].location {
            return Err(FieldError::new("nic", "two different ports", nics[0].location.to_string()));
        }

        if w.system_disk.is_empty() {
            return Err(FieldError::new("system_disk", "at least one disk selector", "[]"));
        }
        let mut system_disk = Vec::new();
        for (i, s) in w.system_disk.iter().enumerate() {
            let field = |f: &str| format!("system_disk[{i}].{f}");
            let transport = match &s.transport {
                None => None,
                Some(t) => Some(t.parse::<Transport>().map_err(|_| {
                    FieldError::new(field("transport"), "virtio, sata, nvme, scsi or usb", t)
                })?),
            };
            let pci_path = match &s.pci_path {
                None => None,
                Some(p) => Some(check_pci(&field("pci_path"), p)?),
            };
            if transport.is_none() && pci_path.is_none() && s.model_contains.is_none() {
                return Err(FieldError::new(
                    format!("system_disk[{i}]"),
                    "at least one of transport, pci_path, model_contains",
                    "an empty selector",
                ));
            }
            system_disk.push(DiskSelector { transport, pci_path, model_contains: s.model_contains.clone() });
        }

        check_module_names("modules.storage", &w.modules.storage)?;
        check_module_names("modules.nic", &w.modules.nic)?;
        check_module_names("modules.sensors", &w.modules.sensors)?;
        if w.modules.storage.is_empty() {
            return Err(FieldError::new("modules.storage", "the storage drivers the board needs", "[]"));
        }
        for (i, n) in nics.iter().enumerate() {
            if !n.drivers.iter().any(|d| w.modules.nic.contains(d)) {
                return Err(FieldError::new(
                    format!("nic[{i}].drivers"),
                    "a driver also listed in modules.nic",
                    &n.drivers,
                ));
            }
        }

        let mut sensors = Vec::new();
        for (i, s) in w.sensors.iter().enumerate() {
            const KINDS: [&str; 5] = ["temperature", "fan", "voltage", "power", "disk-health"];
            if !KINDS.contains(&s.kind.as_str()) {
                return Err(FieldError::new(format!("sensor[{i}].kind"), KINDS.join(", "), &s.kind));
            }
            if let (Some(w), Some(c)) = (s.warn, s.critical) {
                if s.kind != "fan" && w > c {
                    return Err(FieldError::new(
                        format!("sensor[{i}].warn"),
                        "a value not above critical",
                        w,
                    ));
                }
            }
            sensors.push(Sensor {
                chip: s.chip.clone(),
                label: s.label.clone(),
                kind: s.kind.clone(),
                warn: s.warn,
                critical: s.critical,
            });
        }

        Ok(Profile {
            name: w.name,
            description: w.description,
            firmware,
            dmi: DmiMatch {
                sys_vendor: w.dmi.sys_vendor,
                product_name: w.dmi.product_name,
                board_name: w.dmi.board_name,
            },
            minimum: Minimum {
                cpu_cores: m.cpu_cores,
                ram_mib: m.ram_mib,
                system_disk_gib: m.system_disk_gib,
            },
            nics,
            system_disk,
            modules: Modules { storage: w.modules.storage, nic: w.modules.nic, sensors: w.modules.sensors },
            sensors,
        })
    }
}
