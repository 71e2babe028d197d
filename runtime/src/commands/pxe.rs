//! `pairos pxe`: network boot on one interface, with a fixed policy.

use std::net::Ipv4Addr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context};
use pairos_pxe::policy::{Decision, Fixed};
use pairos_pxe::serve::{interface_address, serve_dhcp, DhcpService};

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

pub fn run(args: &PxeArgs) -> anyhow::Result<Exit> {
    if !args.root.join("recover-bios.ipxe").is_file() {
        bail!(
            "--root {}: expected a PXE set (the pxe/ folder of a pairos build output)",
            args.root.display()
        );
    }
    let (ip, _) = interface_address(&args.interface)?;
    let pool = match &args.pool {
        Some(p) => parse_pool(p)?,
        None => {
            let o = ip.octets();
            (Ipv4Addr::new(o[0], o[1], o[2], 100), Ipv4Addr::new(o[0], o[1], o[2], 199))
        }
    };
    if let Some(dir) = args.lease_file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("making {}", dir.display()))?;
    }
    let decision = match args.policy {
        PxePolicy::Recover => Decision::Recover,
        PxePolicy::Local => Decision::LocalBoot,
        PxePolicy::Ignore => Decision::Ignore,
    };
    eprintln!(
        "pairos pxe: DHCP on {} ({ip}), pool {}-{}, policy {:?}; TFTP and HTTP are not served yet",
        args.interface, pool.0, pool.1, args.policy
    );
    let svc = DhcpService {
        interface: args.interface.clone(),
        pool,
        lease_file: args.lease_file.clone(),
        lease_secs: args.lease_secs,
        http_port: args.http_port,
    };
    serve_dhcp(&svc, Fixed(decision), Arc::new(AtomicBool::new(false)))?;
    Ok(Exit::Success)
}
