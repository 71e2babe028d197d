//! Stage 2, rootfs: Debian assembled by mmdebstrap (apt resolves the dependencies), then our
//! overlay: the `pairos` binary, os-release with the image version, configuration defaults,
//! the signing public key, and only the kernel modules the boards and the spec need.

use std::path::{Path, PathBuf};

use pairos_host::Cmd;

use crate::digest::Key;
use crate::kmod::KernelTree;
use crate::spec::Spec;
use crate::stages::StageError;

/// Where the host's apt keeps its sources when the spec names none.
const HOST_SOURCES: [&str; 2] = ["/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"];

/// The sources file mmdebstrap reads: the spec's, or the host's.
pub fn sources_file(spec: &Spec) -> Result<PathBuf, StageError> {
    if let Some(path) = &spec.sources {
        if !path.is_file() {
            return Err(StageError::Missing {
                what: "the spec's package sources file".into(),
                path: path.clone(),
            });
        }
        return Ok(path.clone());
    }
    HOST_SOURCES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file() && std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .ok_or_else(|| StageError::Missing {
            what: "apt sources (set `sources` in the spec)".into(),
            path: PathBuf::from(HOST_SOURCES[0]),
        })
}

/// The inputs of the mmdebstrap run: suite, packages, sources, and the apt index the host has
/// now (its Release files), so that a changed archive means a new rootfs.
pub fn debootstrap_key(spec: &Spec, sources: &Path, epoch: u64) -> Result<Key, StageError> {
    let mut key = Key::new("debootstrap");
    key.add_str("suite", &spec.suite);
    let mut packages = spec.packages.clone();
    packages.sort();
    key.add_str("packages", &packages.join(","));
    key.add_file("sources", sources).map_err(StageError::io(sources))?;
    key.add_str("epoch", &epoch.to_string());
    let lists = Path::new("/var/lib/apt/lists");
    if let Ok(entries) = std::fs::read_dir(lists) {
        let mut releases: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with("Release")))
            .collect();
        releases.sort();
        for r in releases {
            key.add_file("release", &r).map_err(StageError::io(&r))?;
        }
    }
    Ok(key)
}

/// Runs mmdebstrap into `out/rootfs.tar`.
pub fn debootstrap(spec: &Spec, sources: &Path, epoch: u64, out: &Path) -> Result<(), StageError> {
    let tar = out.join("rootfs.tar");
    Cmd::new("mmdebstrap")
        .args(["--quiet", "--variant=minbase", "--mode=root", "--format=tar"])
        .arg(format!("--include={}", spec.packages.join(",")))
        .arg(&spec.suite)
        .arg(&tar)
        .arg(sources)
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .run()
        .map_err(|e| StageError::Tool {
            what: format!(
                "assembling Debian {} with mmdebstrap from {} (are the package sources reachable?)",
                spec.suite,
                sources.display()
            ),
            source: e,
        })?;
    Ok(())
}

/// What the overlay adds, besides the tree it starts from.
#[derive(Debug)]
pub struct Overlay<'a> {
    pub pairos_bin: &'a Path,
    pub version: &'a str,
    pub public_key_pem: &'a str,
    pub kernel: &'a KernelTree,
    pub modules: &'a [String],
}

pub const DEFAULTS: &str = "\
# pairos configuration defaults, shipped read-only in the image.
# A node's own settings live on its state partition and override these.
[private_link]
subnet = \"10.77.0.0/24\"
[public]
dhcp = true
";

pub fn os_release(version: &str) -> String {
    format!(
        "NAME=\"pairos\"\nID=pairos\nID_LIKE=debian\nPRETTY_NAME=\"pairos {version}\"\n\
         VERSION_ID=\"{version}\"\nIMAGE_ID=pairos\nIMAGE_VERSION=\"{version}\"\n\
         HOME_URL=\"https://example.invalid/pairos\"\n"
    )
}

/// Unpacks `rootfs.tar` into `out/tree` and adds the overlay.
pub fn tree(rootfs_tar: &Path, o: &Overlay<'_>, out: &Path) -> Result<PathBuf, StageError> {
    let tree = out.join("tree");
    std::fs::create_dir_all(&tree).map_err(StageError::io(&tree))?;
    Cmd::new("tar").args(["-x", "--numeric-owner", "-p", "-f"]).arg(rootfs_tar).arg("-C").arg(&tree).run()?;

    let write = |rel: &str, text: &str| -> Result<(), StageError> {
        let path = tree.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(StageError::io(dir))?;
        }
        // os-release in Debian is a symlink into /usr/lib; replace whatever is there.
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, text).map_err(StageError::io(&path))
    };
    write("usr/lib/os-release", &os_release(o.version))?;
    write("etc/os-release", &os_release(o.version))?;
    write("etc/pairos/defaults.toml", DEFAULTS)?;
    write("usr/share/pairos/signing-key.pub", o.public_key_pem)?;
    write("etc/hostname", "pairos\n")?;
    for dir in ["state", "data"] {
        let d = tree.join(dir);
        std::fs::create_dir_all(&d).map_err(StageError::io(&d))?;
    }
    // DRBD on a read-only root: the kernel's helper calls run `drbdadm` without `-c`, so its
    // default configuration includes the one the runtime writes; its state (the last-known
    // backing devices) lives in /run.
    if tree.join("usr/sbin/drbdadm").exists() {
        write(
            "etc/drbd.conf",
            "# pairos: the pair's volumes, written by the runtime.\ninclude \"/run/pairos/drbd.conf\";\n",
        )?;
        let lib = tree.join("var/lib/drbd");
        let _ = std::fs::remove_dir_all(&lib);
        let _ = std::fs::remove_file(&lib);
        std::os::unix::fs::symlink("/run/drbd", &lib).map_err(StageError::io(&lib))?;
    }

    // The binary that is building is the one the image runs; debug info stays behind.
    let bin = tree.join("usr/bin/pairos");
    Cmd::new("strip").arg("--strip-debug").arg("-o").arg(&bin).arg(o.pairos_bin).run()?;

    install_modules(o.kernel, o.modules, &tree)?;
    Ok(tree)
}

/// Copies the modules (and their dependencies) into the tree and indexes them with depmod.
fn install_modules(kernel: &KernelTree, modules: &[String], tree: &Path) -> Result<(), StageError> {
    let dest = tree.join("lib/modules").join(&kernel.version);
    std::fs::create_dir_all(&dest).map_err(StageError::io(&dest))?;
    for file in ["modules.builtin", "modules.builtin.modinfo", "modules.order"] {
        let src = kernel.modules_dir().join(file);
        std::fs::copy(&src, dest.join(file)).map_err(StageError::io(&src))?;
    }
    for m in kernel.load_order(modules)? {
        let to = dest.join(&m.rel_path);
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).map_err(StageError::io(dir))?;
        }
        let from = kernel.modules_dir().join(&m.rel_path);
        std::fs::copy(&from, &to).map_err(StageError::io(&from))?;
    }
    Cmd::new("depmod").arg("-b").arg(tree).arg(&kernel.version).run()?;
    Ok(())
}
