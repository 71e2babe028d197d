//! What the console shows, read from what the node's services write: the pair daemon's status
//! (`pair.json`), the volume manager's view (`volumes.json`), the workload runner's view
//! (`workloads.json`) in the run folder, and the daemon's events (`events.jsonl`) in the state
//! partition. The console only reads them: it cannot disturb the pair's core.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::peer::PeerParts;
use crate::pair::daemon::persisted::{Event, EVENTS_FILE};
use crate::pair::daemon::sensors::{Reading, READINGS_FILE};
use crate::pair::daemon::status::{self as pair_status, PairStatus};
use crate::volumes::view::{self as volumes_view, VolumesView};
use crate::workloads::runner::{RunnerView, VIEW_FILE};

/// How many events the console keeps in a snapshot.
pub const EVENTS_KEPT: usize = 200;
/// `pairos run`'s status, in the run folder (`/run/pairos/status.json` on a node).
const NODE_STATUS_FILE: &str = "status.json";

/// The node's own parts (`/api/v1/node`), which its peer's console draws.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodeParts {
    pub pair: Option<PairStatus>,
    pub node: Option<crate::pair::status::Status>,
    pub sensors: Vec<Reading>,
    pub volumes: Option<VolumesView>,
}

/// Where the node's services write.
#[derive(Debug)]
pub struct Sources {
    pub run_dir: PathBuf,
    pub state_dir: PathBuf,
    /// The events file as last read (by its length: it is only appended to), so that a page
    /// watching the state does not read the node's whole history four times a second.
    events: std::sync::Mutex<Option<(u64, Vec<Event>, RoleChanges)>>,
}

/// An alarm: something wrong now, with its severity; its id stays the same while it lasts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alarm {
    pub id: String,
    /// `critical`, `major` or `minor`.
    pub severity: String,
    /// `pair`, `network-boot`, `volumes` or `workloads`.
    pub source: String,
    pub node: String,
    pub text: String,
    pub acknowledged: bool,
}

/// Everything the page and the API show, as one document.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Snapshot {
    /// The node that answers.
    pub served_by: String,
    pub pair: Option<PairStatus>,
    pub volumes: Option<VolumesView>,
    pub workloads: Option<RunnerView>,
    /// What `pairos run` says of the node: its board, services, and a peer it is healing.
    pub node: Option<crate::pair::status::Status>,
    /// The node's BMC sensors (none without a BMC).
    pub sensors: Vec<Reading>,
    /// The peer's parts, as its console last reported them.
    pub peer: PeerParts,
    pub alarms: Vec<Alarm>,
    /// The last role changes and alarms, oldest first.
    pub events: Vec<Event>,
    /// Role changes recorded on this node, by cause (`failover`, `switchover`, `other`).
    pub role_changes: RoleChanges,
    /// The console certificate's SHA-256 fingerprint.
    pub fingerprint: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RoleChanges {
    pub failover: u64,
    pub switchover: u64,
    pub other: u64,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// The severity of a condition the pair daemon reports.
fn severity(text: &str) -> &'static str {
    const CRITICAL: [&str; 5] = ["silent", "lost", "fence", "cannot take", "split"];
    if CRITICAL.iter().any(|w| text.contains(w)) {
        "critical"
    } else {
        "major"
    }
}

/// Whether a `primary` event's reason is a failover, a switchover, or something else (the
/// pair's first start, a witness's lease...).
pub fn cause(why: &str) -> &'static str {
    if why.contains("handed over") {
        "switchover"
    } else if why.contains("silent") {
        "failover"
    } else {
        "other"
    }
}

pub fn alarm_id(source: &str, node: &str, text: &str) -> String {
    let d = Sha256::digest(format!("{source}\n{node}\n{text}").as_bytes());
    d[..6].iter().map(|b| format!("{b:02x}")).collect()
}

impl Sources {
    pub fn new(run_dir: PathBuf, state_dir: PathBuf) -> Sources {
        Sources { run_dir, state_dir, events: std::sync::Mutex::default() }
    }

