//! Early boot: what the kernel runs as `/init` from the initramfs. Not a general init system:
//!
//! 1. mount /proc, /sys, /dev and /run, and read the kernel command line ([`cmdline`]);
//! 2. load the kernel modules the image's boards need ([`modules`]);
//! 3. in `pairos.mode=run` (the default): find root A and verity A by the root hash, make the
//!    state and data partitions on first boot ([`disks`], [`state`], [`data`]), verify the
//!    whole root against the hash, open it through device-mapper, mount it read-only, mount
//!    the state partition, and switch to it, starting `pairos run` ([`switch`]);
//! 4. `pairos.mode=recover` runs the recovery agent ([`recover`]): the node images itself from
//!    its peer and reboots into the result (booted by UEFI HTTP boot, it finds its link by DHCP,
//!    [`dhcp_link`]); `pairos.mode=install` runs the installer
//!    ([`install`]), which installs the first node from the ISO.
//!
//! Anything that goes wrong is printed on the console, and the node reboots after a pause: a
//! node that cannot boot its disk falls back to network boot, where its peer can heal it.

pub(crate) mod cmdline;
mod console_progress;
pub(crate) mod data;
mod dhcp_link;
pub(crate) mod disks;
mod install;
mod modules;
mod recover;
pub(crate) mod state;
mod switch;

use std::time::Duration;

use anyhow::Context;

pub use cmdline::{BootArgs, Mode};
pub(crate) use switch::mount_efivarfs;

use crate::Exit;

/// Printed before each line, so the console shows who speaks.
const WHO: &str = "pairos-init";

pub(crate) fn say(msg: impl std::fmt::Display) {
    println!("{WHO}: {msg}");
}

/// Runs early boot; returns only on failure (after the pause and the reboot request).
pub fn init() -> anyhow::Result<Exit> {
    if let Err(err) = boot() {
        say(format_args!("FATAL: {err:#}"));
        say("refusing to boot; rebooting in 30 s");
        std::thread::sleep(Duration::from_secs(30));
        let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT);
    }
    Ok(Exit::Error)
}

fn boot() -> anyhow::Result<()> {
    // The kernel starts /init without a PATH; the tools it runs live here.
    std::env::set_var("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    switch::mount_early().context("mounting /proc, /sys, /dev and /run")?;
    let args = cmdline::read().context("reading the kernel command line")?;
    let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let version = crate::os_release_field(&os, "IMAGE_VERSION").unwrap_or_else(|| "unknown".into());
    say(format_args!("pairos {version}, mode {}", args.mode));
    let loaded =
        modules::load_all(std::path::Path::new(pairos_image::stages::boot_initramfs::MODULES_LIST_ABS))?;
    say(format_args!("{loaded} kernel modules loaded"));

    match args.mode {
        Mode::Run => {
            let root_hash = args.root_hash.context("no roothash= on the kernel command line")?;
            let disk = disks::find_root(&root_hash, Duration::from_secs(60))?;
            say(format_args!(
                "root A is {} and verity A is {} on {}",
                disk.root.display(),
                disk.verity.display(),
                disk.disk.display()
            ));
            let state = state::ensure(&disk.disk)?;
            // The volumes' space: a disk without it still boots (and says so).
            if let Err(e) = data::ensure(&disk.disk) {
                say(format_args!("cannot make the data partition: {e:#}; this node has no volumes"));
            }
            switch::open_verity(&disk, &root_hash)?;
            switch::mount_root_and_state(&state)?;
            say("switching to the root filesystem and starting pairos run");
            Err(switch::switch_root())
        }
        Mode::Recover => {
            say("recovery mode (pairos.mode=recover)");
            conclude(recover::recover(&args)?)
        }
        Mode::Install => {
            say("installer mode (pairos.mode=install)");
            conclude(install::install(&args)?)
        }
    }
}

/// After the recovery agent or the installer: reboot into the installed OS, or stay with a
/// console shell when the node must not be imaged.
fn conclude(outcome: recover::Outcome) -> anyhow::Result<()> {
    match outcome {
        recover::Outcome::Reboot => {
            nix::unistd::sync();
            nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT)?;
            unreachable!("reboot returns only on failure")
        }
        recover::Outcome::Stop => {
            say("stopped; opening a console shell");
            crate::run::console_forever("/usr/bin/busybox")
        }
    }
}
