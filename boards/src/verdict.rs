//! Whether an inventory is a certified board, and why not.
//!
//! A profile is chosen by DMI alone; then every requirement of that profile is checked and each
//! one that fails is said in words. The verdict also names which port is the private link,
//! which the public network, and which disk is the system disk: later stages use those
//! assignments and never guess.

use serde::Serialize;

use crate::inventory::{Disk, Inventory, Nic};
use crate::profile::{DiskSelector, NicLocation, NicRole, NicRule, Profile};

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub certified: bool,
    /// The profile the DMI identity matched, certified or not.
    pub profile: Option<String>,
    pub checks: Vec<Check>,
    /// Every failed requirement, in words. Empty when certified.
    pub reasons: Vec<String>,
    pub private_nic: Option<String>,
    pub public_nic: Option<String>,
    pub system_disk: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub requirement: String,
    pub ok: bool,
    pub detail: String,
}

/// `pattern` ending in `*` matches by prefix; otherwise exactly. Both sides are trimmed, since
/// vendors pad DMI strings.
fn dmi_field_matches(pattern: &str, value: Option<&str>) -> bool {
    let Some(value) = value.map(str::trim) else {
        return false;
    };
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix.trim()),
        None => value == pattern.trim(),
    }
}

pub fn dmi_matches(profile: &Profile, inv: &Inventory) -> bool {
    let d = &inv.dmi;
    dmi_field_matches(&profile.dmi.sys_vendor, d.sys_vendor.as_deref())
        && profile.dmi.product_name.as_deref().is_none_or(|p| dmi_field_matches(p, d.product_name.as_deref()))
        && profile.dmi.board_name.as_deref().is_none_or(|p| dmi_field_matches(p, d.board_name.as_deref()))
}

/// Decides whether `inv` is one of `profiles`.
pub fn check(profiles: &[Profile], inv: &Inventory) -> Verdict {
    let candidates: Vec<&Profile> = profiles.iter().filter(|p| dmi_matches(p, inv)).collect();
    if candidates.is_empty() {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
        let reason = format!(
            "unknown board: DMI vendor {:?}, product {:?}, board {:?} match no certified profile \
             (certified: {})",
            show(&inv.dmi.sys_vendor),
            show(&inv.dmi.product_name),
            show(&inv.dmi.board_name),
            profiles.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
        );
        return Verdict {
            certified: false,
            profile: None,
            checks: vec![Check {
                requirement: "board identity (DMI)".into(),
                ok: false,
                detail: reason.clone(),
            }],
            reasons: vec![reason],
            private_nic: None,
            public_nic: None,
            system_disk: None,
        };
    }
    // Overlapping DMI patterns are allowed (a generic and a specific profile); the first
    // profile that certifies wins, otherwise the first one's reasons are reported.
    let verdicts: Vec<Verdict> = candidates.iter().map(|p| check_profile(p, inv)).collect();
    let first_certified = verdicts.iter().position(|v| v.certified).unwrap_or(0);
    verdicts.into_iter().nth(first_certified).expect("at least one candidate")
}

fn check_profile(profile: &Profile, inv: &Inventory) -> Verdict {
    let mut checks = vec![Check {
        requirement: "board identity (DMI)".into(),
        ok: true,
        detail: format!(
            "{} {}",
            inv.dmi.sys_vendor.as_deref().unwrap_or_default(),
            inv.dmi.product_name.as_deref().or(inv.dmi.board_name.as_deref()).unwrap_or_default()
        ),
    }];

    let fw_ok = profile.firmware.contains(&inv.firmware);
    checks.push(Check {
        requirement: "firmware mode".into(),
        ok: fw_ok,
        detail: format!(
            "booted in {} mode; the profile allows {}",
            inv.firmware,
            profile.firmware.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        ),
    });

    let min = &profile.minimum;
    checks.push(Check {
        requirement: "CPU cores".into(),
        ok: inv.cpu.cores >= min.cpu_cores,
        detail: format!("{} cores, at least {} required", inv.cpu.cores, min.cpu_cores),
    });
    checks.push(Check {
        requirement: "memory".into(),
        ok: inv.memory.total_mib >= min.ram_mib,
        detail: format!("{} MiB, at least {} MiB required", inv.memory.total_mib, min.ram_mib),
    });

    let mut assigned = [None, None];
    for (slot, role) in [NicRole::Private, NicRole::Public].into_iter().enumerate() {
        let rule = profile.nic(role);
        let (check, nic) = check_nic(rule, &inv.nics);
        assigned[slot] = nic;
        checks.push(check);
    }

    let (disk_check, system_disk) = check_system_disk(&profile.system_disk, min.system_disk_gib, &inv.disks);
    checks.push(disk_check);

    let reasons: Vec<String> =
        checks.iter().filter(|c| !c.ok).map(|c| format!("{}: {}", c.requirement, c.detail)).collect();
    let [private_nic, public_nic] = assigned;
    Verdict {
        certified: reasons.is_empty(),
        profile: Some(profile.name.clone()),
        checks,
        reasons,
        private_nic,
        public_nic,
        system_disk,
    }
}

