//! Mounts, the verity root, and the switch to it.

use std::path::Path;

use anyhow::Context;
use nix::mount::{mount, MsFlags};
use pairos_host::{Cmd, CommandError};
use pairos_image::digest::hex;

use super::disks::RootDisk;
use super::say;

const NEWROOT: &str = "/newroot";

fn mount_fs(src: &str, target: &str, fstype: &str, flags: MsFlags, data: Option<&str>) -> anyhow::Result<()> {
    std::fs::create_dir_all(target).with_context(|| format!("making {target}"))?;
    mount(Some(src), target, Some(fstype), flags, data)
        .with_context(|| format!("mounting {fstype} {src} on {target}"))
}

pub fn mount_early() -> anyhow::Result<()> {
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_fs("proc", "/proc", "proc", nosuid, None)?;
    mount_fs("sysfs", "/sys", "sysfs", nosuid, None)?;
    mount_fs("devtmpfs", "/dev", "devtmpfs", MsFlags::MS_NOSUID, Some("mode=0755"))?;
    mount_fs("tmpfs", "/run", "tmpfs", MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=0755"))?;
    Ok(())
}

/// Mounts efivarfs where the UEFI boot variables are read and written, unless it is there:
/// `Ok(false)` on BIOS (nothing to mount). The recovery agent writes them; a running node only
/// reads them (`read_only`).
pub fn mount_efivarfs(read_only: bool) -> anyhow::Result<bool> {
    use pairos_recovery::efi_boot::EFIVARFS;
    if !std::path::Path::new("/sys/firmware/efi").exists() {
        return Ok(false);
    }
    if std::fs::read_dir(EFIVARFS).is_ok_and(|mut d| d.next().is_some()) {
        return Ok(true);
    }
    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if read_only {
        flags |= MsFlags::MS_RDONLY;
    }
    mount_fs("efivarfs", EFIVARFS, "efivarfs", flags, None)?;
    Ok(true)
}

/// Checks every block of root A against the root hash, then opens it as /dev/mapper/root.
/// Verifying all of it up front (a few seconds on the lab's TCG, far less on hardware) turns a
/// damaged root into a clear refusal now rather than I/O errors later.
pub fn open_verity(disk: &RootDisk, root_hash: &[u8; 32]) -> anyhow::Result<()> {
    let hash = hex(root_hash);
    std::fs::create_dir_all("/run/cryptsetup")?;
    let verify =
        Cmd::new("/usr/sbin/veritysetup").arg("verify").arg(&disk.root).arg(&disk.verity).arg(&hash).run();
    if let Err(e) = verify {
        let detail = match &e {
            CommandError::Failed { stderr, .. } if !stderr.trim().is_empty() => stderr.trim().to_owned(),
            other => other.to_string(),
        };
        anyhow::bail!(
            "root A on {} does not match the root hash {hash} (dm-verity): {detail}. The disk is damaged or \
             was tampered with",
            disk.root.display()
        );
    }
    say("root A verified against the root hash");
    Cmd::new("/usr/sbin/veritysetup")
        .arg("open")
        .arg(&disk.root)
        .arg("root")
        .arg(&disk.verity)
        .arg(&hash)
        .run()
        .context("opening root A with dm-verity")?;
    Ok(())
}

pub fn mount_root_and_state(state: &Path) -> anyhow::Result<()> {
    mount_fs("/dev/mapper/root", NEWROOT, "squashfs", MsFlags::MS_RDONLY, None)?;
    mount_fs(
        &state.to_string_lossy(),
        &format!("{NEWROOT}/state"),
        "ext4",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        None,
    )?;
    mount_fs(
        "tmpfs",
        &format!("{NEWROOT}/tmp"),
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    )?;
    for m in ["/dev", "/proc", "/sys", "/run"] {
        let target = format!("{NEWROOT}{m}");
        mount(Some(m), target.as_str(), None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .with_context(|| format!("moving {m} to {target}"))?;
    }
    Ok(())
}

/// Replaces us with busybox's switch_root, which empties the initramfs and starts `pairos run`
/// as PID 1 of the real root. Returns only on failure.
pub fn switch_root() -> anyhow::Error {
    let err = Cmd::new("/usr/bin/busybox")
        .args(["switch_root", NEWROOT, "/usr/bin/pairos", "run"])
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .exec();
    anyhow::Error::new(err).context("switching to the root filesystem")
}
