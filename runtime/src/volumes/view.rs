//! What the volume manager reports, in `RUN_DIR/volumes.json` (rewritten every few seconds):
//! per volume its device and states, and the pair configuration's version and alarms.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const FILE: &str = "volumes.json";

pub fn path(run_dir: &Path) -> PathBuf {
    run_dir.join(FILE)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumesView {
    /// The pair configuration's version this node applied.
    pub version: u64,
    pub volumes: Vec<VolumeView>,
    /// What is wrong (a conflict, a volume that cannot be made), in words.
    pub alarms: Vec<String>,
    /// Seconds since the Unix epoch.
    pub updated: u64,
    /// The last heal: how long the pair took from the first volume that was not up to date on
    /// both nodes to every volume up to date on both again (its time to redundancy), as this
    /// node's manager saw it.
    #[serde(default)]
    pub last_heal: Option<Heal>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Heal {
    /// When it ended, in seconds since the Unix epoch.
    pub ended: u64,
    pub seconds: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeView {
    pub name: String,
    pub size: u64,
    /// `/dev/drbdN` on this node.
    pub device: String,
    pub role: String,
    pub disk: String,
    pub peer_disk: String,
    pub connection: String,
    pub replication: String,
    /// Bytes that differ from the peer's side (to be resynced).
    pub out_of_sync: u64,
    /// How far a running resync is, in percent; its rate now (bytes a second) and time left.
    pub done_percent: Option<f64>,
    #[serde(default)]
    pub rate: Option<u64>,
    #[serde(default)]
    pub seconds_left: Option<u64>,
}

/// The view as a person reads it.
pub fn render(v: &VolumesView) -> String {
    let mut out = format!("pair configuration version {}\n", v.version);
    if v.volumes.is_empty() {
        out += "no volumes\n";
    }
    for x in &v.volumes {
        out += &format!(
            "{} {} {}: {}, disk {} (peer {}), {}{}\n",
            x.name,
            pairos_mirror::spec::show_size(x.size),
            x.device,
            or_dash(&x.role),
            or_dash(&x.disk),
            or_dash(&x.peer_disk),
            if x.connection.is_empty() { "not connected".into() } else { x.connection.clone() },
            if x.replication.is_empty() || x.replication == "Established" {
                String::new()
            } else {
                format!(", {}", x.replication)
            },
        );
        if x.out_of_sync > 0 {
            out += &format!(
                "  out of sync: {}{}{}{}\n",
                pairos_mirror::spec::show_size(x.out_of_sync),
                x.done_percent.map(|d| format!(", {d:.1}% done")).unwrap_or_default(),
                x.rate.map(|r| format!(", {}/s", pairos_mirror::spec::show_size(r))).unwrap_or_default(),
                x.seconds_left.map(|s| format!(", {s} s left")).unwrap_or_default(),
            );
        }
    }
    if let Some(h) = v.last_heal {
        out += &format!("last heal: redundant again after {} s\n", h.seconds);
    }
    for a in &v.alarms {
        out += &format!("ALARM: {a}\n");
    }
    out
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}
