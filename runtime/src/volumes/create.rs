//! Making a volume on the primary: its name and size checked, its place in the pair's document,
//! its logical volume (if the data partition has room), and the mark that this node starts its
//! first generation; the volume managers of both nodes do the rest. `pairos volume create` and
//! the console both come here.

use std::path::Path;

use anyhow::{bail, Context};
use pairos_mirror::document::PairConfig;
use pairos_mirror::lvm;
use pairos_mirror::spec::{parse_size, show_size, VolumeName};

use super::manager::FIRST_GENERATION_DIR;
use crate::pair::daemon::status::{self, PairStatus};

/// What was made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Created {
    pub name: String,
    pub size: u64,
    pub device: String,
    /// The pair document's version with it.
    pub version: u64,
}

/// This node's status, if it is the primary: the pair's document changes only there.
pub fn on_the_primary(run_dir: &Path, what: &str) -> anyhow::Result<PairStatus> {
    let s = status::read(&status::status_path(run_dir))?;
    if s.role != "primary" {
        bail!("{what} on the primary, and this node ({}) is {}: run this on {}", s.node, s.role, s.peer_name);
    }
    Ok(s)
}

/// This node's pair configuration, checked.
pub fn document(state: &Path) -> anyhow::Result<PairConfig> {
    let doc = PairConfig::load(state)?;
    doc.check().context("this node's pair configuration")?;
    Ok(doc)
}

/// Makes volume `name` of `size` (`256M`, `2G`); everything is checked before anything is made.
pub fn create(state: &Path, run_dir: &Path, name: &str, size: &str) -> anyhow::Result<Created> {
    let name: VolumeName = name.parse().map_err(anyhow::Error::msg)?;
    let size = parse_size(size).map_err(anyhow::Error::msg)?;
    let s = on_the_primary(run_dir, "volumes are made")?;
    let mut doc = document(state)?;
    let volume = doc.add(name.clone(), size, &s.node)?.clone();
    let backups = state.join("lvm");
    let free = lvm::vg_free(&backups)?;
    if size > free {
        bail!(
            "volume {name} needs {}, and the data partition has {} free: nothing was made",
            show_size(size),
            show_size(free)
        );
    }
    lvm::ensure_lv(name.as_str(), size, &backups)?;
    // This node starts the volume's first generation once its manager has brought it up.
    pairos_host::write_atomically(&state.join(FIRST_GENERATION_DIR).join(name.as_str()), b"")?;
    doc.save(state)?;
    Ok(Created {
        name: name.to_string(),
        size,
        device: format!("/dev/drbd{}", volume.minor),
        version: doc.version,
    })
}
