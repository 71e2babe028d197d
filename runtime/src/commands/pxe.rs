//! `pairos pxe`: network boot on one interface, with a fixed policy.

use std::net::Ipv4Addr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use pairos_pxe::policy::{Decision, Fixed};
use pairos_pxe::service::{serve, AddressMode, PxeService};
use pairos_pxe::sockets::interface_address;

use crate::cli::{PxeArgs, PxePolicy};
use crate::Exit;

fn parse_pool(text: &str) -> anyhow::Result<(Ipv4Addr, Ipv4Addr)> {
    let (a, b) = text.split_once('-').with_context(|| format!("--pool {text:?}: expected FIRST-LAST"))?;
    let first: Ipv4Addr =
        a.trim().parse().with_context(|| format!("--pool: {a:?} is not an IPv4 address"))?;
    let last: Ipv4Addr = b.trim().parse().with_context(|| format!("--pool: {b:?} is not an IPv4 address"))?;
    if u32::from(first) > u32::from(last) {
        bail!("--pool {text}: the first address is above the last");
    }
    Ok((first, last))
}

/// `--check`: is another DHCP server answering on the interface, and who else is there?
fn check(args: &PxeArgs) -> anyhow::Result<Exit> {
    let mac = pairos_pxe::sockets::interface_mac(&args.interface)
        .with_context(|| format!("{}: no such interface, or no MAC address in sysfs", args.interface))?;
    let wait = Duration::from_secs(3);
    let interface = args.interface.clone();
    let sniff = std::thread::spawn(move || pairos_pxe::probe::stations(&interface, wait));
    let found = pairos_pxe::probe::dhcp_servers(&args.interface, mac, wait)?;
    let stations: Vec<String> = sniff
        .join()
        .map_err(|_| anyhow::anyhow!("listening for stations failed"))??
        .iter()
        .map(|m| m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"))
        .collect();
    if args.json {
        let servers: Vec<_> = found
            .iter()
            .map(|r| serde_json::json!({"server": r.server.to_string(), "offered": r.offered.to_string()}))
            .collect();
        crate::output::json(
            &serde_json::json!({"interface": args.interface, "dhcp_servers": servers, "stations": stations}),
        )?;
    } else {
        if found.is_empty() {
            println!("{}: no DHCP server answered", args.interface);
        }
        for r in &found {
            println!("{}: DHCP server {} answered (offered {})", args.interface, r.server, r.offered);
        }
        println!("{}: {} other station(s) heard: {}", args.interface, stations.len(), stations.join(" "));
    }
    Ok(if found.is_empty() { Exit::Success } else { Exit::Negative })
}

pub fn run(args: &PxeArgs) -> anyhow::Result<Exit> {
    if args.check {
        return check(args);
    }
    let root = args.root.clone().context("--root DIR is needed to serve")?;
    for needed in ["recover-bios.ipxe", "recover-uefi.ipxe", "ipxe/undionly.kpxe", "ipxe/snponly.efi"] {
        if !root.join(needed).is_file() {
            bail!(
                "--root {}: expected a PXE set (the pxe/ folder of a pairos build output); {needed} is missing",
                root.display()
            );
        }
    }
    let (ip, _) = interface_address(&args.interface)?;
    let addresses = if args.proxy {
        AddressMode::Proxy
    } else {
        let (first, last) = match &args.pool {
            Some(p) => parse_pool(p)?,
            None => {
                let o = ip.octets();
                (Ipv4Addr::new(o[0], o[1], o[2], 100), Ipv4Addr::new(o[0], o[1], o[2], 199))
            }
        };
        if let Some(dir) = args.lease_file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("making {}", dir.display()))?;
        }
        AddressMode::Pool { first, last, lease_file: args.lease_file.clone(), lease_secs: args.lease_secs }
    };
    let decision = match args.policy {
        PxePolicy::Recover => Decision::Recover,
        PxePolicy::Local => Decision::LocalBoot,
        PxePolicy::Ignore => Decision::Ignore,
    };
    let what = match &addresses {
        AddressMode::Pool { first, last, .. } => format!("DHCP pool {first}-{last}"),
        AddressMode::Proxy => "proxyDHCP".to_owned(),
    };
    eprintln!(
        "pairos pxe: on {} ({ip}): {what}, TFTP port {}, HTTP port {}, policy {:?}, serving {}",
        args.interface,
        args.tftp_port,
        args.http_port,
        args.policy,
        root.display()
    );
    let svc = PxeService {
        interface: args.interface.clone(),
        root,
        addresses,
        tftp_port: args.tftp_port,
        http_port: args.http_port,
    };
    serve(&svc, Fixed(decision), Arc::new(AtomicBool::new(false)))?;
    Ok(Exit::Success)
}
