//! A workload volume's file system: checked before it is mounted (e2fsck replays the journal
//! and repairs what it safely can), made only on a blank volume (no signature, and its first
//! MiB all zeros: a volume that holds anything else is never formatted), mounted, and
//! unmounted when the role is given up.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use pairos_host::Cmd;

/// What [`prepare`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prepared {
    /// The volume was blank: an ext4 file system was made on it.
    Made,
    /// Its file system was checked (and its journal replayed).
    Checked,
}

/// The file system type on `device` (blkid's probe), or None when it has no signature.
fn fs_type(device: &Path) -> anyhow::Result<Option<String>> {
    let out = std::process::Command::new("blkid")
        .args(["-p", "-o", "value", "-s", "TYPE"])
        .arg(device)
        .output()
        .context("running blkid")?;
    match out.status.code() {
        Some(0) => Ok(Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())),
        // blkid's "nothing found".
        Some(2) => Ok(None),
        _ => bail!("blkid {}: {}", device.display(), String::from_utf8_lossy(&out.stderr).trim()),
    }
}

/// Whether the first MiB of `device` is all zeros.
fn starts_blank(device: &Path) -> anyhow::Result<bool> {
    let mut head = vec![0u8; 1 << 20];
    let mut f = std::fs::File::open(device).with_context(|| format!("opening {}", device.display()))?;
    let mut read = 0;
    while read < head.len() {
        match f.read(&mut head[read..]).with_context(|| format!("reading {}", device.display()))? {
            0 => break,
            n => read += n,
        }
    }
    Ok(head[..read].iter().all(|b| *b == 0))
}

/// Makes `device` ready to mount: checks its ext4 file system, or makes one when the device is
/// blank. Anything else on it is an error, and the device is not touched.
pub fn prepare(device: &Path, label: &str) -> anyhow::Result<Prepared> {
    match fs_type(device)?.as_deref() {
        Some("ext4") => {
            let out = std::process::Command::new("e2fsck").arg("-p").arg(device).output().context("running e2fsck")?;
            // 0: clean; 1: errors corrected; 2: corrected, a reboot advised (not for a data volume).
            match out.status.code() {
                Some(0..=2) => Ok(Prepared::Checked),
                code => bail!(
                    "e2fsck -p {} (exit {code:?}): the file system needs a person: {}",
                    device.display(),
                    String::from_utf8_lossy(&out.stdout).trim()
                ),
            }
        }
        Some(other) => bail!("{} holds a {other} file system: expected ext4; it is left as it is", device.display()),
        None if starts_blank(device)? => {
            Cmd::new("mkfs.ext4").args(["-q", "-L", label]).arg(device).run()?;
            Ok(Prepared::Made)
        }
        None => bail!(
            "{} holds data that is not a file system: it is not formatted (a workload's volume must hold ext4, or nothing)",
            device.display()
        ),
    }
}

/// Whether something is mounted on `at`.
pub fn is_mounted(at: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return false };
    let at = at.to_string_lossy();
    info.lines().any(|l| l.split_whitespace().nth(4) == Some(at.as_ref()))
}

/// Mounts `device` (ext4) on `at`, making the folder first.
pub fn mount(device: &Path, at: &Path) -> anyhow::Result<()> {
    if is_mounted(at) {
        bail!("{} is mounted already", at.display());
    }
    std::fs::create_dir_all(at).with_context(|| format!("making {}", at.display()))?;
    Cmd::new("mount").args(["-t", "ext4", "-o", "noatime"]).arg(device).arg(at).run()?;
    Ok(())
}

/// Gives the folder `at` (not what is in it) to `user` and the user's group.
pub fn own(at: &Path, user: &str) -> anyhow::Result<()> {
    let u = nix::unistd::User::from_name(user)
        .with_context(|| format!("looking up user {user}"))?
        .with_context(|| format!("no user {user} on this node"))?;
    nix::unistd::chown(at, Some(u.uid), Some(u.gid))
        .with_context(|| format!("giving {} to {user}", at.display()))?;
    Ok(())
}

/// Unmounts `at` (a few tries: the last of a killed workload's files may still be closing).
pub fn unmount(at: &Path) -> anyhow::Result<()> {
    let mut last = None;
    for _ in 0..10 {
        if !is_mounted(at) {
            return Ok(());
        }
        match Cmd::new("umount").arg(at).run() {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    Err(last.map(anyhow::Error::from).unwrap_or_else(|| anyhow::anyhow!("unmounting {}", at.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loop device over a file; detached on drop.
    struct Loop(String);
    impl Drop for Loop {
        fn drop(&mut self) {
            let _ = Cmd::new("losetup").args(["-d", &self.0]).run();
        }
    }

    fn loop_over(file: &Path) -> Loop {
        let dev =
            Cmd::new("losetup").args(["-f", "--show"]).arg(file).run_text().expect("losetup (needs root)");
        Loop(dev.trim().to_owned())
    }

    #[test]
    fn a_blank_volume_gets_ext4_a_used_one_is_checked_and_foreign_data_is_never_formatted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = dir.path().join("vol.img");
        std::fs::File::create(&img).and_then(|f| f.set_len(32 << 20)).expect("image");
        let dev = loop_over(&img);
        let device = Path::new(&dev.0);
        assert_eq!(prepare(device, "db").expect("blank"), Prepared::Made);
        let at = dir.path().join("mnt");
        mount(device, &at).expect("mounted");
        assert!(is_mounted(&at));
        std::fs::write(at.join("kept"), "data").expect("written");
        own(&at, "nobody").expect("owned");
        let nobody = nix::unistd::User::from_name("nobody").expect("lookup").expect("nobody");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&at).expect("stat").uid(), nobody.uid.as_raw());
        assert!(mount(device, &at).expect_err("twice").to_string().contains("mounted already"));
        unmount(&at).expect("unmounted");
        assert!(!is_mounted(&at));
        assert_eq!(prepare(device, "db").expect("checked"), Prepared::Checked);
        mount(device, &at).expect("mounted again");
        assert_eq!(std::fs::read_to_string(at.join("kept")).expect("still there"), "data");
        unmount(&at).expect("unmounted");

        // Raw data that is not a file system: refused, and not one byte changes.
        let raw = dir.path().join("raw.img");
        let bytes: Vec<u8> = (0..(4u32 << 20)).map(|i| (i % 251) as u8 | 1).collect();
        std::fs::write(&raw, &bytes).expect("raw image");
        let rdev = loop_over(&raw);
        let e = prepare(Path::new(&rdev.0), "raw").expect_err("not a file system").to_string();
        assert!(e.contains("not formatted"), "{e}");
        drop(rdev);
        assert_eq!(std::fs::read(&raw).expect("read"), bytes, "untouched");
    }
}
