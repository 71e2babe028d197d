//! Defining a workload on the primary: its definition (TOML) is checked whole against this
//! node and the pair's document (its volumes, its programs, its user), then added to the
//! document, which the peer adopts. `pairos workload add` and the console both come here.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::bail;
use pairos_mirror::document::PairConfig;
use pairos_workload::spec::{Surroundings, Workload};

/// This node and the pair, as a definition is checked against them.
struct ThisNode<'a> {
    doc: &'a PairConfig,
}

impl Surroundings for ThisNode<'_> {
    fn has_volume(&self, name: &str) -> bool {
        self.doc.volumes.iter().any(|v| v.name.as_str() == name)
    }

    fn is_program(&self, path: &Path) -> bool {
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }

    fn has_user(&self, name: &str) -> bool {
        matches!(nix::unistd::User::from_name(name), Ok(Some(_)))
    }
}

/// Checks the definition `text` (from `source`, for the messages) and adds it to the pair's
/// document on this node, the primary; `replace` redefines one of the same name. Anything
/// wrong refuses it whole and changes nothing. Returns its name and the document's version.
pub fn define(
    state: &Path,
    run_dir: &Path,
    text: &str,
    source: &str,
    replace: bool,
) -> anyhow::Result<(String, u64)> {
    let workload = Workload::from_toml(text, source).map_err(anyhow::Error::msg)?;
    crate::volumes::create::on_the_primary(run_dir, "workloads are defined")?;
    let mut doc = crate::volumes::create::document(state)?;
    let wrong = workload.check(&ThisNode { doc: &doc });
    if !wrong.is_empty() {
        bail!(
            "{source}: workload {:?} is refused (nothing was changed):\n  {}",
            workload.name,
            wrong.join("\n  ")
        );
    }
    let name = workload.name.clone();
    doc.add_workload(workload, replace)?;
    doc.save(state)?;
    Ok((name, doc.version))
}