fn describe_nics(nics: &[Nic]) -> String {
    if nics.is_empty() {
        return "no NIC ports found".into();
    }
    let list: Vec<String> = nics
        .iter()
        .map(|n| {
            let at = n.pci_address.as_deref().unwrap_or("no PCI address");
            format!("{} at {} ({})", n.name, at, n.driver.as_deref().unwrap_or("no driver"))
        })
        .collect();
    format!("ports present: {}", list.join(", "))
}

fn check_nic(rule: &NicRule, nics: &[Nic]) -> (Check, Option<String>) {
    let requirement = format!("{} NIC at {}", rule.role, rule.location);
    let found = nics.iter().find(|n| match &rule.location {
        NicLocation::PciPath(p) => n.pci_address.as_deref() == Some(p.as_str()),
        NicLocation::OnboardIndex(i) => n.onboard_index == Some(*i),
    });
    let Some(nic) = found else {
        let detail = format!("not found; {}", describe_nics(nics));
        return (Check { requirement, ok: false, detail }, None);
    };
    let driver = nic.driver.as_deref().unwrap_or("none");
    if !rule.drivers.iter().any(|d| d == driver) {
        let detail =
            format!("{} is driven by {driver}, expected one of {}", nic.name, rule.drivers.join(", "));
        return (Check { requirement, ok: false, detail }, Some(nic.name.clone()));
    }
    if let (Some(min), Some(speed)) = (rule.min_speed_mbps, nic.speed_mbps) {
        if speed < min {
            let detail = format!("{} links at {speed} Mb/s, at least {min} Mb/s required", nic.name);
            return (Check { requirement, ok: false, detail }, Some(nic.name.clone()));
        }
    }
    let detail = format!("{} ({driver})", nic.name);
    (Check { requirement, ok: true, detail }, Some(nic.name.clone()))
}

fn selector_matches(s: &DiskSelector, d: &Disk) -> bool {
    !d.removable
        && s.transport.is_none_or(|t| t == d.transport)
        && s.pci_path.as_deref().is_none_or(|p| d.pci_address.as_deref() == Some(p))
        && s.model_contains.as_deref().is_none_or(|m| d.model.as_deref().is_some_and(|dm| dm.contains(m)))
}

fn check_system_disk(selectors: &[DiskSelector], min_gib: u64, disks: &[Disk]) -> (Check, Option<String>) {
    let requirement = "system disk".to_owned();
    for selector in selectors {
        let matching: Vec<&Disk> = disks.iter().filter(|d| selector_matches(selector, d)).collect();
        match matching.as_slice() {
            [] => continue,
            [disk] => {
                let ok = disk.size_bytes >= min_gib << 30;
                let detail = format!(
                    "{} ({selector}), {:.1} GiB{}",
                    disk.name,
                    disk.size_gib(),
                    if ok { String::new() } else { format!(", at least {min_gib} GiB required") }
                );
                return (Check { requirement, ok, detail }, ok.then(|| disk.name.clone()));
            }
            several => {
                let names: Vec<&str> = several.iter().map(|d| d.name.as_str()).collect();
                let detail = format!(
                    "{} disks match the rule \"{selector}\" ({}); refusing to guess which is the system disk",
                    names.len(),
                    names.join(", ")
                );
                return (Check { requirement, ok: false, detail }, None);
            }
        }
    }
    let rules: Vec<String> = selectors.iter().map(|s| format!("\"{s}\"")).collect();
    let present: Vec<String> = disks
        .iter()
        .map(|d| {
            format!(
                "{} ({} {:.1} GiB{})",
                d.name,
                d.transport,
                d.size_gib(),
                if d.removable { ", removable" } else { "" }
            )
        })
        .collect();
    let detail = format!(
        "no disk matches {}; disks present: {}",
        rules.join(" or "),
        if present.is_empty() { "none".into() } else { present.join(", ") }
    );
    (Check { requirement, ok: false, detail }, None)
}
