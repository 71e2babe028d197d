//! Who this node is: its name in the pair, the pair's id and its peer's name, kept in the state
//! partition as `pairos/node.json`. The first node of a pair makes them up on its first run; a
//! node that images itself from its peer is given them by the peer and writes them before its
//! first boot. The pair key (`pair.key`, 64 hex digits, mode 0600) is made with the pair and
//! reaches the second node only by enrolment or a partner's preload. The peers this node has
//! installed are remembered beside it (`peers.json`), so that a healthy peer that
//! network-boots again is told to boot its disk; `pairos pair forget-peer` forgets one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use pairos_recovery::peer::NodeConfig;
use pairos_recovery::trust::PairKey;

/// The identity's folder on a running node.
pub const STATE_DIR: &str = "/state/pairos";
pub const NODE_FILE: &str = "node.json";
pub const KEY_FILE: &str = "pair.key";
const PEERS_FILE: &str = "peers.json";

/// Writes `bytes` to `path` whole or not at all, mode 0600 ([`pairos_host::write_atomically`]).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    Ok(pairos_host::write_atomically(path, bytes)?)
}

/// What `pairos install --node-config FILE` preloads: the node's identity and, optionally, its
/// management network.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preload {
    pub pair_id: String,
    pub node_name: String,
    pub peer_name: String,
    #[serde(default)]
    pub management: Option<super::management::Management>,
    /// The pair key, 64 hex digits, so that both nodes of one pair can be preloaded. Without
    /// it, node-1 makes the key on its first run.
    #[serde(default)]
    pub pair_key: Option<String>,
    /// The pair's settings (its address, the nodes' management addresses and BMCs): with
    /// them, the node runs the pair daemon.
    #[serde(default)]
    pub pair: Option<crate::pair::daemon::settings::PairSettings>,
    /// The password of the peer's BMC, for fencing (kept mode 0600, never logged).
    #[serde(default)]
    pub bmc_password: Option<String>,
    /// The witness key, 64 hex digits (`pairos witness key` makes one), when the pair's
    /// settings name witnesses (kept mode 0600).
    #[serde(default)]
    pub witness_key: Option<String>,
}

impl Preload {
    /// Reads and checks `path`; nothing is written before this succeeds.
    pub fn load(path: &Path) -> anyhow::Result<Preload> {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let p: Preload = serde_json::from_slice(&text).with_context(|| {
            format!(
                "{}: expected {{\"pair_id\", \"node_name\", \"peer_name\", optional \"management\": \
                 {{\"address\", \"prefix\", \"gateway\", \"dns\"}}}}",
                path.display()
            )
        })?;
        p.check().with_context(|| path.display().to_string())?;
        Ok(p)
    }

    /// Checks what a preload or the peer gave, before anything is written.
    pub fn check(&self) -> anyhow::Result<()> {
        let names = [self.node_name.as_str(), self.peer_name.as_str()];
        if names != ["node-1", "node-2"] && names != ["node-2", "node-1"] {
            anyhow::bail!(
                "node_name and peer_name must be node-1 and node-2, one each (found {:?} and {:?})",
                self.node_name,
                self.peer_name
            );
        }
        if self.pair_id.trim().is_empty() {
            anyhow::bail!("pair_id is empty");
        }
        if self.pair_key.as_deref().is_some_and(|k| PairKey::from_hex(k).is_none()) {
            anyhow::bail!("pair_key: expected 64 hex digits (256 bits)");
        }
        if self.witness_key.as_deref().is_some_and(|k| PairKey::from_hex(k.trim()).is_none()) {
            anyhow::bail!("witness_key: expected 64 hex digits (256 bits)");
        }
        if let Some(settings) = &self.pair {
            settings.check().context("pair")?;
            if !settings.witnesses.is_empty() && self.witness_key.is_none() {
                anyhow::bail!("pair names witnesses but there is no witness_key");
            }
        }
        Ok(())
    }

    /// The files for the state partition.
    pub fn files(&self) -> Vec<(&'static str, Vec<u8>)> {
        let node = NodeConfig {
            pair_id: self.pair_id.clone(),
            node_name: self.node_name.clone(),
            peer_name: self.peer_name.clone(),
        };
        let mut files = vec![(NODE_FILE, serde_json::to_vec_pretty(&node).expect("serialises"))];
        if let Some(m) = &self.management {
            files.push((super::management::FILE, m.to_bytes()));
        }
        if let Some(k) = &self.pair_key {
            files.push((KEY_FILE, format!("{}\n", k.trim().to_ascii_lowercase()).into_bytes()));
        }
        if let Some(s) = &self.pair {
            files.push((
                crate::pair::daemon::settings::FILE,
                serde_json::to_vec_pretty(s).expect("serialises"),
            ));
        }
        if let Some(p) = &self.bmc_password {
            files.push((crate::pair::daemon::settings::BMC_PASSWORD_FILE, p.clone().into_bytes()));
        }
        if let Some(k) = &self.witness_key {
            let text = format!("{}\n", k.trim().to_ascii_lowercase());
            files.push((crate::pair::daemon::settings::WITNESS_KEY_FILE, text.into_bytes()));
        }
        files
    }
}

