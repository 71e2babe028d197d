//! Which alarms the operator acknowledged: their ids, in `console-acks.json` in the state
//! partition of the node that served the acknowledgement.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;

pub const FILE: &str = "console-acks.json";
/// The most acknowledgements kept (the oldest go first).
const KEPT: usize = 1000;

#[derive(Debug)]
pub struct Acks {
    path: PathBuf,
    ids: Mutex<Vec<String>>,
}

impl Acks {
    pub fn load(state_dir: &std::path::Path) -> Acks {
        let path = state_dir.join(FILE);
        let ids = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        Acks { path, ids: Mutex::new(ids) }
    }

    pub fn has(&self, id: &str) -> bool {
        self.ids.lock().expect("not poisoned").iter().any(|i| i == id)
    }

    pub fn add(&self, id: &str) -> anyhow::Result<()> {
        let mut ids = self.ids.lock().expect("not poisoned");
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_owned());
        }
        let excess = ids.len().saturating_sub(KEPT);
        ids.drain(..excess);
        let unique: BTreeSet<&String> = ids.iter().collect();
        debug_assert_eq!(unique.len(), ids.len());
        Ok(pairos_host::write_atomically(&self.path, &serde_json::to_vec(&*ids).expect("serialises"))?)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn acknowledgements_survive_a_restart() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = super::Acks::load(dir.path());
        assert!(!a.has("abc"));
        a.add("abc").expect("saved");
        assert!(super::Acks::load(dir.path()).has("abc"));
    }
}
