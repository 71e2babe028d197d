//! The private link found by asking DHCP, for a recovery environment that no iPXE script
//! started. UEFI HTTP boot loads the recovery UKI straight from the peer, and a UKI's command
//! line cannot carry what iPXE would have learnt (the port's MAC, its address, the peer). So
//! the agent asks again, on each port in turn, as the same kind of client (an HTTP boot client,
//! which the peer's policy answers): the port whose DHCP server answers is the private link,
//! and that server is the peer.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use pairos_host::Cmd;

/// What a DHCP exchange on one port gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub interface: String,
    pub mac: String,
    pub ip: Ipv4Addr,
    pub netmask: Ipv4Addr,
    pub server: Ipv4Addr,
}

/// What busybox udhcpc's script prints when bound, for [`parse`].
const SCRIPT: &str = "#!/usr/bin/busybox sh\n[ \"$1\" = bound ] && echo \"LEASE ip=$ip subnet=$subnet serverid=$serverid\"\nexit 0\n";

/// The lease from the script's line, if it printed one.
pub fn parse(output: &str) -> Option<(Ipv4Addr, Ipv4Addr, Ipv4Addr)> {
    let line = output.lines().find(|l| l.starts_with("LEASE "))?;
    let field = |k: &str| line.split_whitespace().find_map(|w| w.strip_prefix(k))?.parse().ok();
    Some((field("ip=")?, field("subnet=")?, field("serverid=")?))
}

fn ports() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.retain(|n| n != "lo" && Path::new("/sys/class/net").join(n).join("device").exists());
    names.sort();
    names
}

/// Asks on every port until one gets a lease, for at most `timeout`.
pub fn find(busybox: &str, timeout: Duration) -> anyhow::Result<Lease> {
    let script = Path::new("/run/pairos/udhcpc.sh");
    std::fs::create_dir_all("/run/pairos").context("making /run/pairos")?;
    std::fs::write(script, SCRIPT).with_context(|| format!("writing {}", script.display()))?;
    Cmd::new(busybox).args(["chmod", "+x"]).arg(script).run()?;
    let start = Instant::now();
    loop {
        for port in ports() {
            let _ = Cmd::new(busybox).args(["ip", "link", "set", "dev", &port, "up"]).run();
            let out = Cmd::new(busybox)
                .args(["udhcpc", "-i", &port, "-f", "-q", "-n", "-t", "3", "-T", "2"])
                .args(["-V", "HTTPClient:Arch:00016:UNDI:003001", "-x", "0x5d:0010", "-s"])
                .arg(script)
                .run_text()
                .unwrap_or_default();
            if let Some((ip, netmask, server)) = parse(&out) {
                let mac = std::fs::read_to_string(format!("/sys/class/net/{port}/address"))
                    .map(|m| m.trim().to_ascii_lowercase())
                    .unwrap_or_default();
                return Ok(Lease { interface: port, mac, ip, netmask, server });
            }
        }
        if start.elapsed() > timeout {
            bail!("no port got an address from a peer's DHCP (asked on {:?} for {timeout:?})", ports());
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_line_is_read_back() {
        let out = "udhcpc: started\nLEASE ip=10.77.0.103 subnet=255.255.255.0 serverid=10.77.0.1\n";
        let want =
            (Ipv4Addr::new(10, 77, 0, 103), Ipv4Addr::new(255, 255, 255, 0), Ipv4Addr::new(10, 77, 0, 1));
        assert_eq!(parse(out), Some(want));
        assert_eq!(parse("LEASE ip=10.77.0.103 subnet= serverid=10.77.0.1"), None);
        assert_eq!(parse("udhcpc: no lease, failing"), None);
    }
}
