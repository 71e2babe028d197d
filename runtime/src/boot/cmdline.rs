//! The kernel command line, as far as pairos reads it.

use std::fmt;
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Boot the installed root and run the pair runtime.
    Run,
    /// Network-booted: image this node's disk from its peer.
    Recover,
    /// Booted from the ISO: install onto this node's disk.
    Install,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Run => "run",
            Mode::Recover => "recover",
            Mode::Install => "install",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootArgs {
    pub mode: Mode,
    pub root_hash: Option<[u8; 32]>,
    /// What iPXE learnt when it booted the recovery environment (`pairos.mac=`, `pairos.ip=`,
    /// `pairos.netmask=`, `pairos.peer=`): the port, its address and the peer it booted from.
    pub mac: Option<String>,
    pub ip: Option<Ipv4Addr>,
    pub netmask: Option<Ipv4Addr>,
    pub peer: Option<Ipv4Addr>,
    /// The installer's management network (`pairos.address=CIDR`, `pairos.gateway=`,
    /// `pairos.dns=`).
    pub address: Option<(Ipv4Addr, u8)>,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Option<Ipv4Addr>,
}

#[derive(Debug, thiserror::Error)]
pub enum CmdlineError {
    #[error("pairos.mode={0:?}: expected run, recover or install")]
    Mode(String),
    #[error("roothash={0:?}: expected 64 hex digits")]
    RootHash(String),
    #[error("{0}={1:?}: expected an IPv4 address")]
    Address(&'static str, String),
    #[error("pairos.mac={0:?}: expected a MAC address like 52:54:00:12:34:56")]
    Mac(String),
    #[error("pairos.address={0}")]
    Cidr(String),
}

fn address(key: &'static str, value: &str) -> Result<Ipv4Addr, CmdlineError> {
    value.parse().map_err(|_| CmdlineError::Address(key, value.to_owned()))
}

pub fn parse(line: &str) -> Result<BootArgs, CmdlineError> {
    let mut args = BootArgs {
        mode: Mode::Run,
        root_hash: None,
        mac: None,
        ip: None,
        netmask: None,
        peer: None,
        address: None,
        gateway: None,
        dns: None,
    };
    // iPXE leaves a setting it does not have empty: an empty value is an absent one.
    for word in line.split_whitespace().filter(|w| !w.ends_with('=')) {
        if let Some(mode) = word.strip_prefix("pairos.mode=") {
            args.mode = match mode {
                "run" => Mode::Run,
                "recover" => Mode::Recover,
                "install" => Mode::Install,
                other => return Err(CmdlineError::Mode(other.to_owned())),
            };
        } else if let Some(hash) = word.strip_prefix("roothash=") {
            let parsed = pairos_image::layout::parse_root_hash(hash)
                .ok_or_else(|| CmdlineError::RootHash(hash.to_owned()))?;
            args.root_hash = Some(parsed);
        } else if let Some(mac) = word.strip_prefix("pairos.mac=") {
            let ok =
                mac.len() == 17 && mac.split(':').all(|b| b.len() == 2 && u8::from_str_radix(b, 16).is_ok());
            if !ok {
                return Err(CmdlineError::Mac(mac.to_owned()));
            }
            args.mac = Some(mac.to_ascii_lowercase());
        } else if let Some(v) = word.strip_prefix("pairos.ip=") {
            args.ip = Some(address("pairos.ip", v)?);
        } else if let Some(v) = word.strip_prefix("pairos.netmask=") {
            args.netmask = Some(address("pairos.netmask", v)?);
        } else if let Some(v) = word.strip_prefix("pairos.peer=") {
            args.peer = Some(address("pairos.peer", v)?);
        } else if let Some(v) = word.strip_prefix("pairos.address=") {
            args.address = Some(crate::pair::management::parse_cidr(v).map_err(CmdlineError::Cidr)?);
        } else if let Some(v) = word.strip_prefix("pairos.gateway=") {
            args.gateway = Some(address("pairos.gateway", v)?);
        } else if let Some(v) = word.strip_prefix("pairos.dns=") {
            args.dns = Some(address("pairos.dns", v)?);
        }
    }
    Ok(args)
}

pub fn read() -> anyhow::Result<BootArgs> {
    let line = std::fs::read_to_string("/proc/cmdline")?;
    Ok(parse(&line)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_root_hash_are_read() {
        let hash = "ab".repeat(32);
        let a = parse(&format!("console=ttyS0 roothash={hash} quiet")).expect("parse");
        assert_eq!(a.mode, Mode::Run);
        assert_eq!(a.root_hash, Some([0xab; 32]));
        assert_eq!(parse("pairos.mode=recover initrd=initrd.img").expect("parse").mode, Mode::Recover);
        assert!(parse("pairos.mode=rescue")
            .expect_err("bad mode")
            .to_string()
            .contains("expected run, recover"));
        assert!(parse("roothash=12").is_err());
    }

    #[test]
    fn what_ipxe_learnt_is_read() {
        let a = parse(
            "pairos.mode=recover pairos.mac=52:54:00:AB:cd:01 pairos.ip=10.77.0.100 \
             pairos.netmask=255.255.255.0 pairos.peer=10.77.0.1",
        )
        .expect("parse");
        assert_eq!(a.mac.as_deref(), Some("52:54:00:ab:cd:01"));
        assert_eq!(a.ip, Some(Ipv4Addr::new(10, 77, 0, 100)));
        assert_eq!(a.netmask, Some(Ipv4Addr::new(255, 255, 255, 0)));
        assert_eq!(a.peer, Some(Ipv4Addr::new(10, 77, 0, 1)));
        assert_eq!(parse("pairos.peer= pairos.mode=recover").expect("empty is absent").peer, None);
        assert!(parse("pairos.peer=10.77.0").expect_err("short").to_string().contains("pairos.peer"));
        assert!(parse("pairos.mac=52:54").is_err());
    }

    #[test]
    fn the_management_network_is_read() {
        let a = parse("pairos.mode=install pairos.address=192.168.77.10/24 pairos.gateway=192.168.77.1")
            .expect("parse");
        assert_eq!(a.address, Some((Ipv4Addr::new(192, 168, 77, 10), 24)));
        assert_eq!(a.gateway, Some(Ipv4Addr::new(192, 168, 77, 1)));
        let err = parse("pairos.address=192.168.77.10").expect_err("no prefix").to_string();
        assert!(err.contains("pairos.address=") && err.contains("prefix length"), "{err}");
    }
}
