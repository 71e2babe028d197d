//! A workload's process: started as its user, with its environment only, in a process group
//! of its own (so that stopping it reaches everything it started), its output in its log, and
//! under its cgroup v2 limits when it has any. Stopped with its stop signal (SIGTERM unless it
//! says otherwise) to the group, then SIGKILL after the stop timeout.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Pid, User};
use pairos_workload::spec::{Limits, Workload};

use super::logs::{pump, LogPolicy, LogWriter};

/// util-linux's: sets the user, its group and supplementary groups, then execs.
const SETPRIV: &str = "/usr/bin/setpriv";

/// The programs a workload finds without a path.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A started workload.
#[derive(Debug)]
pub struct Running {
    pub name: String,
    child: Child,
    pub started: Instant,
    /// What asks it to stop (its definition's `stop_signal`).
    stop_signal: Signal,
}

/// Where workloads' cgroups are made (`<root>/pairos/<name>`), when limits are asked for.
#[derive(Debug, Clone)]
pub struct CgroupRoot(pub PathBuf);

impl CgroupRoot {
    /// The node's cgroup v2 hierarchy, if it is mounted there.
    pub fn system() -> Option<CgroupRoot> {
        let root = Path::new("/sys/fs/cgroup");
        root.join("cgroup.controllers").exists().then(|| CgroupRoot(root.to_owned()))
    }

    /// Makes the workload's cgroup with its limits; returns its `cgroup.procs`.
    fn prepare(&self, name: &str, limits: &Limits) -> anyhow::Result<PathBuf> {
        let parent = self.0.join("pairos");
        std::fs::create_dir_all(&parent).with_context(|| format!("making {}", parent.display()))?;
        let wanted = [(limits.memory_mib.is_some(), "memory"), (limits.cpu_percent.is_some(), "cpu")];
        for (_, controller) in wanted.iter().filter(|(w, _)| *w) {
            for dir in [&self.0, &parent] {
                let control = dir.join("cgroup.subtree_control");
                std::fs::write(&control, format!("+{controller}")).with_context(|| {
                    format!("enabling the {controller} controller in {}", control.display())
                })?;
            }
        }
        let dir = parent.join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("making {}", dir.display()))?;
        if let Some(mib) = limits.memory_mib {
            std::fs::write(dir.join("memory.max"), (mib << 20).to_string()).context("setting memory.max")?;
        }
        if let Some(percent) = limits.cpu_percent {
            // Quota per 100 ms period.
            std::fs::write(dir.join("cpu.max"), format!("{} 100000", u64::from(percent) * 1000))
                .context("setting cpu.max")?;
        }
        Ok(dir.join("cgroup.procs"))
    }
}

