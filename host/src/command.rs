//! Running subprocesses: the only helper for it in the workspace.

use std::ffi::OsStr;
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

/// How much of a failed command's stderr the error keeps.
const STDERR_TAIL: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("starting `{command}`: {source}")]
    Spawn { command: String, source: std::io::Error },
    #[error("`{command}` failed ({status}){}", tail_suffix(.stderr))]
    Failed { command: String, status: ExitStatus, stderr: String },
    #[error("waiting for `{command}`: {source}")]
    Wait { command: String, source: std::io::Error },
}

fn tail_suffix(stderr: &str) -> String {
    let stderr = stderr.trim();
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let start = text.len().saturating_sub(STDERR_TAIL);
    let start = (start..text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(text.len());
    text[start..].to_owned()
}

/// A command to run. Build it like `std::process::Command`, then [`Cmd::run`] or [`Cmd::spawn`].
pub struct Cmd {
    inner: Command,
    shown: String,
}

impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        let program = program.as_ref();
        let mut inner = Command::new(program);
        inner.stdin(Stdio::null());
        Self { inner, shown: program.to_string_lossy().into_owned() }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        let arg = arg.as_ref();
        self.shown.push(' ');
        self.shown.push_str(&arg.to_string_lossy());
        self.inner.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.inner.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.inner.env_remove(key);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.inner.current_dir(dir);
        self
    }

    /// The command line as logged and shown in errors.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Runs to completion and returns stdout. A non-zero exit is an error carrying stderr's tail.
    pub fn run(mut self) -> Result<Vec<u8>, CommandError> {
        tracing::debug!(command = %self.shown, "running");
        let out = self
            .inner
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|source| CommandError::Spawn { command: self.shown.clone(), source })?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(CommandError::Failed { command: self.shown, status: out.status, stderr: tail(&out.stderr) })
        }
    }

    /// Runs to completion and returns stdout as text (lossy UTF-8).
    pub fn run_text(self) -> Result<String, CommandError> {
        self.run().map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// Runs to completion and reports whether it exited 0, for commands whose failure is an
    /// answer ("does this netns exist?") rather than an error.
    pub fn succeeds(mut self) -> Result<bool, CommandError> {
        tracing::debug!(command = %self.shown, "running");
        let status = self
            .inner
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|source| CommandError::Spawn { command: self.shown.clone(), source })?;
        Ok(status.success())
    }

    /// Starts the command in the background. With `log`, its stdout and stderr both go to that
    /// file (a pipe nobody reads would block a chatty server); without, stderr is kept for the
    /// error if it exits early. The child dies with the returned guard, and with our thread if
    /// we are killed (PR_SET_PDEATHSIG).
    pub fn spawn(mut self, log: Option<&Path>) -> Result<Child, CommandError> {
        tracing::debug!(command = %self.shown, "spawning");
        let spawn_err = |shown: &str, source| CommandError::Spawn { command: shown.to_owned(), source };
        match log {
            Some(path) => {
                let file = std::fs::File::create(path).map_err(|e| spawn_err(&self.shown, e))?;
                let err = file.try_clone().map_err(|e| spawn_err(&self.shown, e))?;
                self.inner.stdout(Stdio::from(file)).stderr(Stdio::from(err));
            }
            None => {
                self.inner.stdout(Stdio::null()).stderr(Stdio::piped());
            }
        }
        set_parent_death_signal(&mut self.inner);
        let child = self.inner.spawn().map_err(|e| spawn_err(&self.shown, e))?;
        Ok(Child { child: Some(child), shown: self.shown, log: log.map(Path::to_owned) })
    }

    /// Starts the command with our stdin, stdout and stderr (a console shell), detached from
    /// any guard: the caller reaps it (PID 1 reaps everything). Returns its process id.
    pub fn spawn_attached(mut self) -> Result<u32, CommandError> {
        tracing::debug!(command = %self.shown, "spawning on our terminal");
        self.inner.stdin(Stdio::inherit()).stdout(Stdio::inherit()).stderr(Stdio::inherit());
        let child = self
            .inner
            .spawn()
            .map_err(|source| CommandError::Spawn { command: self.shown.clone(), source })?;
        Ok(child.id())
    }

    /// Replaces this process with the command; returns only if that failed.
    pub fn exec(mut self) -> CommandError {
        use std::os::unix::process::CommandExt;
        tracing::debug!(command = %self.shown, "exec");
        self.inner.stdin(Stdio::inherit()).stdout(Stdio::inherit()).stderr(Stdio::inherit());
        let source = self.inner.exec();
        CommandError::Spawn { command: self.shown, source }
    }
}

#[allow(unsafe_code)]
fn set_parent_death_signal(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only makes one async-signal-safe
    // syscall (prctl), allocating nothing.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
}

/// A running child process that is killed when the guard drops.
#[derive(Debug)]
pub struct Child {
    child: Option<std::process::Child>,
    shown: String,
    /// Where its output goes, if to a file: the error's tail comes from there.
    log: Option<std::path::PathBuf>,
}

impl Child {
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, std::process::Child::id)
    }

    /// Whether it is still running; an exit is reported with stderr's tail as the error.
    pub fn check_running(&mut self) -> Result<(), CommandError> {
        let Some(child) = self.child.as_mut() else {
            return Ok(());
        };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                let mut stderr = Vec::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_end(&mut stderr);
                } else if let Some(log) = &self.log {
                    stderr = std::fs::read(log).unwrap_or_default();
                }
                Err(CommandError::Failed { command: self.shown.clone(), status, stderr: tail(&stderr) })
            }
            Err(source) => Err(CommandError::Wait { command: self.shown.clone(), source }),
        }
    }

    /// Kills the child and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            tracing::debug!(command = %self.shown, "stopped");
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_carries_the_command_and_stderr() {
        let err = Cmd::new("sh").args(["-c", "echo boom >&2; exit 3"]).run().expect_err("exit 3");
        let text = err.to_string();
        assert!(text.contains("`sh -c echo boom >&2; exit 3` failed"), "{text}");
        assert!(text.contains("boom"), "{text}");
    }

    #[test]
    fn a_missing_program_is_named() {
        let err = Cmd::new("/nonexistent/prog").run().expect_err("missing");
        assert!(err.to_string().starts_with("starting `/nonexistent/prog`"), "{err}");
    }

    #[test]
    fn stdout_is_returned() {
        assert_eq!(Cmd::new("echo").arg("hi").run_text().expect("echo"), "hi\n");
    }

    #[test]
    fn a_spawned_child_dies_with_its_guard() {
        let mut child = Cmd::new("sleep").arg("100").spawn(None).expect("spawn");
        let pid = child.id();
        assert!(child.check_running().is_ok());
        drop(child);
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "child {pid} outlived its guard");
    }
}
