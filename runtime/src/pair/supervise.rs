//! Keeps a child process running, as PID 1 does for the pair daemon: started with the
//! console's output, watched, and started again a second after it ends. PID 1 reaps every
//! child (it must), so the watch looks at `/proc` rather than waiting for the child itself.

use std::path::PathBuf;
use std::time::Duration;

use pairos_host::Cmd;

use crate::run::say;

/// Whether process `pid` is alive (not gone, and not a zombie waiting to be reaped).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// Runs `program ARGS` on a thread of its own, forever.
pub fn keep_running(name: &'static str, program: PathBuf, args: Vec<String>) {
    std::thread::spawn(move || {
        let mut starts = 0u64;
        loop {
            starts += 1;
            match Cmd::new(&program).args(&args).spawn_attached() {
                Ok(pid) => {
                    if starts > 1 {
                        say(format_args!("{name} started again (pid {pid}, start {starts})"));
                    }
                    while alive(pid) {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    say(format_args!("{name} ended; starting it again in 1 s"));
                }
                Err(e) => say(format_args!("cannot start the {name}: {e}")),
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_running_process_is_alive_and_an_ended_one_is_not() {
        assert!(super::alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().expect("true runs");
        let pid = child.id();
        child.wait().expect("reaped");
        assert!(!super::alive(pid));
    }
}
