//! Stage 4, initramfs: `pairos` as /init (its early-boot mode), with the few tools it calls
//! (veritysetup, mke2fs, debugfs to read a disk's identity, blkid, busybox for switch_root,
//! links and the console), their libraries and the kernel modules that boot needs, all taken
//! from the image's own tree, never from the host.

use std::path::{Component, Path, PathBuf};

use pairos_host::Cmd;

use crate::initramfs::Initramfs;
use crate::kmod::KernelTree;
use crate::stages::StageError;

/// Programs the early-boot code runs, at the same path as in the root filesystem.
pub const PROGRAMS: [&str; 6] = [
    "usr/bin/pairos",
    "usr/sbin/veritysetup",
    "usr/sbin/mke2fs",
    "usr/sbin/debugfs",
    "usr/sbin/blkid",
    "usr/bin/busybox",
];
/// Where the init finds its module list and the signing key.
pub const MODULES_LIST: &str = "etc/pairos/modules.load";
/// The same, as the running initramfs sees it.
pub const MODULES_LIST_ABS: &str = "/etc/pairos/modules.load";
pub const PUBLIC_KEY: &str = "etc/pairos/signing-key.pub";

/// Resolves `path` inside `root` the way the kernel would after chroot: absolute links restart
/// at `root`, so nothing ever leads back to the host's files.
pub fn resolve_in(root: &Path, path: &Path) -> Result<PathBuf, StageError> {
    let mut hops = 0;
    let mut current = root.to_path_buf();
    // Components still to walk, last first; a link's target is pushed in front of the rest.
    let mut rest: Vec<PathBuf> = path.components().rev().map(|c| PathBuf::from(c.as_os_str())).collect();
    while let Some(part) = rest.pop() {
        let name = part.as_os_str();
        if name == "/" {
            current = root.to_path_buf();
            continue;
        }
        if name == "." {
            continue;
        }
        if name == ".." {
            if current != root {
                current.pop();
            }
            continue;
        }
        let next = current.join(name);
        match std::fs::symlink_metadata(&next) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > 40 {
                    return Err(StageError::Parse {
                        what: "symlinks in the tree".into(),
                        text: path.display().to_string(),
                    });
                }
                let target = std::fs::read_link(&next).map_err(StageError::io(&next))?;
                if target.is_absolute() {
                    current = root.to_path_buf();
                }
                for c in target.components().rev() {
                    if c != Component::RootDir {
                        rest.push(PathBuf::from(c.as_os_str()));
                    }
                }
            }
            _ => current = next,
        }
    }
    Ok(current)
}

/// The libraries `program` (a path inside `tree`) loads, as the tree's own ldd finds them.
fn libraries(tree: &Path, program: &str) -> Result<Vec<String>, StageError> {
    let inside = PathBuf::from(format!("/{program}"));
    let ldd = Cmd::new("chroot").arg(tree).arg("/usr/bin/ldd").arg(&inside);
    let libs = crate::initramfs::run_ldd(ldd, &inside)?;
    Ok(libs.iter().map(|l| l.to_string_lossy().into_owned()).collect())
}

#[derive(Debug)]
pub struct BootInitramfs<'a> {
    pub tree: &'a Path,
    pub kernel: &'a KernelTree,
    pub modules: &'a [String],
    pub public_key_pem: &'a str,
    pub os_release: &'a str,
    pub epoch: u64,
}

/// Writes `out/initrd.img`.
pub fn run(b: &BootInitramfs<'_>, out: &Path) -> Result<PathBuf, StageError> {
    let mut img = Initramfs::new();
    for dir in ["dev", "proc", "sys", "run", "tmp", "newroot"] {
        img.dir(dir, 0o755);
    }
    let mut files: Vec<String> = PROGRAMS.iter().map(|p| p.to_string()).collect();
    for program in PROGRAMS {
        files.extend(libraries(b.tree, program)?);
    }
    files.push("etc/mke2fs.conf".into());
    for file in files {
        let src = resolve_in(b.tree, Path::new(&file))?;
        let mode = if file.starts_with("etc/") { 0o644 } else { 0o755 };
        img.host_file(&file, &src, mode)?;
    }
    img.symlink("init", "usr/bin/pairos");
    img.file(PUBLIC_KEY, b.public_key_pem, 0o644);
    img.file("etc/os-release", b.os_release, 0o644);

    let mut list = String::new();
    for m in b.kernel.load_order(b.modules)? {
        let rel = format!("lib/modules/{}/{}", b.kernel.version, m.rel_path.display());
        img.host_file(&rel, &b.kernel.modules_dir().join(&m.rel_path), 0o644)?;
        list.push_str(&format!("/{rel}\n"));
    }
    img.file(MODULES_LIST, list, 0o644);

    let path = out.join("initrd.img");
    img.write(&path, u32::try_from(b.epoch).unwrap_or(u32::MAX))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_links_stay_inside_the_tree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/lib/x86_64-linux-gnu")).expect("mkdir");
        std::fs::write(root.join("usr/lib/x86_64-linux-gnu/ld.so"), b"tree's loader").expect("write");
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).expect("link");
        std::fs::create_dir_all(root.join("usr/lib64")).expect("mkdir");
        std::os::unix::fs::symlink("usr/lib64", root.join("lib64")).expect("link");
        // As in Debian: an absolute link, which on the host would lead to the host's loader.
        std::os::unix::fs::symlink("/lib/x86_64-linux-gnu/ld.so", root.join("usr/lib64/ld.so"))
            .expect("link");
        let resolved = resolve_in(root, Path::new("/lib64/ld.so")).expect("resolve");
        assert_eq!(resolved, root.join("usr/lib/x86_64-linux-gnu/ld.so"));
        assert_eq!(std::fs::read(resolved).expect("read"), b"tree's loader");
    }
}
