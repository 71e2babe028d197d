//! A split brain: both sides of a volume wrote apart, and DRBD found it when they met again.
//! Every automatic policy is `disconnect`, so DRBD drops the connection and calls its
//! `split-brain` handler, `pairos volume split-brain`, which only leaves a mark here
//! (`RUN_DIR/split-brain/NAME`). The volume manager resolves it:
//!
//! - the node that acts as primary keeps its data and connects again;
//! - the other node first keeps its divergent data as a snapshot of the volume's logical volume
//!   (`NAME-divergent-STAMP`, which the operator can mount), then connects as the sync target
//!   (`--discard-my-data`), and an alarm says where the snapshot is for as long as it exists;
//! - a node that cannot make the snapshot (no room) discards nothing and says why;
//! - while neither node acts, nothing is decided.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The marks' folder under the run folder.
pub const DIR: &str = "split-brain";

fn path(run_dir: &Path, name: &str) -> PathBuf {
    run_dir.join(DIR).join(name)
}

/// Leaves the mark for volume `name` (the handler's whole job), with the time DRBD found it.
pub fn mark(run_dir: &Path, name: &str, now: u64) -> anyhow::Result<()> {
    let dir = run_dir.join(DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("making {}", dir.display()))?;
    pairos_host::write_atomically(&path(run_dir, name), format!("{now}\n").as_bytes())?;
    Ok(())
}

/// When the split brain of volume `name` was found, if it is marked.
pub fn marked(run_dir: &Path, name: &str) -> Option<u64> {
    std::fs::read_to_string(path(run_dir, name)).ok().and_then(|t| t.trim().parse().ok())
}

pub fn clear(run_dir: &Path, name: &str) {
    let _ = std::fs::remove_file(path(run_dir, name));
}

/// Whose data wins, from this node's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// This node acts: its data wins.
    Keep,
    /// The peer acts: this node keeps its data in a snapshot, then takes the peer's.
    GiveWay,
    /// Neither acts (or this node does not know that its peer does): wait.
    Undecided,
}

pub fn side(acting: bool, peer_acting: bool) -> Side {
    match (acting, peer_acting) {
        (true, _) => Side::Keep,
        (false, true) => Side::GiveWay,
        (false, false) => Side::Undecided,
    }
}

/// The alarm for a snapshot that keeps a volume's divergent data.
pub fn kept_alarm(snapshot: &str, volume: &str) -> String {
    format!(
        "volume {volume}: what this node wrote apart from its peer (a split brain) is kept in \
         /dev/{vg}/{snapshot}; mount it read-only to look at it, and lvremove {vg}/{snapshot} \
         when it is no longer needed",
        vg = pairos_mirror::drbd_conf::VG
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_acting_node_keeps_its_data_and_nobody_decides_without_one() {
        assert_eq!(side(true, false), Side::Keep);
        assert_eq!(side(false, true), Side::GiveWay);
        assert_eq!(side(false, false), Side::Undecided);
    }

    #[test]
    fn a_mark_is_left_read_and_cleared() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        assert_eq!(marked(dir.path(), "raw"), None);
        mark(dir.path(), "raw", 1_796_243_666).expect("marked");
        assert_eq!(marked(dir.path(), "raw"), Some(1_796_243_666));
        assert_eq!(marked(dir.path(), "data"), None);
        clear(dir.path(), "raw");
        assert_eq!(marked(dir.path(), "raw"), None);
    }
}