pub fn node_file(dir: &Path) -> PathBuf {
    dir.join(NODE_FILE)
}

pub fn write(dir: &Path, node: &NodeConfig) -> anyhow::Result<()> {
    let mut text = serde_json::to_vec_pretty(node).expect("a node config serialises");
    text.push(b'\n');
    write_atomically(&node_file(dir), &text)
}

/// A new pair, with this node as its first.
pub fn new_pair() -> anyhow::Result<NodeConfig> {
    let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .context("reading a random UUID from the kernel")?;
    Ok(NodeConfig { pair_id: uuid.trim().to_owned(), node_name: "node-1".into(), peer_name: "node-2".into() })
}

/// The node's identity; on the first run of a pair's first node, a new one (`node-1` of a new
/// pair). The bool says whether it was made now.
pub fn load_or_create(dir: &Path) -> anyhow::Result<(NodeConfig, bool)> {
    let path = node_file(dir);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let node = serde_json::from_slice(&bytes).with_context(|| {
                format!("{}: expected {{\"pair_id\", \"node_name\", \"peer_name\"}}", path.display())
            })?;
            Ok((node, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let node = new_pair()?;
            write(dir, &node)?;
            Ok((node, true))
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The pair key, made now (and said by the bool) if this node has none: on a pair's first
/// node, the pair is formed here.
pub fn load_or_create_key(dir: &Path) -> anyhow::Result<(PairKey, bool)> {
    let path = dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => PairKey::from_hex(&text)
            .map(|k| (k, false))
            .with_context(|| format!("{}: expected 64 hex digits", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = PairKey::generate().context("reading randomness for the pair key")?;
            write_atomically(&path, key_file_bytes(&key).as_slice())?;
            Ok((key, true))
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// What `pair.key` holds.
pub fn key_file_bytes(key: &PairKey) -> Vec<u8> {
    format!("{}\n", key.to_hex()).into_bytes()
}

/// The configuration this node gives its peer: the same pair, the names the other way round.
pub fn for_peer(me: &NodeConfig) -> NodeConfig {
    NodeConfig {
        pair_id: me.pair_id.clone(),
        node_name: me.peer_name.clone(),
        peer_name: me.node_name.clone(),
    }
}

/// The private-link MACs of the peers this node has installed.
pub fn known_peers(dir: &Path) -> BTreeSet<String> {
    std::fs::read(dir.join(PEERS_FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// Forgets a remembered peer; says whether it was remembered.
pub fn forget_peer(dir: &Path, mac: &str) -> anyhow::Result<bool> {
    let mut peers = known_peers(dir);
    let forgotten = peers.remove(&mac.to_ascii_lowercase());
    if forgotten {
        let text = serde_json::to_vec_pretty(&peers).expect("a set of strings serialises");
        write_atomically(&dir.join(PEERS_FILE), &text)?;
    }
    Ok(forgotten)
}

pub fn remember_peer(dir: &Path, mac: &str) -> anyhow::Result<()> {
    let mut peers = known_peers(dir);
    if peers.insert(mac.to_ascii_lowercase()) {
        let text = serde_json::to_vec_pretty(&peers).expect("a set of strings serialises");
        write_atomically(&dir.join(PEERS_FILE), &text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_is_kept_and_mirrored_for_the_peer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (me, made) = load_or_create(dir.path()).expect("made");
        assert!(made);
        assert_eq!(me.node_name, "node-1");
        let (again, made) = load_or_create(dir.path()).expect("loaded");
        assert!(!made);
        assert_eq!(again, me);
        let peer = for_peer(&me);
        assert_eq!((peer.node_name.as_str(), peer.peer_name.as_str()), ("node-2", "node-1"));
        assert_eq!(peer.pair_id, me.pair_id);

        remember_peer(dir.path(), "52:54:00:AA:BB:CC").expect("remembered");
        assert!(known_peers(dir.path()).contains("52:54:00:aa:bb:cc"));
        assert!(forget_peer(dir.path(), "52:54:00:aa:bb:cc").expect("forgotten"));
        assert!(known_peers(dir.path()).is_empty());
        assert!(!forget_peer(dir.path(), "52:54:00:aa:bb:cc").expect("not there"));

        let (key, made) = load_or_create_key(dir.path()).expect("made");
        assert!(made);
        let (again, made) = load_or_create_key(dir.path()).expect("kept");
        assert!(!made);
        assert_eq!(again, key);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(KEY_FILE)).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only root reads the pair key");
        std::fs::write(node_file(dir.path()), b"{garbage").expect("write");
        let err = load_or_create(dir.path()).expect_err("garbage").to_string();
        assert!(err.contains("node.json"), "{err}");
    }
}
