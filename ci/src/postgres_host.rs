//! A throwaway PostgreSQL server on the host, for the write checker's own tests: made with
//! Debian's `initdb` in a folder of its own, listening on 127.0.0.1 at a free port, with the
//! checker's user, password and database. It can be crashed (every process killed at once,
//! as a power cut does to the server's memory) and started again. Stopped on drop.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pairos_host::Cmd;

use crate::error::io;
use crate::LabError;

/// A running throwaway server.
#[derive(Debug)]
pub struct PgHost {
    bin: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    port: u16,
}

fn failed(what: impl Into<String>) -> LabError {
    LabError::Setup(what.into())
}

/// The newest installed server's programs (Debian: /usr/lib/postgresql/VERSION/bin).
fn bin_dir() -> Result<PathBuf, LabError> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| failed(format!("/usr/lib/postgresql: {e} (ci/setup installs postgresql)")))?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| failed("no PostgreSQL server under /usr/lib/postgresql"))
}

/// As the `postgres` user (the server refuses to run as root).
fn as_postgres(program: &Path) -> Cmd {
    Cmd::new("runuser").args(["-u", "postgres", "--"]).arg(program)
}

impl PgHost {
    /// Makes a cluster in `dir` (which it hands to the `postgres` user) with `settings` added
    /// to postgresql.conf, starts it, and makes the checker's role, database and table.
    pub fn start(dir: &Path, settings: &[(&str, &str)]) -> Result<Self, LabError> {
        let bin = bin_dir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| failed(format!("finding a free port: {e}")))?
            .port();
        let (data, socket_dir) = (dir.join("data"), dir.join("socket"));
        std::fs::create_dir_all(&socket_dir).map_err(io(&socket_dir))?;
        Cmd::new("chown").args(["-R", "postgres:postgres"]).arg(dir).run()?;
        as_postgres(&bin.join("initdb"))
            .args(["--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "-D"])
            .arg(&data)
            .run()?;
        let mut conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n",
            socket_dir.display()
        );
        for (key, value) in settings {
            conf.push_str(&format!("{key} = {value}\n"));
        }
        let conf_path = data.join("postgresql.conf");
        let old = std::fs::read_to_string(&conf_path).map_err(io(&conf_path))?;
        std::fs::write(&conf_path, old + &conf).map_err(io(&conf_path))?;
        let server = Self { bin, data, socket_dir, port };
        server.start_again()?;
        server.psql(
            "postgres",
            &["CREATE ROLE checker LOGIN PASSWORD 'checker'", "CREATE DATABASE checker OWNER checker"],
        )?;
        server.psql("checker", &[crate::write_checker::TABLE, "ALTER TABLE rows OWNER TO checker"])?;
        Ok(server)
    }

    /// The checker's connection settings for this server.
    pub fn target(&self) -> String {
        format!("host=127.0.0.1 port={} user=checker password=checker dbname=checker", self.port)
    }

    /// Runs each statement on its own (CREATE DATABASE cannot share a transaction).
    fn psql(&self, db: &str, statements: &[&str]) -> Result<(), LabError> {
        as_postgres(&self.bin.join("psql"))
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-h"])
            .arg(&self.socket_dir)
            .args(["-p", &self.port.to_string(), "-d", db])
            .args(statements.iter().flat_map(|s| ["-c", s]))
            .run()?;
        Ok(())
    }

    /// Starts the server (after a crash: it replays its write-ahead log first).
    pub fn start_again(&self) -> Result<(), LabError> {
        as_postgres(&self.bin.join("pg_ctl"))
            .args(["-w", "-t", "60", "-D"])
            .arg(&self.data)
            .arg("-l")
            .arg(self.data.join("server.log"))
            .arg("start")
            .run()?;
        Ok(())
    }

    /// Kills every process of the server at once, with SIGKILL: what it held in memory and had
    /// not written is gone. Returns when none is left.
    pub fn crash(&self) -> Result<(), LabError> {
        let pid_file = self.data.join("postmaster.pid");
        let text = std::fs::read_to_string(&pid_file).map_err(io(&pid_file))?;
        let postmaster: i32 = text.lines().next().and_then(|l| l.trim().parse().ok()).ok_or_else(|| {
            failed(format!("{}: expected a process id on its first line", pid_file.display()))
        })?;
        let children = Cmd::new("pgrep").args(["-P", &postmaster.to_string()]).run_text().unwrap_or_default();
        let pids: Vec<i32> = std::iter::once(postmaster)
            .chain(children.lines().filter_map(|l| l.trim().parse().ok()))
            .collect();
        for &pid in &pids {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        }
        let start = Instant::now();
        while pids.iter().any(|&pid| Path::new(&format!("/proc/{pid}")).exists()) {
            if start.elapsed() > Duration::from_secs(10) {
                return Err(failed("the killed PostgreSQL processes did not go away in 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for PgHost {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .args(["-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .run();
    }
}
