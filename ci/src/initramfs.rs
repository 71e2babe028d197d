//! The lab's shell initramfs: busybox, the `pairos` binary with its libraries, the kernel
//! modules a board profile names, and an init that loads them and opens a shell on the serial
//! console. Tests then drive the node by typing commands.
//!
//! This is test scaffolding for booting our kernel before an image exists; nodes booted from a
//! `pairos build` image use the image's own initramfs.

use std::path::{Path, PathBuf};

use pairos_boards::Profile;
use pairos_host::Cmd;
use pairos_image::initramfs::Initramfs;
use pairos_image::kmod::KernelTree;

use crate::error::io;
use crate::{paths, LabError};

/// The script that captures sysfs for fixtures; it is put at `/capture-sysfs.sh`.
pub const CAPTURE_SCRIPT: &str = include_str!("../scripts/capture-sysfs.sh");

const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
dmesg -n 1
while read -r m; do
  insmod "/lib/modules/$(uname -r)/$m" || echo "lab-init: loading $m failed"
done < /etc/lab-modules
for i in /sys/class/net/*; do ip link set "${i##*/}" up; done
stty cols 4000 2>/dev/null
echo "lab-init: ready"
exec setsid cttyhack sh
"#;

/// Builds the initramfs into `out` for `kernel`, with the modules of `profile`.
pub fn shell_initramfs(kernel: &KernelTree, profile: &Profile, out: &Path) -> Result<PathBuf, LabError> {
    let mut img = Initramfs::new();
    img.file("/init", INIT, 0o755);
    img.host_file("/bin/busybox", Path::new("/bin/busybox"), 0o755)?;
    for d in ["/proc", "/sys", "/dev", "/tmp", "/root"] {
        img.dir(d, 0o755);
    }

    // The test binary is a debug build; strip it so the VM loads megabytes, not tens of them.
    let pairos = paths::pairos_bin()?;
    let stripped = out.with_file_name("pairos.stripped");
    Cmd::new("strip").arg("--strip-debug").arg("-o").arg(&stripped).arg(&pairos).run()?;
    img.program("/bin/pairos", &stripped)?;
    img.file("/capture-sysfs.sh", CAPTURE_SCRIPT, 0o755);

    let modules = kernel.load_order(&profile.modules.all())?;
    let mut list = String::new();
    for m in &modules {
        let rel = m.rel_path.to_string_lossy();
        let dest = format!("/lib/modules/{}/{rel}", kernel.version);
        img.host_file(&dest, &kernel.modules_dir().join(&m.rel_path), 0o644)?;
        list.push_str(&rel);
        list.push('\n');
    }
    img.file("/etc/lab-modules", list, 0o644);
    img.write(out, 0)?;
    std::fs::metadata(out).map_err(io(out))?;
    Ok(out.to_owned())
}
