//! Kernel modules: which files to ship and in which order to load them.
//!
//! A Debian kernel package ships modules without `modules.dep` (depmod makes it at install
//! time), so [`KernelTree::open`] runs `depmod -b` on the unpacked tree once. Resolution reads
//! `modules.dep` and `modules.builtin`; a module that is built in needs nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use pairos_host::{Cmd, CommandError};

#[derive(Debug, thiserror::Error)]
pub enum KmodError {
    #[error("{}: {what}", path.display())]
    Layout { path: PathBuf, what: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("running depmod: {0}")]
    Depmod(#[from] CommandError),
    #[error("kernel {version}: no module named {name:?} (neither a file nor built in)")]
    Unknown { version: String, name: String },
}

/// An unpacked kernel: `boot/vmlinuz-V` and `lib/modules/V/` below one root.
#[derive(Debug, Clone)]
pub struct KernelTree {
    pub root: PathBuf,
    pub version: String,
}

/// One module file to ship: its name and its path below `lib/modules/V/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleFile {
    pub name: String,
    pub rel_path: PathBuf,
}

/// The kernel's own spelling: `-` and `_` are the same in module names.
pub fn module_name(file: &str) -> String {
    let stem = file.rsplit('/').next().unwrap_or(file);
    let stem = stem.split(".ko").next().unwrap_or(stem);
    stem.replace('-', "_")
}

impl KernelTree {
    pub fn open(root: &Path) -> Result<Self, KmodError> {
        let mods = root.join("lib/modules");
        let io = |source| KmodError::Io { path: mods.clone(), source };
        let mut versions: Vec<String> = std::fs::read_dir(&mods)
            .map_err(io)?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        versions.sort();
        let [version] = versions.as_slice() else {
            return Err(KmodError::Layout {
                path: mods,
                what: format!("expected exactly one kernel version, found {versions:?}"),
            });
        };
        let tree = KernelTree { root: root.to_owned(), version: version.clone() };
        if !tree.vmlinuz().is_file() {
            return Err(KmodError::Layout { path: tree.vmlinuz(), what: "kernel image missing".into() });
        }
        if !tree.modules_dir().join("modules.dep").is_file() {
            Cmd::new("depmod").arg("-b").arg(root).arg(&tree.version).run()?;
        }
        Ok(tree)
    }

    pub fn vmlinuz(&self) -> PathBuf {
        self.root.join(format!("boot/vmlinuz-{}", self.version))
    }

    pub fn modules_dir(&self) -> PathBuf {
        self.root.join("lib/modules").join(&self.version)
    }

    fn read(&self, file: &str) -> Result<String, KmodError> {
        let path = self.modules_dir().join(file);
        std::fs::read_to_string(&path).map_err(|source| KmodError::Io { path, source })
    }

    /// The module files needed for `names`, dependencies first, each once. Built-in modules are
    /// skipped; an unknown name is an error.
    pub fn load_order(&self, names: &[String]) -> Result<Vec<ModuleFile>, KmodError> {
        let deps = parse_modules_dep(&self.read("modules.dep")?);
        let builtin: BTreeSet<String> = self.read("modules.builtin")?.lines().map(module_name).collect();
        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        for name in names {
            let name = module_name(name);
            if builtin.contains(&name) {
                continue;
            }
            if !deps.contains_key(&name) {
                return Err(KmodError::Unknown { version: self.version.clone(), name });
            }
            visit(&name, &deps, &mut seen, &mut order);
        }
        Ok(order)
    }
}

type DepMap = BTreeMap<String, (PathBuf, Vec<String>)>;

fn parse_modules_dep(text: &str) -> DepMap {
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let Some((path, deps)) = line.split_once(':') else {
            continue;
        };
        let deps = deps.split_whitespace().map(module_name).collect();
        map.insert(module_name(path), (PathBuf::from(path), deps));
    }
    map
}

fn visit(name: &str, deps: &DepMap, seen: &mut BTreeSet<String>, order: &mut Vec<ModuleFile>) {
    if !seen.insert(name.to_owned()) {
        return;
    }
    let Some((path, needs)) = deps.get(name) else {
        return;
    };
    for dep in needs {
        visit(dep, deps, seen, order);
    }
    order.push(ModuleFile { name: name.to_owned(), rel_path: path.clone() });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_come_first_and_once() {
        // Captured from Debian 6.1.0-56-amd64's modules.dep (depmod lists all transitive deps).
        let dep = "kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko\n\
                   kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\n\
                   kernel/net/core/failover.ko:\n\
                   kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko:\n";
        let deps = parse_modules_dep(dep);
        let mut seen = BTreeSet::new();
        let mut order = Vec::new();
        for n in ["virtio_net", "e1000e", "failover"] {
            visit(n, &deps, &mut seen, &mut order);
        }
        let names: Vec<&str> = order.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["failover", "net_failover", "virtio_net", "e1000e"]);
    }

    #[test]
    fn names_are_normalised() {
        assert_eq!(module_name("kernel/drivers/hid/hid-generic.ko"), "hid_generic");
        assert_eq!(module_name("kernel/fs/xfs/xfs.ko.xz"), "xfs");
    }
}
