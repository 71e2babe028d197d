//! The pair's settings, the same on both nodes (`pair.json` in the state partition, preloaded
//! by `pairos install --node-config`): the pair's address, each node's management address (a
//! node's peer is reached there on the public network), each node's BMC, and the timing. From
//! them and what the node found at boot (its ports), `pairos run` writes the daemon's
//! configuration ([`DaemonConfig`]).
//!
//! The BMC password is not in here: it is `bmc.password` beside it, mode 0600, read by the
//! fence each time. Likewise the witness key, `witness.key`, when there are witnesses.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use super::config::{DaemonConfig, LinkConfig, PairAddressConfig, PublicConfig, Timing};
use crate::pair::fence::FenceConfig;
use crate::pair::management::{parse_cidr, Management};
use crate::pair::private_link;
use pairos_recovery::peer::NodeConfig;

pub const FILE: &str = "pair.json";
pub const BMC_PASSWORD_FILE: &str = "bmc.password";
pub const WITNESS_KEY_FILE: &str = "witness.key";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairSettings {
    /// The address the pair presents, with its prefix (`192.168.50.10/24`).
    pub address: String,
    /// Each node's management address, by node name.
    pub management: BTreeMap<String, Ipv4Addr>,
    /// Each node's BMC, by node name; a node without one cannot be fenced (and so its peer
    /// never replaces it when it goes silent).
    #[serde(default)]
    pub bmc: BTreeMap<String, Bmc>,
    /// The witnesses, `ADDRESS` or `ADDRESS:PORT` (port 7470 by default), the first preferred;
    /// at most two.
    #[serde(default)]
    pub witnesses: Vec<String>,
    #[serde(default)]
    pub timing: Option<Timing>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bmc {
    pub host: String,
    #[serde(default = "ipmi_port")]
    pub port: u16,
    pub user: String,
}

fn ipmi_port() -> u16 {
    623
}

impl PairSettings {
    /// The settings in `state_dir`, if there are any.
    pub fn load(state_dir: &Path) -> anyhow::Result<Option<PairSettings>> {
        let path = state_dir.join(FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let s: PairSettings = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{}: expected address, management {{node: address}}, optional bmc and timing",
                path.display()
            )
        })?;
        s.check().with_context(|| path.display().to_string())?;
        Ok(Some(s))
    }

    pub fn check(&self) -> anyhow::Result<()> {
        parse_cidr(&self.address).map_err(anyhow::Error::msg).context("address")?;
        for node in ["node-1", "node-2"] {
            if !self.management.contains_key(node) {
                bail!("management: no address for {node}");
            }
        }
        self.witness_addresses()?;
        Ok(())
    }

    /// The witnesses' addresses.
    pub fn witness_addresses(&self) -> anyhow::Result<Vec<std::net::SocketAddr>> {
        if self.witnesses.len() > pairos_pair::core::MAX_WITNESSES {
            bail!("witnesses: {} given, expected at most two", self.witnesses.len());
        }
        self.witnesses
            .iter()
            .map(|w| {
                w.parse::<std::net::SocketAddr>()
                    .or_else(|_| w.parse::<Ipv4Addr>().map(|ip| (ip, crate::witness::protocol::PORT).into()))
                    .map_err(|_| anyhow::anyhow!("witnesses: {w:?} is not ADDRESS or ADDRESS:PORT"))
            })
            .collect()
    }

    /// The BMC of `me`'s peer, if it has one: its fence.
    pub fn peer_bmc(&self, me: &NodeConfig, state_dir: &Path) -> Option<FenceConfig> {
        self.bmc.get(&me.peer_name).map(|b| FenceConfig::Ipmi {
            host: b.host.clone(),
            port: b.port,
            user: b.user.clone(),
            password_file: state_dir.join(BMC_PASSWORD_FILE),
        })
    }

    /// The daemon's configuration for `me`, whose ports turned out to be `private` and
    /// `public`.
    pub fn daemon_config(
        &self,
        me: &NodeConfig,
        state_dir: &Path,
        ports: (&str, &str),
        management: Option<&Management>,
        watchdog: Option<PathBuf>,
    ) -> anyhow::Result<DaemonConfig> {
        let (address, prefix) = parse_cidr(&self.address).map_err(anyhow::Error::msg)?;
        let own = *self.management.get(&me.node_name).context("no management address for this node")?;
        let peer = *self.management.get(&me.peer_name).context("no management address for the peer")?;
        let fence = self.peer_bmc(me, state_dir);
        Ok(DaemonConfig {
            node: me.node_name.clone(),
            peer: me.peer_name.clone(),
            pair_id: me.pair_id.clone(),
            key_file: state_dir.join(crate::pair::identity::KEY_FILE),
            state_dir: state_dir.to_owned(),
            run_dir: PathBuf::from(super::config::RUN_DIR),
            preferred: me.node_name == "node-1",
            timing: self.timing.clone().unwrap_or_default(),
            private: LinkConfig {
                interface: ports.0.to_owned(),
                address: private_link::address(&me.node_name),
                peer: private_link::address(&me.peer_name),
            },
            public: PublicConfig {
                interface: ports.1.to_owned(),
                address: own,
                peer,
                gateway: management.and_then(|m| m.gateway),
            },
            pair_address: Some(PairAddressConfig { address, prefix }),
            fence,
            watchdog,
            witnesses: self.witness_addresses()?,
            witness_key_file: (!self.witnesses.is_empty()).then(|| state_dir.join(WITNESS_KEY_FILE)),
            volumes: false,
            sensors: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PairSettings {
        serde_json::from_str(
            r#"{"address": "192.168.50.10/24",
                "management": {"node-1": "192.168.50.11", "node-2": "192.168.50.12"},
                "bmc": {"node-1": {"host": "192.168.50.21", "user": "admin"},
                        "node-2": {"host": "192.168.50.22", "user": "admin"}}}"#,
        )
        .expect("parses")
    }

    #[test]
    fn each_node_fences_its_peer_and_reaches_it_on_both_links() {
        let me = NodeConfig { pair_id: "p".into(), node_name: "node-2".into(), peer_name: "node-1".into() };
        let c = settings()
            .daemon_config(&me, Path::new("/state/pairos"), ("eth0", "eth1"), None, None)
            .expect("a config");
        assert!(!c.preferred);
        assert_eq!(c.public.peer, Ipv4Addr::new(192, 168, 50, 11));
        assert_eq!(c.private.peer, private_link::address("node-1"));
        assert!(matches!(&c.fence, Some(FenceConfig::Ipmi { host, .. }) if host == "192.168.50.21"));
        // It round-trips through the file the daemon reads.
        let text = toml::to_string(&c).expect("serialises");
        let back: DaemonConfig = toml::from_str(&text).expect("parses");
        assert_eq!(back.public.address, Ipv4Addr::new(192, 168, 50, 12));
    }

    #[test]
    fn bad_settings_name_what_is_missing() {
        let mut s = settings();
        s.management.remove("node-2");
        assert!(format!("{:#}", s.check().expect_err("refused")).contains("node-2"));
        let mut s = settings();
        s.address = "192.168.50.10".into();
        assert!(format!("{:#}", s.check().expect_err("refused")).contains("address"));
        let mut s = settings();
        s.witnesses = vec!["192.168.50.30".into(), "witness.example".into()];
        assert!(format!("{:#}", s.check().expect_err("refused")).contains("witness.example"));
        s.witnesses = vec!["192.168.50.30".into(), "192.168.60.30:9000".into()];
        let addresses = s.witness_addresses().expect("two witnesses");
        assert_eq!(addresses[0].port(), 7470);
        assert_eq!(addresses[1].port(), 9000);
        s.witnesses.push("192.168.70.30".into());
        assert!(format!("{:#}", s.check().expect_err("refused")).contains("at most two"));
    }
}
