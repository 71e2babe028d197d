//! What `pairos status` shows: the running node writes its status to `/run/pairos/status.json`
//! whenever something changes (atomically), and the command reads it. A recovering peer's
//! reports land here, so the operator sees its progress on the healthy node.

use std::path::Path;

use pairos_recovery::peer::{Report, Step};
use serde::{Deserialize, Serialize};

pub const STATUS_FILE: &str = "/run/pairos/status.json";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub node_name: String,
    pub pair_id: String,
    pub board: String,
    /// The public port and the management address on it.
    pub management: Option<String>,
    /// The private-link interface and address, when the link is up.
    pub private_link: Option<String>,
    /// The services offered on the private link.
    pub services: Vec<String>,
    /// The last report of a peer that is imaging itself from this node.
    pub peer_recovery: Option<PeerRecovery>,
    /// Peers this node has installed (their private-link MACs).
    pub known_peers: Vec<String>,
    /// The peer as heartbeats show it: live or silent, and its MAC.
    #[serde(default)]
    pub peer: Option<String>,
    /// An enrolment running or waiting for the operator.
    #[serde(default)]
    pub enrolment: Option<String>,
    /// The last network-boot decisions for machines on the private link, newest last.
    #[serde(default)]
    pub network_boot: Vec<String>,
    /// What the private-link services need the operator for (a node held after imaging twice).
    #[serde(default)]
    pub alarms: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerRecovery {
    pub mac: String,
    pub address: String,
    pub step: Step,
    pub message: String,
    pub written_bytes: u64,
    pub total_bytes: u64,
    pub percent: u64,
    /// Seconds since the Unix epoch.
    pub updated: u64,
}

impl PeerRecovery {
    pub fn from_report(r: &Report, address: String, now: u64) -> PeerRecovery {
        PeerRecovery {
            mac: r.mac.clone(),
            address,
            step: r.step,
            message: r.message.clone(),
            written_bytes: r.written_bytes,
            total_bytes: r.total_bytes,
            percent: (u128::from(r.written_bytes) * 100)
                .checked_div(u128::from(r.total_bytes))
                .map_or(0, |p| p.min(100) as u64),
            updated: now,
        }
    }
}

/// Changes the running node's status and writes it for `pairos status`; a status that cannot
/// be written is said on the console.
pub fn update(status: &std::sync::Mutex<Status>, change: impl FnOnce(&mut Status)) {
    let mut s = status.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    change(&mut s);
    if let Err(e) = write(Path::new(STATUS_FILE), &s) {
        crate::run::say(format_args!("cannot write the status: {e:#}"));
    }
}

pub fn write(path: &Path, status: &Status) -> anyhow::Result<()> {
    let text = serde_json::to_vec_pretty(status).expect("a status serialises");
    super::identity::write_atomically(path, &text)
}

pub fn read(path: &Path) -> anyhow::Result<Status> {
    use anyhow::Context;
    let bytes = std::fs::read(path).with_context(|| {
        format!("reading {} (is this a running pairos node? `pairos run` writes it)", path.display())
    })?;
    serde_json::from_slice(&bytes).with_context(|| format!("{}: not a pairos status", path.display()))
}

/// The status in words, as `pairos status` prints it.
pub fn render(s: &Status) -> String {
    let mut out = format!(
        "pairos {}: {} of pair {}\nboard: {}\nmanagement: {}\nprivate link: {}\nservices: {}\n",
        s.version,
        s.node_name,
        s.pair_id,
        s.board,
        s.management.as_deref().unwrap_or("none"),
        s.private_link.as_deref().unwrap_or("down"),
        if s.services.is_empty() { "none".into() } else { s.services.join(", ") },
    );
    match &s.peer_recovery {
        Some(p) => out.push_str(&format!(
            "peer recovery: {} ({}): {:?}, {}% ({} of {} MiB): {}\n",
            p.mac,
            p.address,
            p.step,
            p.percent,
            p.written_bytes >> 20,
            p.total_bytes >> 20,
            p.message
        )),
        None => out.push_str("peer recovery: none\n"),
    }
    if !s.known_peers.is_empty() {
        out.push_str(&format!("installed peers: {}\n", s.known_peers.join(", ")));
    }
    out.push_str(&format!("peer: {}\n", s.peer.as_deref().unwrap_or("never heard")));
    if let Some(e) = &s.enrolment {
        out.push_str(&format!("enrolment: {e}\n"));
    }
    for line in &s.network_boot {
        out.push_str(&format!("network boot: {line}\n"));
    }
    for alarm in &s.alarms {
        out.push_str(&format!("ALARM: {alarm}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_report_shows_as_progress() {
        let r = Report {
            mac: "52:54:00:00:00:02".into(),
            step: Step::Writing,
            message: "writing the image".into(),
            written_bytes: 300 << 20,
            total_bytes: 600 << 20,
        };
        let s = Status {
            node_name: "node-1".into(),
            peer_recovery: Some(PeerRecovery::from_report(&r, "10.77.0.100".into(), 1)),
            ..Status::default()
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("status.json");
        write(&path, &s).expect("write");
        let back = read(&path).expect("read");
        assert_eq!(back, s);
        let text = render(&back);
        assert!(text.contains("Writing, 50% (300 of 600 MiB)"), "{text}");
        assert!(read(&dir.path().join("missing")).expect_err("missing").to_string().contains("pairos run"));
    }
}
