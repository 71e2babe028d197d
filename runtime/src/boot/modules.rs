//! Loading the kernel modules the initramfs carries, in the order the build resolved.

use std::ffi::CString;
use std::path::Path;

use anyhow::Context;
use nix::errno::Errno;
use nix::kmod::{finit_module, ModuleInitFlags};

/// Loads every module listed (one absolute path a line, dependencies first). A module that is
/// already loaded is fine; one that fails is reported and skipped, since boards differ and a
/// module for absent hardware may refuse to load. Returns how many were loaded.
pub fn load_all(list: &Path) -> anyhow::Result<usize> {
    let text = std::fs::read_to_string(list).with_context(|| format!("reading {}", list.display()))?;
    let mut loaded = 0;
    let params = CString::default();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let file = match std::fs::File::open(line) {
            Ok(f) => f,
            Err(e) => {
                super::say(format_args!("module {line}: {e}"));
                continue;
            }
        };
        match finit_module(&file, &params, ModuleInitFlags::empty()) {
            Ok(()) => loaded += 1,
            Err(Errno::EEXIST) => {}
            Err(e) => super::say(format_args!("module {line}: {e}")),
        }
    }
    Ok(loaded)
}
