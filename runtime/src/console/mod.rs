//! The pair's console: one HTTPS page and JSON API at the pair's address (and at each node's
//! management address), served by every node on its public port only, so that whichever node
//! is primary answers at the pair's address and the console moves with it.
//!
//! It only reads what the node's services write ([`snapshot`]) and asks the pair daemon through
//! its control socket for actions (a switchover, maintenance mode), so it runs as a process of
//! its own (`pairos console serve`, kept running by `pairos run`) and cannot disturb the
//! pair's core. Everything it knows that both nodes must share comes from the pair key: its TLS
//! certificate ([`certificate`]) and its sessions ([`session`]), so a failover keeps both; the
//! password is an argon2id hash in the pair's document ([`password`]).

pub mod acks;
mod actions;
pub mod alarms;
mod api;
mod auth;
pub mod certificate;
mod destinations;
pub mod metrics;
mod page;
pub mod password;
pub mod peer;
pub mod remote;
mod server;
pub mod session;
pub mod snapshot;
pub mod throttle;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use server::serve;

/// The port the consoles of a pair speak to each other on (the public network, the derived
/// certificate).
pub const PEER_PORT: u16 = 7443;

/// Where the serving console says where it is and its certificate's fingerprint (run folder).
pub const INFO_FILE: &str = "console.json";

/// The console's line in `pairos pair status`, when it runs.
pub fn status_line(run_dir: &std::path::Path) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(run_dir.join(INFO_FILE)).ok()?).ok()?;
    let urls: Vec<&str> = v["urls"].as_array()?.iter().filter_map(|u| u.as_str()).collect();
    Some(format!("console: {} (certificate SHA-256 {})\n", urls.join(" "), v["sha256"].as_str()?))
}

/// What `pairos console serve` is told.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    pub pair_id: String,
    pub key_file: PathBuf,
    pub run_dir: PathBuf,
    pub state_dir: PathBuf,
    /// The public port: the console listens on it alone (never on the private link).
    pub interface: Option<String>,
    pub listen: SocketAddr,
    /// The names and addresses the certificate covers.
    pub names: Vec<String>,
    /// The peer's console (`HOST:PORT` on the public network), whose parts the dashboard draws.
    pub peer: Option<String>,
}

/// What every request shares.
#[derive(Debug)]
pub(crate) struct Console {
    pub sources: snapshot::Sources,
    pub sessions: session::Sessions,
    pub throttle: Mutex<throttle::Throttle>,
    pub acks: acks::Acks,
    /// Which certificate the console presents (the derived one, or the operator's).
    pub tls: Arc<tls::Resolver>,
    pub pair_id: String,
    pub peer: std::sync::Arc<Mutex<peer::PeerParts>>,
}

pub(crate) type Shared = Arc<Console>;

pub(crate) fn unix_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Changes the console's settings in the pair's document, on this node, which must be the
/// primary (the peer follows its document); `what` names the change in a refusal.
pub fn change_settings(
    state_dir: &std::path::Path,
    run_dir: &std::path::Path,
    what: &str,
    change: impl FnOnce(&mut pairos_mirror::document::ConsoleSettings) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    crate::volumes::create::on_the_primary(run_dir, what)?;
    let mut doc = pairos_mirror::document::PairConfig::load(state_dir)?;
    let mut console = doc.console.clone().unwrap_or_default();
    change(&mut console)?;
    doc.set_console(console);
    doc.save(state_dir)
}

impl Console {
    pub fn snapshot(&self) -> snapshot::Snapshot {
        let peer = self.peer.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        self.sources.read(&self.fingerprint(), &|id| self.acks.has(id), peer)
    }

    /// The SHA-256 fingerprint of the certificate presented now.
    pub fn fingerprint(&self) -> String {
        certificate::fingerprint(self.tls.now().cert[0].as_ref())
    }

    /// The console's settings in the pair's document, on this node.
    pub fn settings(&self) -> pairos_mirror::document::ConsoleSettings {
        pairos_mirror::document::PairConfig::load(&self.sources.state_dir)
            .ok()
            .and_then(|d| d.console)
            .unwrap_or_default()
    }

    pub fn password_hash(&self) -> Option<String> {
        self.settings().password
    }
}
