//! The pair daemon's configuration: a TOML file (`pairos pair run --config FILE`). On a node,
//! `pairos run` writes it from the node's identity and the installer's settings; in a network
//! namespace on a host (tests, benchmarks), the caller writes it, with the fence pointed at
//! whatever stands for the peer's power there.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::pair::fence::FenceConfig;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    pub node: String,
    pub peer: String,
    pub pair_id: String,
    /// The pair key (hex), mode 0600.
    pub key_file: PathBuf,
    /// Where the epoch, the incarnation and the events are kept (fsynced).
    pub state_dir: PathBuf,
    /// Where the status file and the control socket go.
    #[serde(default = "run_dir")]
    pub run_dir: PathBuf,
    /// This node asks first when the pair forms (node-1).
    #[serde(default)]
    pub preferred: bool,
    #[serde(default)]
    pub timing: Timing,
    pub private: LinkConfig,
    pub public: PublicConfig,
    pub pair_address: Option<PairAddressConfig>,
    /// How to power the peer off. Without one, a silent peer is never replaced.
    pub fence: Option<FenceConfig>,
    /// A watchdog device to arm (`/dev/watchdog`): if the daemon stops petting it, the node
    /// resets.
    pub watchdog: Option<PathBuf>,
    /// The witnesses (at most two; the first is preferred), where each listens. Without any,
    /// only a fence replaces a silent peer.
    #[serde(default)]
    pub witnesses: Vec<std::net::SocketAddr>,
    /// The witness key (hex), mode 0600: the same on both nodes and on the witnesses.
    #[serde(default)]
    pub witness_key_file: Option<PathBuf>,
    /// The node has its volume group: the daemon keeps the pair's volumes, primary while it
    /// acts (a namespace on a host has none).
    #[serde(default)]
    pub volumes: bool,
    /// A command that prints this node's BMC sensors as `ipmitool sdr list` does; a sensor
    /// past its critical threshold lowers the node's health. None: the health ignores them.
    #[serde(default)]
    pub sensors: Option<Vec<String>>,
}

/// The daemon's run folder on a node (its status, its control socket).
pub const RUN_DIR: &str = "/run/pairos";

fn run_dir() -> PathBuf {
    PathBuf::from(RUN_DIR)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    pub interface: String,
    pub address: Ipv4Addr,
    pub peer: Ipv4Addr,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicConfig {
    pub interface: String,
    pub address: Ipv4Addr,
    pub peer: Ipv4Addr,
    /// Probed by ARP; a gateway that does not answer counts as the public network lost.
    pub gateway: Option<Ipv4Addr>,
}

/// The address the pair presents, on the public port of whichever node is primary.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairAddressConfig {
    pub address: Ipv4Addr,
    pub prefix: u8,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timing {
    pub heartbeat_ms: u64,
    /// The peer is lost when silent on both links this long.
    pub dead_time_ms: u64,
    /// A secondary waits this much longer than the primary before it fences.
    pub fence_delay_ms: u64,
    pub fence_retry_ms: u64,
    /// After the daemon starts, its peer is not fenced for this long (the time a slower node
    /// needs to boot when both are powered on together).
    pub startup_wait_ms: u64,
    /// A preventive move needs the peer healthier by `margin` for `hold_ms`, and the last move
    /// `cooldown_ms` ago.
    pub margin: u32,
    pub hold_ms: u64,
    pub cooldown_ms: u64,
    /// With witnesses: how long a witness grants its lease for, and how often it is renewed.
    pub lease_ms: u64,
    pub renew_ms: u64,
    /// How long a claim is said before the claimant acts on a witness's lease.
    pub claim_wait_ms: u64,
    /// How long a hung daemon goes on before the watchdog resets the node (the lab's and the
    /// image's `i6300esb heartbeat=10`). A lease counts only while it has longer than this to
    /// run, and a claim waits longer than this.
    pub watchdog_ms: u64,
    /// A volume whose resync makes no progress (or whose connection is stuck) this long is
    /// cycled; each further cycle waits twice as long ([`pairos_mirror::resync_watch`]).
    pub resync_stall_ms: u64,
    /// A known peer that was told to boot its disk and whose disk has not started this long
    /// after its last network-boot ask is reset through its BMC, once, so that its next network
    /// boot is offered recovery (a swapped blank disk heals by itself:
    /// [`crate::pair::boot_policy`]).
    pub rejoin_wait_ms: u64,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            heartbeat_ms: 100,
            // Three seconds, not one: the decision loop also persists (fsync), and a busy disk
            // can hold it for a second or more (seen in CI beside the lab's disk writes).
            dead_time_ms: 3_000,
            fence_delay_ms: 2_000,
            fence_retry_ms: 3_000,
            startup_wait_ms: 60_000,
            margin: 100,
            hold_ms: 3_000,
            cooldown_ms: 60_000,
            // A lease counts for 16 s less a tenth less the watchdog's 10 s: 4.4 s after it
            // was asked for, renewed every second. A claim waits out the watchdog, the dead
            // time and a second of delay.
            lease_ms: 16_000,
            renew_ms: 1_000,
            claim_wait_ms: 12_000,
            watchdog_ms: WATCHDOG_MS,
            resync_stall_ms: 60_000,
            rejoin_wait_ms: crate::pair::boot_policy::REJOIN_WAIT.as_millis() as u64,
        }
    }
}

