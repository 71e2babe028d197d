//! What `pairos pair status` shows: the daemon writes it to `RUN_DIR/pair.json` (atomically)
//! whenever it changes and at least once a second, and the command reads it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::persisted::Event;
use crate::pair::membership::Refused;

pub const STATUS_FILE: &str = "pair.json";
pub const CONTROL_SOCKET: &str = "pair.sock";

pub fn status_path(run_dir: &Path) -> PathBuf {
    run_dir.join(STATUS_FILE)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PairStatus {
    pub node: String,
    pub peer_name: String,
    /// `primary` or `secondary`.
    pub role: String,
    /// The epoch this node acts in, when primary.
    pub epoch: Option<u64>,
    pub promised: u64,
    pub incarnation: u64,
    pub health: u32,
    pub maintenance: bool,
    pub links: Links,
    pub peer: Option<PeerView>,
    pub address: Option<AddressView>,
    /// What is wrong now; empty when all is well.
    pub conditions: Vec<String>,
    pub fence: Option<String>,
    /// The witnesses, in order (the first preferred); empty without any.
    #[serde(default)]
    pub witnesses: Vec<WitnessView>,
    /// The epoch this node claims through a witness (its peer is silent).
    #[serde(default)]
    pub claim: Option<u64>,
    /// Packets that were not believed, since the daemon started.
    pub refused: Refused,
    /// The last role changes and alarms, oldest first.
    pub events: Vec<Event>,
    /// Seconds since the Unix epoch.
    pub updated: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Links {
    pub private: LinkView,
    pub public: LinkView,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkView {
    pub interface: String,
    pub carrier: bool,
    /// The peer's heartbeats arrive on this link.
    pub peer_heard: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerView {
    pub role: String,
    pub epoch: Option<u64>,
    pub health: u32,
    pub ready: bool,
    pub live: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AddressView {
    pub address: String,
    pub held: bool,
    /// The MAC the peer sees answering for the address (its confirmation of a takeover).
    pub peer_sees: Option<String>,
    /// The peer sees this node's MAC answer while this node holds it.
    pub confirmed: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WitnessView {
    pub address: String,
    /// The pair uses this one.
    pub elected: bool,
    /// This node holds its lease (long enough to count).
    pub lease_held: bool,
    /// Its last answer, as a person reads it (none yet: nothing asked, or no answer).
    pub last_answer: Option<String>,
}

pub fn write(path: &Path, s: &PairStatus) -> anyhow::Result<()> {
    crate::pair::identity::write_atomically(path, &serde_json::to_vec_pretty(s).expect("serialises"))
}

pub fn read(path: &Path) -> anyhow::Result<PairStatus> {
    use anyhow::Context;
    let bytes = std::fs::read(path)
        .with_context(|| format!("reading {} (is the pair daemon running?)", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{}: not a pair status", path.display()))
}

/// The status as a person reads it.
pub fn render(s: &PairStatus) -> String {
    let mut out = String::new();
    let role = match s.epoch {
        Some(e) => format!("{} (epoch {e})", s.role),
        None => s.role.clone(),
    };
    out += &format!(
        "{}: {role}, health {}{}\n",
        s.node,
        s.health,
        if s.maintenance { ", maintenance" } else { "" }
    );
    match &s.peer {
        Some(p) if p.live => {
            out += &format!(
                "{}: {}{}, health {}{}\n",
                s.peer_name,
                p.role,
                p.epoch.map(|e| format!(" (epoch {e})")).unwrap_or_default(),
                p.health,
                if p.ready { "" } else { ", not ready to take over" }
            )
        }
        _ => out += &format!("{}: silent\n", s.peer_name),
    }
    for (name, l) in [("private", &s.links.private), ("public", &s.links.public)] {
        out += &format!(
            "{name} link {}: {}, peer {}\n",
            l.interface,
            if l.carrier { "carrier" } else { "NO CARRIER" },
            if l.peer_heard { "heard" } else { "not heard" }
        );
    }
    if let Some(a) = &s.address {
        out += &format!(
            "pair address {}: {}{}\n",
            a.address,
            if a.held { "held here" } else { "not held here" },
            match (&a.peer_sees, a.confirmed) {
                (_, true) => ", confirmed by the peer".to_owned(),
                (Some(m), false) => format!(", the peer sees {m}"),
                (None, false) => String::new(),
            }
        );
    }
    if let Some(f) = &s.fence {
        out += &format!("fence: {f}\n");
    }
    for w in &s.witnesses {
        out += &format!(
            "witness {}{}: {}{}\n",
            w.address,
            if w.elected { " (elected)" } else { "" },
            if w.lease_held { "lease held here" } else { "no lease here" },
            w.last_answer.as_ref().map(|a| format!(", last answer: {a}")).unwrap_or_default()
        );
    }
    if let Some(c) = s.claim {
        out += &format!("claiming epoch {c} through the witness\n");
    }
    for c in &s.conditions {
        out += &format!("ALARM: {c}\n");
    }
    let r = s.refused;
    if r.malformed + r.forged + r.replayed > 0 {
        out += &format!(
            "refused packets: {} forged, {} replayed, {} malformed\n",
            r.forged, r.replayed, r.malformed
        );
    }
    for e in &s.events {
        out += &format!("event {}: {} {} (epoch {}): {}\n", e.time, e.node, e.what, e.epoch, e.why);
    }
    out
}
