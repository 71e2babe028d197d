//! Network namespaces as guards.

use pairos_host::Cmd;

use crate::LabError;

/// A named network namespace, deleted (with every process still in it) on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `name`, first clearing a namespace of that name left by an earlier run.
    pub fn create(name: &str) -> Result<Self, LabError> {
        if name.is_empty() || name.len() > 200 || name.contains('/') {
            return Err(LabError::Setup(format!("bad netns name {name:?}")));
        }
        remove(name);
        Cmd::new("ip").args(["netns", "add", name]).run()?;
        let ns = Netns { name: name.to_owned() };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// A guard for `name`, which may or may not exist: dropping it deletes it if it does.
    pub fn adopt(name: &str) -> Self {
        Netns { name: name.to_owned() }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip ARGS` inside the namespace.
    pub fn ip(&self, args: &[&str]) -> Result<String, LabError> {
        Ok(Cmd::new("ip").args(["-n", &self.name]).args(args).run_text()?)
    }

    /// A command that runs `program` inside the namespace.
    pub fn cmd(&self, program: &str) -> Cmd {
        Cmd::new("ip").args(["netns", "exec", &self.name, program])
    }
}

/// Kills what runs in `name` and deletes it; quiet when there is nothing to clear.
fn remove(name: &str) {
    let exists = Cmd::new("ip").args(["netns", "pids", name]).run_text();
    let Ok(pids) = exists else { return };
    for pid in pids.split_whitespace() {
        let _ = Cmd::new("kill").args(["-9", pid]).run();
    }
    if let Err(e) = Cmd::new("ip").args(["netns", "del", name]).run() {
        tracing::warn!(netns = name, error = %e, "could not delete network namespace");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        remove(&self.name);
    }
}

/// Forwards TCP connections from a port on the host's loopback to `port` on the namespace's
/// loopback (a program that listens only there, such as chromedriver), for as long as the
/// process lives. Each connection's thread enters the namespace before it connects.
pub fn forward_into(ns: &str, port: u16) -> Result<u16, LabError> {
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").map_err(crate::error::io("a loopback listener"))?;
    let local = listener.local_addr().map_err(crate::error::io("a loopback listener"))?.port();
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let path = path.clone();
            std::thread::spawn(move || {
                let inside = std::fs::File::open(&path)
                    .ok()
                    .and_then(|f| nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).ok())
                    .and_then(|()| TcpStream::connect(("127.0.0.1", port)).ok());
                let Some(inside) = inside else { return };
                let (Ok(mut a_read), Ok(mut b_write)) = (conn.try_clone(), inside.try_clone()) else {
                    return;
                };
                let (mut b_read, mut a_write) = (inside, conn);
                let up = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut a_read, &mut b_write);
                    let _ = b_write.shutdown(std::net::Shutdown::Write);
                });
                let _ = std::io::copy(&mut b_read, &mut a_write);
                let _ = a_write.shutdown(std::net::Shutdown::Write);
                let _ = up.join();
            });
        }
    });
    Ok(local)
}