/// Starts the workload. `extra` is added to its environment (e.g. the pair's address).
pub fn start(
    w: &Workload,
    logs: &LogPolicy,
    cgroups: Option<&CgroupRoot>,
    extra: &[(&str, String)],
) -> anyhow::Result<Running> {
    let user = User::from_name(&w.user)
        .with_context(|| format!("looking up user {}", w.user))?
        .with_context(|| format!("workload {}: no user {} on this node", w.name, w.user))?;
    let (program, args) = w.command.split_first().context("an empty command")?;
    let stop_signal: Signal = w.stop_signal.parse().map_err(|_| {
        anyhow::anyhow!("workload {}: stop_signal {:?} is not a signal", w.name, w.stop_signal)
    })?;
    let procs = match (w.limits.memory_mib.is_some() || w.limits.cpu_percent.is_some(), cgroups) {
        (false, _) => None,
        (true, Some(root)) => Some(root.prepare(&w.name, &w.limits)?),
        (true, None) => bail!("workload {}: it has limits, and this node has no cgroup v2 hierarchy", w.name),
    };
    // Without unsafe code between fork and exec, the user and its groups are set by
    // util-linux's setpriv, and the cgroup is joined by a shell that then execs the rest.
    let mut argv: Vec<String> = Vec::new();
    if let Some(procs) = &procs {
        argv.extend(["/bin/sh".into(), "-c".into(), "echo $$ > \"$0\" && exec \"$@\"".into()]);
        argv.push(procs.display().to_string());
    }
    if !user.uid.is_root() {
        argv.extend([
            SETPRIV.into(),
            "--reuid".into(),
            user.uid.to_string(),
            "--regid".into(),
            user.gid.to_string(),
        ]);
        argv.extend(["--init-groups".into(), "--".into()]);
    }
    argv.push(program.clone());
    argv.extend(args.iter().cloned());
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .env("PATH", PATH)
        .env("HOME", &user.dir)
        .env("USER", &w.user)
        .env("LOGNAME", &w.user)
        .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
        .envs(&w.environment)
        .current_dir(if user.dir.is_dir() { user.dir.as_path() } else { Path::new("/") })
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let writer = Arc::new(Mutex::new(
        LogWriter::open(logs, &w.name)
            .with_context(|| format!("opening {}", logs.file(&w.name).display()))?,
    ));
    let _ = writer.lock().expect("not poisoned").line(&format!("pairos: starting {}", w.command.join(" ")));
    let mut child = cmd.spawn().with_context(|| format!("workload {}: starting {program}", w.name))?;
    let out = child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
    let err = child.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
    for stream in [out, err].into_iter().flatten() {
        let writer = writer.clone();
        std::thread::spawn(move || pump(stream, writer));
    }
    Ok(Running { name: w.name.clone(), child, started: Instant::now(), stop_signal })
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it exited, and how.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Stops it: SIGTERM to its process group, SIGKILL after `timeout`. Returns how it ended
    /// and whether it had to be killed. Whatever its group still holds is killed too, and waited
    /// for (briefly), so that its files are closed before its volumes are unmounted.
    pub fn stop(mut self, timeout: Duration) -> (Option<ExitStatus>, bool) {
        let group = Pid::from_raw(self.child.id() as i32);
        if let Some(status) = self.exited() {
            kill_group(group); // anything it left behind
            return (Some(status), false);
        }
        let _ = killpg(group, self.stop_signal);
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(status) = self.exited() {
                kill_group(group);
                return (Some(status), false);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        kill_group(group);
        (self.child.wait().ok(), true)
    }
}

/// SIGKILL to a process group, then a wait of at most 2 s until none of it is left (a killed
/// process dies, and is reaped, a moment later).
fn kill_group(group: Pid) {
    let _ = killpg(group, Signal::SIGKILL);
    let start = Instant::now();
    while killpg(group, None).is_ok() && start.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(command: &[&str]) -> Workload {
        let toml = format!(
            "name = \"t\"\ncommand = {:?}\nuser = \"nobody\"\nenvironment = {{ GREETING = \"hello\" }}\nhealth = {{ tcp = 1 }}",
            command
        );
        Workload::from_toml(&toml, "t").expect("parses")
    }

    #[test]
    fn a_workload_runs_as_its_user_with_its_environment_and_its_output_in_its_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = LogPolicy { dir: dir.path().to_owned(), max_bytes: 1 << 20, keep: 1 };
        let w = workload(&[
            "/bin/sh",
            "-c",
            "echo $GREETING $USER $(id -u) $PAIR; echo groups $(id -G); env | wc -l; echo oops >&2",
        ]);
        let mut r = start(&w, &logs, None, &[("PAIR", "192.0.2.1".into())]).expect("starts");
        let start = Instant::now();
        while r.exited().is_none() {
            assert!(start.elapsed() < Duration::from_secs(10), "it ends");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200)); // the log pumps finish
        let log = std::fs::read_to_string(logs.file("t")).expect("log");
        let nobody = User::from_name("nobody").expect("lookup").expect("nobody").uid;
        assert!(log.contains(&format!("hello nobody {nobody} 192.0.2.1")), "{log}");
        assert!(log.contains("oops"), "stderr too: {log}");
        let nogroup = User::from_name("nobody").expect("lookup").expect("nobody").gid;
        assert!(log.contains(&format!("groups {nogroup}\n")), "only its own group, none of root's: {log}");
        // Only what it was given: PATH, HOME, USER, LOGNAME, PAIR, GREETING (and the shell's PWD).
        let count: usize = log.lines().find_map(|l| l.trim().parse().ok()).expect("a count");
        assert!(count <= 8, "a clean environment: {log}");
    }

    #[test]
    fn stopping_reaches_the_whole_group_and_kills_after_the_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = LogPolicy { dir: dir.path().to_owned(), max_bytes: 1 << 20, keep: 1 };
        // A polite one ends on SIGTERM, with its child.
        let polite =
            start(&workload(&["/bin/sh", "-c", "sleep 300 & wait"]), &logs, None, &[]).expect("starts");
        let group = polite.pid();
        let (status, killed) = polite.stop(Duration::from_secs(10));
        assert!(status.is_some() && !killed);
        assert!(
            nix::sys::signal::killpg(Pid::from_raw(group as i32), None).is_err(),
            "nothing of its group is left"
        );
        // A stubborn one ignores SIGTERM and is killed after the timeout.
        let stubborn = start(
            &workload(&["/bin/sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"]),
            &logs,
            None,
            &[],
        )
        .expect("starts");
        std::thread::sleep(Duration::from_millis(200));
        let t = Instant::now();
        let (_, killed) = stubborn.stop(Duration::from_millis(500));
        assert!(killed && t.elapsed() >= Duration::from_millis(500));
        // Limits without a cgroup hierarchy are refused before anything starts.
        let mut limited = workload(&["/bin/true"]);
        limited.limits.memory_mib = Some(64);
        let e = start(&limited, &logs, None, &[]).expect_err("no cgroups").to_string();
        assert!(e.contains("no cgroup v2 hierarchy"), "{e}");
    }
}
