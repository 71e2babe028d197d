//! `pairos boards …`: list, show, probe, check.

use anyhow::Context;
use pairos_boards::profile::NicRole;
use pairos_boards::{probe, profiles, verdict, Inventory, Profile, Verdict};

use crate::cli::{BoardsCommand, CheckArgs, ProbeArgs, ProfilesArgs, ShowArgs};
use crate::{output, Exit};

pub fn run(cmd: BoardsCommand) -> anyhow::Result<Exit> {
    match cmd {
        BoardsCommand::List(args) => list(&args),
        BoardsCommand::Show(args) => show(&args),
        BoardsCommand::Probe(args) => probe_cmd(&args),
        BoardsCommand::Check(args) => check(&args),
    }
}

fn load(args: &ProfilesArgs) -> anyhow::Result<Vec<Profile>> {
    Ok(match &args.profiles {
        Some(dir) => profiles::load_dir(dir)?,
        None => profiles::builtin().context("the built-in board profiles")?,
    })
}

fn list(args: &ProfilesArgs) -> anyhow::Result<Exit> {
    let profiles = load(args)?;
    if args.json {
        output::json(&profiles)?;
        return Ok(Exit::Success);
    }
    let width = profiles.iter().map(|p| p.name.len()).max().unwrap_or(4);
    println!("{:width$}  {:9}  DESCRIPTION", "NAME", "FIRMWARE");
    for p in &profiles {
        let fw: Vec<String> = p.firmware.iter().map(ToString::to_string).collect();
        println!("{:width$}  {:9}  {}", p.name, fw.join(","), p.description);
    }
    Ok(Exit::Success)
}

/// One line of `boards show`: a label column, then the value.
fn row(label: &str, value: &str) {
    println!("  {label:18}{value}");
}

fn show(args: &ShowArgs) -> anyhow::Result<Exit> {
    let profiles = load(&args.profiles)?;
    let p = profiles::find(&profiles, &args.name).map_err(anyhow::Error::msg)?;
    if args.profiles.json {
        output::json(p)?;
        return Ok(Exit::Success);
    }
    println!("{} — {}", p.name, p.description);
    let mut ident = format!("DMI vendor {:?}", p.dmi.sys_vendor);
    if let Some(prod) = &p.dmi.product_name {
        ident.push_str(&format!(", product {prod:?}"));
    }
    if let Some(board) = &p.dmi.board_name {
        ident.push_str(&format!(", board {board:?}"));
    }
    row("identified by", &ident);
    let fw: Vec<String> = p.firmware.iter().map(ToString::to_string).collect();
    row("firmware", &fw.join(", "));
    row(
        "minimum",
        &format!(
            "{} cores, {} MiB RAM, {} GiB system disk",
            p.minimum.cpu_cores, p.minimum.ram_mib, p.minimum.system_disk_gib
        ),
    );
    for role in [NicRole::Private, NicRole::Public] {
        let n = p.nic(role);
        let speed = n.min_speed_mbps.map(|s| format!(", at least {s} Mb/s")).unwrap_or_default();
        row(&format!("{role} NIC"), &format!("{} ({}{speed})", n.location, n.drivers.join(" or ")));
    }
    for (i, s) in p.system_disk.iter().enumerate() {
        let label = if i == 0 { "system disk" } else { "  else" };
        row(label, &format!("the one {s}"));
    }
    row("modules", &format!("storage: {}", p.modules.storage.join(" ")));
    row("", &format!("nic: {}", p.modules.nic.join(" ")));
    if !p.modules.sensors.is_empty() {
        row("", &format!("sensors: {}", p.modules.sensors.join(" ")));
    }
    for s in &p.sensors {
        let lim = |v: Option<f64>| v.map_or("-".to_owned(), |v| v.to_string());
        row(
            "sensor",
            &format!(
                "{} {:?} ({}), warn {}, critical {}",
                s.chip,
                s.label,
                s.kind,
                lim(s.warn),
                lim(s.critical)
            ),
        );
    }
    Ok(Exit::Success)
}

fn probe_cmd(args: &ProbeArgs) -> anyhow::Result<Exit> {
    let inv = probe::probe(&args.sysfs)?;
    if args.json {
        output::json(&inv)?;
    } else {
        print_inventory(&inv);
    }
    Ok(Exit::Success)
}

fn print_inventory(inv: &Inventory) {
    let d = &inv.dmi;
    let s = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
    println!("board     {} {} (board {})", s(&d.sys_vendor), s(&d.product_name), s(&d.board_name));
    println!("firmware  {}", inv.firmware);
    println!("cpu       {} cores, {} threads, {}", inv.cpu.cores, inv.cpu.logical, s(&inv.cpu.model));
    println!("memory    {} MiB", inv.memory.total_mib);
    for n in &inv.nics {
        println!(
            "nic       {} {} at {} driver {}{}",
            n.name,
            s(&n.mac),
            s(&n.pci_address),
            s(&n.driver),
            n.onboard_index.map(|i| format!(" onboard {i}")).unwrap_or_default()
        );
    }
    for disk in &inv.disks {
        println!(
            "disk      {} {:.1} GiB {} at {} model {}{}",
            disk.name,
            disk.size_gib(),
            disk.transport,
            s(&disk.pci_address),
            s(&disk.model),
            if disk.removable { " removable" } else { "" }
        );
    }
}

fn check(args: &CheckArgs) -> anyhow::Result<Exit> {
    let profiles = load(&args.profiles)?;
    let inv = probe::probe(&args.sysfs)?;
    let v = verdict::check(&profiles, &inv);
    if args.profiles.json {
        output::json(&v)?;
    } else {
        print_verdict(&v);
    }
    Ok(if v.certified { Exit::Success } else { Exit::Negative })
}

fn print_verdict(v: &Verdict) {
    match (&v.profile, v.certified) {
        (Some(p), true) => println!("certified: {p}"),
        (Some(p), false) => {
            println!("not certified: this is a {p}, but it does not meet the profile")
        }
        (None, _) => println!("not certified: unknown board"),
    }
    for c in &v.checks {
        println!("  {}  {}: {}", if c.ok { "ok  " } else { "FAIL" }, c.requirement, c.detail);
    }
    if v.certified {
        let s = |o: &Option<String>| o.clone().unwrap_or_default();
        println!(
            "private link {}, public network {}, system disk {}",
            s(&v.private_nic),
            s(&v.public_nic),
            s(&v.system_disk)
        );
    }
}
