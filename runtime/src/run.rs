//! `pairos run`: the node's first process after early boot.
//!
//! Today it identifies the node (image version, board verdict), says it is ready, keeps a root
//! shell on the console for the operator, and reaps orphaned processes as PID 1 must. The pair
//! runtime (membership, roles, mirrors, the services on the private link) grows here.

use std::time::Duration;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use pairos_boards::{probe, profiles, verdict};
use pairos_host::Cmd;

use crate::cli::RunArgs;
use crate::Exit;

const BUSYBOX: &str = "/usr/bin/busybox";

fn say(msg: impl std::fmt::Display) {
    println!("pairos run: {msg}");
}

pub fn run(args: &RunArgs) -> anyhow::Result<Exit> {
    let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let version = crate::os_release_field(&os, "IMAGE_VERSION").unwrap_or_else(|| "unknown".into());
    say(format_args!("pairos {version} starting"));
    match probe::probe(std::path::Path::new("/")) {
        Ok(inv) => {
            let v = verdict::check(&profiles::builtin()?, &inv);
            match (&v.profile, v.certified) {
                (Some(p), true) => say(format_args!("board {p}, certified")),
                _ => say(format_args!("board not certified: {}", v.reasons.join("; "))),
            }
        }
        Err(e) => say(format_args!("board probe failed: {e}")),
    }
    say("ready");
    if args.no_console {
        return Ok(Exit::Success);
    }
    console_forever(BUSYBOX)
}

/// Keeps a shell on the console and reaps every child; never returns while it can spawn one.
pub fn console_forever(busybox: &str) -> ! {
    loop {
        let shell = Cmd::new(busybox)
            .args(["setsid", "cttyhack", busybox, "sh", "-l"])
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", "/root")
            .spawn_attached();
        let pid = match shell {
            Ok(pid) => Pid::from_raw(pid as i32),
            Err(e) => {
                say(format_args!("cannot start the console shell: {e}"));
                std::thread::sleep(Duration::from_secs(10));
                continue;
            }
        };
        // As PID 1 we inherit every orphan: reap until the shell itself ends, then start another.
        loop {
            match waitpid(None, None) {
                Ok(WaitStatus::Exited(p, _) | WaitStatus::Signaled(p, _, _)) if p == pid => break,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
