//! What the pair daemon keeps across restarts, in the state partition: the epoch it promised,
//! its incarnation counter, whether maintenance is on and which witness the pair uses
//! (`roles.json`, written and fsynced
//! before the daemon acts on it), and every role change with its reason (`events.jsonl`,
//! appended and fsynced).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::pair::identity::write_atomically;

pub const ROLES_FILE: &str = "roles.json";
pub const EVENTS_FILE: &str = "events.jsonl";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roles {
    pub promised: u64,
    pub incarnation: u64,
    #[serde(default)]
    pub maintenance: bool,
    /// The witness the pair uses ([`pairos_pair::core::Elected`]): its order and index.
    #[serde(default)]
    pub elected_seq: u64,
    #[serde(default)]
    pub elected_witness: usize,
}

/// The daemon's state files.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: &Path) -> Store {
        Store { dir: dir.to_owned() }
    }

    /// What was kept; nothing kept (a new node) is all zeros. A file that cannot be read is
    /// an error: guessing an epoch could make two primaries.
    pub fn load(&self) -> anyhow::Result<Roles> {
        let path = self.dir.join(ROLES_FILE);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).with_context(|| {
                format!("{}: expected {{\"promised\": N, \"incarnation\": N}}", path.display())
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Roles::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn save(&self, roles: &Roles) -> anyhow::Result<()> {
        write_atomically(&self.dir.join(ROLES_FILE), &serde_json::to_vec(roles).expect("serialises"))
    }

    pub fn record(&self, event: &Event) -> anyhow::Result<()> {
        let path = self.dir.join(EVENTS_FILE);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let mut line = serde_json::to_vec(event).expect("serialises");
        line.push(b'\n');
        f.write_all(&line).and_then(|()| f.sync_data()).with_context(|| format!("writing {}", path.display()))
    }

    /// The last `n` events, oldest first.
    pub fn last_events(&self, n: usize) -> Vec<Event> {
        let text = std::fs::read_to_string(self.dir.join(EVENTS_FILE)).unwrap_or_default();
        let all: Vec<Event> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        all[all.len().saturating_sub(n)..].to_vec()
    }
}

/// A role change or an alarm, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Seconds since the Unix epoch.
    pub time: u64,
    pub node: String,
    /// `primary`, `secondary`, `alarm`, `fence`, ...
    pub what: String,
    pub why: String,
    pub epoch: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_events_survive_and_a_damaged_file_is_an_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::new(dir.path());
        assert_eq!(store.load().expect("none yet"), Roles::default());
        let roles =
            Roles { promised: 4, incarnation: 9, maintenance: true, elected_seq: 2, elected_witness: 1 };
        store.save(&roles).expect("saved");
        assert_eq!(store.load().expect("loads"), roles);
        for i in 0..5 {
            let e = Event {
                time: i,
                node: "node-1".into(),
                what: "primary".into(),
                why: "test".into(),
                epoch: i,
            };
            store.record(&e).expect("recorded");
        }
        let last = store.last_events(2);
        assert_eq!(last.iter().map(|e| e.time).collect::<Vec<_>>(), [3, 4]);
        std::fs::write(dir.path().join(ROLES_FILE), b"{\"promised\": ").expect("write");
        let e = format!("{:#}", store.load().expect_err("damaged"));
        assert!(e.contains("roles.json"), "{e}");
    }
}