    /// The last events and the role changes by cause, from the events file.
    fn events(&self) -> (Vec<Event>, RoleChanges) {
        let path = self.state_dir.join(EVENTS_FILE);
        let len = std::fs::metadata(&path).map_or(0, |m| m.len());
        let mut cache = self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((seen, events, changes)) = cache.as_ref() {
            if *seen == len {
                return (events.clone(), *changes);
            }
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let all: Vec<Event> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let mut changes = RoleChanges::default();
        for e in all.iter().filter(|e| e.what == "primary") {
            match cause(&e.why) {
                "failover" => changes.failover += 1,
                "switchover" => changes.switchover += 1,
                _ => changes.other += 1,
            }
        }
        let events = all[all.len().saturating_sub(EVENTS_KEPT)..].to_vec();
        *cache = Some((len, events.clone(), changes));
        (events, changes)
    }

    pub fn parts(&self) -> NodeParts {
        NodeParts {
            pair: read_json(&pair_status::status_path(&self.run_dir)),
            node: read_json(&self.run_dir.join(NODE_STATUS_FILE)),
            sensors: read_json(&self.run_dir.join(READINGS_FILE)).unwrap_or_default(),
            volumes: read_json(&volumes_view::path(&self.run_dir)),
        }
    }

    /// The node's state now; `acknowledged` says which alarm ids the operator acknowledged.
    pub fn read(&self, fingerprint: &str, acknowledged: &dyn Fn(&str) -> bool, peer: PeerParts) -> Snapshot {
        let NodeParts { pair, node: node_status, sensors, volumes } = self.parts();
        let workloads: Option<RunnerView> = read_json(&self.run_dir.join(VIEW_FILE));
        let (events, role_changes) = self.events();
        let node = pair.as_ref().map(|p| p.node.clone()).unwrap_or_default();
        let mut alarms = Vec::new();
        let mut add = |source: &str, severity: &str, text: &str| {
            let id = alarm_id(source, &node, text);
            let acknowledged = acknowledged(&id);
            alarms.push(Alarm {
                id,
                severity: severity.into(),
                source: source.into(),
                node: node.clone(),
                text: text.into(),
                acknowledged,
            });
        };
        match &pair {
            Some(p) => p.conditions.iter().for_each(|c| add("pair", severity(c), c)),
            None => add("pair", "critical", "the pair daemon is not running on this node"),
        }
        if let Some(n) = &node_status {
            n.alarms.iter().for_each(|a| add("network-boot", "critical", a));
        }
        if let Some(v) = &volumes {
            v.alarms.iter().for_each(|a| add("volumes", "major", a));
        }
        if let Some(w) = &workloads {
            w.alarms.iter().for_each(|a| add("workloads", "major", a));
        }
        Snapshot {
            served_by: node,
            pair,
            volumes,
            workloads,
            node: node_status,
            sensors,
            peer,
            alarms,
            events,
            role_changes,
            fingerprint: fingerprint.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_changes_are_counted_by_cause() {
        assert_eq!(cause("the peer was silent and its fence confirmed it off"), "failover");
        assert_eq!(cause("the peer was silent and a witness granted its lease"), "failover");
        assert_eq!(cause("the peer handed over"), "switchover");
        assert_eq!(cause("the pair's first primary"), "other");
    }

    #[test]
    fn a_snapshot_reads_the_services_files_and_names_alarms() {
        let dir = tempfile::tempdir().expect("tmp");
        let (run, state) = (dir.path().join("run"), dir.path().join("state"));
        std::fs::create_dir_all(&run).expect("mkdir");
        std::fs::create_dir_all(&state).expect("mkdir");
        let sources = Sources::new(run.clone(), state.clone());
        let empty = sources.read("FP", &|_| false, PeerParts::default());
        assert_eq!(empty.alarms.len(), 1);
        assert!(empty.alarms[0].text.contains("not running"));
        let status = PairStatus {
            node: "node-2".into(),
            role: "primary".into(),
            conditions: vec!["the peer is silent".into()],
            ..PairStatus::default()
        };
        pair_status::write(&pair_status::status_path(&run), &status).expect("writes");
        let lines = [
            r#"{"time":1,"node":"node-2","what":"primary","why":"the peer handed over","epoch":2}"#,
            r#"{"time":2,"node":"node-2","what":"secondary","why":"x","epoch":2}"#,
            r#"{"time":3,"node":"node-2","what":"primary","why":"the peer was silent and its fence confirmed it off","epoch":3}"#,
        ];
        std::fs::write(state.join(EVENTS_FILE), lines.join("\n")).expect("write");
        let id = alarm_id("pair", "node-2", "the peer is silent");
        let s = sources.read("FP", &|a| a == id, PeerParts::default());
        assert_eq!(s.served_by, "node-2");
        assert_eq!(s.role_changes, RoleChanges { failover: 1, switchover: 1, other: 0 });
        assert_eq!(s.events.len(), 3);
        assert_eq!(s.alarms.len(), 1);
        assert_eq!((s.alarms[0].severity.as_str(), s.alarms[0].acknowledged), ("critical", true));
    }
}