/// The node's watchdog resets it this long after the daemon last petted it.
pub const WATCHDOG_MS: u64 = 10_000;

impl DaemonConfig {
    pub fn load(path: &Path) -> anyhow::Result<DaemonConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let cfg: DaemonConfig = toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
        cfg.check().with_context(|| format!("{}", path.display()))?;
        Ok(cfg)
    }

    fn check(&self) -> anyhow::Result<()> {
        let t = &self.timing;
        if t.heartbeat_ms == 0 || t.dead_time_ms < 3 * t.heartbeat_ms {
            bail!(
                "timing: dead_time_ms ({}) must be at least three heartbeats (heartbeat_ms {}, above 0)",
                t.dead_time_ms,
                t.heartbeat_ms
            );
        }
        if t.resync_stall_ms < 10_000 {
            bail!(
                "timing: resync_stall_ms ({}) must be at least 10 s: DRBD's own reconnects and \
                 pings need that long",
                t.resync_stall_ms
            );
        }
        let max_ms = crate::pair::boot_policy::MAX_REJOIN_WAIT.as_millis() as u64;
        if t.rejoin_wait_ms < 30_000 || t.rejoin_wait_ms > max_ms {
            bail!(
                "timing: rejoin_wait_ms ({}) must be from 30 s to {} s: long enough for firmware \
                 that tries every network option before its disk, and a disk that boots, to start",
                t.rejoin_wait_ms,
                max_ms / 1000
            );
        }
        if self.node == self.peer {
            bail!("node and peer are both {:?}: expected two names", self.node);
        }
        if self.private.interface == self.public.interface {
            bail!("private and public are both on {}: expected two ports", self.public.interface);
        }
        if let Some(a) = &self.pair_address {
            if a.prefix == 0 || a.prefix > 32 {
                bail!("pair_address.prefix {}: expected 1 to 32", a.prefix);
            }
        }
        if self.witnesses.len() > pairos_pair::core::MAX_WITNESSES {
            bail!("witnesses: {} given, expected at most two", self.witnesses.len());
        }
        if !self.witnesses.is_empty() {
            if self.witness_key_file.is_none() {
                bail!("witnesses are given but no witness_key_file: expected the witness key's file");
            }
            if t.lease_ms * 9 / 10 <= t.watchdog_ms + 2 * t.renew_ms {
                bail!(
                    "timing: lease_ms ({}) must be well above watchdog_ms ({}) and two renewals (renew_ms {}): a lease counts only while it has longer than the watchdog to run",
                    t.lease_ms,
                    t.watchdog_ms,
                    t.renew_ms
                );
            }
            if t.claim_wait_ms <= t.watchdog_ms.max(t.dead_time_ms) {
                bail!(
                    "timing: claim_wait_ms ({}) must be above watchdog_ms ({}) and dead_time_ms ({}): a primary that still hears its peer must hear the claim, or be reset, before the claimant acts",
                    t.claim_wait_ms,
                    t.watchdog_ms,
                    t.dead_time_ms
                );
            }
        }
        if let Some(FenceConfig::Command { argv }) = &self.fence {
            if argv.is_empty() {
                bail!("fence.argv is empty: expected a command that powers the peer off");
            }
        }
        Ok(())
    }

    pub fn core(&self) -> pairos_pair::core::Config {
        let t = &self.timing;
        pairos_pair::core::Config {
            preferred: self.preferred,
            dead_time: t.dead_time_ms,
            fence_delay: t.fence_delay_ms,
            can_fence: self.fence.is_some(),
            fence_retry: t.fence_retry_ms,
            startup_wait: t.startup_wait_ms,
            margin: t.margin,
            hold: t.hold_ms,
            cooldown: t.cooldown_ms,
            witnesses: self.witnesses.len(),
            lease: t.lease_ms,
            watchdog: t.watchdog_ms,
            renew: t.renew_ms,
            claim_wait: t.claim_wait_ms,
            unsafe_promote_on_silence: false,
            unsafe_skip_claim_wait: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
node = "node-1"
peer = "node-2"
pair_id = "p1"
key_file = "/state/pairos/pair.key"
state_dir = "/state/pairos"
preferred = true
[private]
interface = "eth0"
address = "10.77.0.1"
peer = "10.77.0.2"
[public]
interface = "eth1"
address = "192.168.50.11"
peer = "192.168.50.12"
[pair_address]
address = "192.168.50.10"
prefix = 24
[fence]
kind = "ipmi"
host = "192.168.50.22"
user = "admin"
password_file = "/state/pairos/bmc-peer.password"
"#;

    fn load(text: &str) -> anyhow::Result<DaemonConfig> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("pair.toml");
        std::fs::write(&path, text)?;
        DaemonConfig::load(&path)
    }

    #[test]
    fn a_good_file_loads_with_default_timing() {
        let c = load(GOOD).expect("loads");
        assert_eq!(c.timing.heartbeat_ms, 100);
        assert!(matches!(c.fence, Some(FenceConfig::Ipmi { port: 623, .. })));
        assert!(c.core().can_fence && c.core().preferred);
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let err = |text: &str| format!("{:#}", load(text).expect_err("refused"));
        let e = err(&GOOD.replace("preferred = true", "preferred = true\nbogus = 1"));
        assert!(e.contains("bogus"), "{e}");
        let e = err(&GOOD.replace("preferred = true", "[timing]\ndead_time_ms = 100"));
        assert!(e.contains("dead_time_ms"), "{e}");
        let e = err(&GOOD.replace("interface = \"eth1\"", "interface = \"eth0\""));
        assert!(e.contains("two ports"), "{e}");
        let e = err(&GOOD.replace("prefix = 24", "prefix = 33"));
        assert!(e.contains("prefix"), "{e}");
        let e = err(&GOOD.replace("kind = \"ipmi\"", "kind = \"telepathy\""));
        assert!(e.contains("telepathy") || e.contains("kind"), "{e}");
        let witnessed =
            GOOD.replace("preferred = true", "preferred = true\nwitnesses = [\"192.168.50.30:7470\"]");
        assert!(err(&witnessed).contains("witness_key_file"));
        let keyed = witnessed.replace("preferred = true", "preferred = true\nwitness_key_file = \"/k\"");
        assert_eq!(load(&keyed).expect("loads").core().witnesses, 1);
        let e = err(&format!("{keyed}\n[timing]\nlease_ms = 10000\n"));
        assert!(e.contains("lease_ms"), "{e}");
        let e = err(&format!("{keyed}\n[timing]\nclaim_wait_ms = 5000\n"));
        assert!(e.contains("claim_wait_ms"), "{e}");
        // A reset peer must boot again while it is still offered recovery (5 minutes).
        let e = err(&format!("{GOOD}\n[timing]\nrejoin_wait_ms = 1900000\n"));
        assert!(e.contains("rejoin_wait_ms (1900000) must be from 30 s to 1800 s"), "{e}");
        assert_eq!(
            load(&format!("{GOOD}\n[timing]\nrejoin_wait_ms = 100000\n"))
                .expect("loads")
                .timing
                .rejoin_wait_ms,
            100_000
        );
    }
}
