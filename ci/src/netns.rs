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
