//! The management network: the one address the operator gives at installation (on the
//! installer's kernel command line, or typed at its prompt), with its gateway and DNS server.
//! Kept in the state partition as `pairos/management.json`; the runtime puts it on the public
//! port at every start.

use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

pub const FILE: &str = "management.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Management {
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Option<Ipv4Addr>,
}

/// `192.168.1.10/24` → (address, prefix length).
pub fn parse_cidr(text: &str) -> Result<(Ipv4Addr, u8), String> {
    let bad = || format!("{text:?}: expected an IPv4 address with its prefix length, like 192.168.1.10/24");
    let (ip, len) = text.trim().split_once('/').ok_or_else(bad)?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().ok().filter(|l| (1..=32).contains(l)).ok_or_else(bad)?;
    Ok((ip, len))
}

impl Management {
    pub fn load(dir: &Path) -> anyhow::Result<Option<Management>> {
        let path = dir.join(FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .with_context(|| format!("{}: expected address, prefix, gateway and dns", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut text = serde_json::to_vec_pretty(self).expect("serialises");
        text.push(b'\n');
        text
    }

    /// Puts the address on `interface`, the default route through the gateway, and the DNS
    /// server into /run/pairos/resolv.conf.
    pub fn apply(&self, interface: &str) -> anyhow::Result<()> {
        super::private_link::bring_up(&["ip"], interface, self.address, self.prefix)?;
        if let Some(gw) = self.gateway {
            pairos_host::Cmd::new("ip")
                .args(["route", "replace", "default", "via", &gw.to_string(), "dev", interface])
                .run()
                .with_context(|| format!("routing through {gw}"))?;
        }
        if let Some(dns) = self.dns {
            let path = Path::new("/run/pairos/resolv.conf");
            super::identity::write_atomically(path, format!("nameserver {dns}\n").as_bytes())?;
        }
        Ok(())
    }
}

impl std::fmt::Display for Management {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)?;
        if let Some(gw) = self.gateway {
            write!(f, " via {gw}")?;
        }
        if let Some(dns) = self.dns {
            write!(f, ", DNS {dns}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_read_and_kept() {
        assert_eq!(parse_cidr("10.0.0.5/16"), Ok((Ipv4Addr::new(10, 0, 0, 5), 16)));
        for bad in ["10.0.0.5", "10.0.0.5/33", "10.0.0/8", "x/24", "10.0.0.5/0"] {
            assert!(parse_cidr(bad).expect_err(bad).contains("expected an IPv4 address"));
        }
        let m = Management {
            address: Ipv4Addr::new(192, 168, 77, 10),
            prefix: 24,
            gateway: Some(Ipv4Addr::new(192, 168, 77, 1)),
            dns: None,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(FILE), m.to_bytes()).expect("write");
        assert_eq!(Management::load(dir.path()).expect("load"), Some(m.clone()));
        assert_eq!(m.to_string(), "192.168.77.10/24 via 192.168.77.1");
        assert_eq!(Management::load(&dir.path().join("none")).expect("absent"), None);
    }
}
