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
    /// How far a running resync is, in percent.
    pub done_percent: Option<f64>,
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
                "  out of sync: {}{}\n",
                pairos_mirror::spec::show_size(x.out_of_sync),
                x.done_percent.map(|d| format!(", {d:.1}% done")).unwrap_or_default()
            );
        }
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
