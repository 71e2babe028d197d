//! A workload's definition, as an operator writes it (TOML) and as the pair's document holds
//! it (JSON). Unknown fields are refused. [`Workload::check`] looks at everything that can be
//! known without running it: names, paths, that its volumes exist, that its program and user
//! are there on this node, that exactly one health check is given.
//! [`EXAMPLE`] is a definition with every field explained (`pairos workload example`).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A definition with every field explained.
pub const EXAMPLE: &str = r#"# A pairos workload (pairos workload add FILE, on the primary).
name = "postgres"                 # 1 to 32 of a-z, 0-9 and -
# The program (absolute: in the image, or under one of the mounts below) and its arguments.
command = ["/usr/lib/postgresql/15/bin/postgres", "-D", "/srv/db/data"]
user = "postgres"                 # default root
environment = { LANG = "C.UTF-8" }
order = 10                        # lower starts first and stops last; default 0
address = true                    # starts after the pair's address is up; default false
stop_signal = "SIGINT"            # asks it to stop (PostgreSQL's fast shutdown); default SIGTERM
stop_timeout_s = 30               # then SIGKILL after this; default 30
# The pair's volumes it needs (pairos volume create), mounted before it starts.
volumes = [{ volume = "db", mount = "/srv/db" }]
# Exactly one of tcp = PORT, http = "http://…" (2xx), command = ["/abs/path", …] (exit 0).
health = { tcp = 5432, interval_s = 2, failures = 3 }
# Restart here up to `times` within `within_minutes`, then move the pair to a healthy peer.
restart = { times = 3, within_minutes = 10 }
# cgroup v2 limits (memory.max, cpu.max); none by default.
limits = { memory_mib = 1024, cpu_percent = 150 }
"#;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    pub name: String,
    /// The program (an absolute path, in the image or under one of its mounts) and its
    /// arguments.
    pub command: Vec<String>,
    /// The user it runs as.
    #[serde(default = "root")]
    pub user: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Mount>,
    /// Whether it needs the pair's address (it starts after the address is up).
    #[serde(default)]
    pub address: bool,
    /// Lower starts first and stops last.
    #[serde(default)]
    pub order: i32,
    pub health: Health,
    #[serde(default)]
    pub restart: Restart,
    /// The signal that asks it to stop (to its process group); SIGKILL follows after
    /// `stop_timeout_s`.
    #[serde(default = "default_stop_signal", skip_serializing_if = "is_default_stop_signal")]
    pub stop_signal: String,
    #[serde(default = "default_stop_timeout")]
    pub stop_timeout_s: u32,
    #[serde(default, skip_serializing_if = "Limits::is_none")]
    pub limits: Limits,
}

fn root() -> String {
    "root".into()
}

fn default_stop_timeout() -> u32 {
    30
}

/// The signals a workload may be asked to stop with.
pub const STOP_SIGNALS: [&str; 6] = ["SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2"];

fn default_stop_signal() -> String {
    STOP_SIGNALS[0].into()
}

fn is_default_stop_signal(s: &str) -> bool {
    s == STOP_SIGNALS[0]
}

/// A mirrored volume mounted for the workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    pub volume: String,
    pub mount: PathBuf,
}

/// How the pair knows the workload serves: exactly one of `tcp` (a port on the pair's address
/// that accepts a connection), `http` (a URL that answers 2xx), `command` (exits 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default = "default_interval")]
    pub interval_s: u32,
    /// Failed checks in a row that make it unhealthy.
    #[serde(default = "default_failures")]
    pub failures: u32,
}

fn default_interval() -> u32 {
    5
}

fn default_failures() -> u32 {
    3
}

/// Local recovery: restart here up to `times` within `within_minutes`; past that the pair
/// moves to the peer if the peer is healthy and up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restart {
    pub times: u32,
    pub within_minutes: u32,
}

impl Default for Restart {
    fn default() -> Self {
        Restart { times: 3, within_minutes: 10 }
    }
}

/// cgroup v2 limits (`memory.max`, `cpu.max`); none by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// Percent of one CPU (150 = one and a half).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<u32>,
}

impl Limits {
    fn is_none(&self) -> bool {
        self.memory_mib.is_none() && self.cpu_percent.is_none()
    }
}

/// What the check needs to know about the node and the pair.
pub trait Surroundings {
    /// Whether the pair has this volume.
    fn has_volume(&self, name: &str) -> bool;
    /// Whether this file exists and is executable on this node.
    fn is_program(&self, path: &Path) -> bool;
    /// Whether this user exists on this node.
    fn has_user(&self, name: &str) -> bool;
}

/// Where workloads' volumes are mounted (a tmpfs on the node: its root is read-only).
pub const MOUNT_ROOT: &str = "/srv";

impl Workload {
    /// Reads a definition from TOML; `origin` names it in errors (a file name).
    pub fn from_toml(text: &str, origin: &str) -> Result<Workload, String> {
        toml::from_str(text).map_err(|e| format!("{origin}: {}", e.to_string().trim_end()))
    }

    /// Everything wrong with the definition, each naming the field and what was expected
    /// (empty: it can be taken).
    pub fn check(&self, around: &dyn Surroundings) -> Vec<String> {
        let mut wrong = Vec::new();
        let ok_name = (1..=32).contains(&self.name.len())
            && self.name.starts_with(|c: char| c.is_ascii_lowercase())
            && self.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok_name {
            wrong.push(format!(
                "name {:?}: expected 1 to 32 of a-z, 0-9 and -, starting with a letter",
                self.name
            ));
        }
        match self.command.first() {
            None => wrong.push("command: expected the program's absolute path, then its arguments".into()),
            Some(program) => {
                let path = Path::new(program);
                let on_a_volume = self.volumes.iter().any(|m| path.starts_with(&m.mount));
                if !path.is_absolute() {
                    wrong.push(format!("command {program:?}: expected an absolute path"));
                } else if !on_a_volume && !around.is_program(path) {
                    wrong.push(format!(
                        "command {program:?}: no such program on this node (a program in the image, or under one of the workload's mounts)"
                    ));
                }
            }
        }
        if !around.has_user(&self.user) {
            wrong.push(format!("user {:?}: no such user on this node", self.user));
        }
        for key in self.environment.keys() {
            let ok = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                wrong.push(format!("environment {key:?}: expected a name of A-Z, a-z, 0-9 and _"));
            }
        }
        let mut mounts: Vec<&Path> = Vec::new();
        for m in &self.volumes {
            if !around.has_volume(&m.volume) {
                wrong.push(format!(
                    "volumes: {:?}: the pair has no such volume (make it with `pairos volume create`)",
                    m.volume
                ));
            }
            let p = m.mount.as_path();
            let plain = p.components().all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
            if !p.starts_with(MOUNT_ROOT) || p == Path::new(MOUNT_ROOT) || !plain {
                wrong.push(format!(
                    "volumes: mount {}: expected a folder under {MOUNT_ROOT}/ (the node's root is read-only; the pair mounts volumes there)",
                    p.display()
                ));
            }
            if mounts.iter().any(|o| o.starts_with(p) || p.starts_with(o)) {
                wrong.push(format!("volumes: mount {}: overlaps another of its mounts", p.display()));
            }
            mounts.push(p);
        }
        let h = &self.health;
        let given = [h.tcp.is_some(), h.http.is_some(), h.command.is_some()].iter().filter(|g| **g).count();
        if given != 1 {
            wrong.push(format!("health: expected exactly one of tcp, http or command (got {given})"));
        }
        if h.tcp == Some(0) {
            wrong.push("health.tcp: expected a port from 1 to 65535".into());
        }
        if let Some(url) = &h.http {
            if !url.starts_with("http://") {
                wrong.push(format!("health.http {url:?}: expected an http:// URL"));
            }
        }
        if let Some(c) = &h.command {
            if c.first().is_none_or(|p| !Path::new(p).is_absolute()) {
                wrong.push("health.command: expected the program's absolute path, then its arguments".into());
            }
        }
        if h.interval_s == 0 || h.failures == 0 {
            wrong.push("health: interval_s and failures must be at least 1".into());
        }
        if self.restart.within_minutes == 0 {
            wrong.push("restart.within_minutes: expected at least 1".into());
        }
        if !STOP_SIGNALS.contains(&self.stop_signal.as_str()) {
            wrong.push(format!(
                "stop_signal {:?}: expected one of {}",
                self.stop_signal,
                STOP_SIGNALS.join(", ")
            ));
        }
        if self.stop_timeout_s == 0 || self.stop_timeout_s > 3600 {
            wrong.push(format!("stop_timeout_s {}: expected 1 to 3600", self.stop_timeout_s));
        }
        if self.limits.memory_mib.is_some_and(|m| m < 16) {
            wrong.push("limits.memory_mib: expected at least 16".into());
        }
        if self.limits.cpu_percent == Some(0) {
            wrong.push("limits.cpu_percent: expected at least 1".into());
        }
        wrong
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Node;
    impl Surroundings for Node {
        fn has_volume(&self, name: &str) -> bool {
            name == "db"
        }
        fn is_program(&self, path: &Path) -> bool {
            path == Path::new("/usr/bin/postgres")
        }
        fn has_user(&self, name: &str) -> bool {
            ["root", "postgres"].contains(&name)
        }
    }

    const GOOD: &str = r#"
        name = "postgres"
        command = ["/usr/bin/postgres", "-D", "/srv/db/data"]
        user = "postgres"
        address = true
        volumes = [{ volume = "db", mount = "/srv/db" }]
        health = { tcp = 5432 }
    "#;

    #[test]
    fn a_good_definition_is_taken_with_its_defaults() {
        let w = Workload::from_toml(GOOD, "pg.toml").expect("parses");
        assert_eq!(w.check(&Node), Vec::<String>::new());
        assert_eq!((w.restart.times, w.restart.within_minutes, w.stop_timeout_s), (3, 10, 30));
        assert_eq!((w.health.interval_s, w.health.failures), (5, 3));
        // The document holds it as JSON, and gets back the same.
        let json = serde_json::to_string(&w).expect("serialises");
        assert_eq!(serde_json::from_str::<Workload>(&json).expect("reads"), w);
    }

    #[test]
    fn the_example_is_a_good_definition() {
        let w = Workload::from_toml(EXAMPLE, "example").expect("parses");
        let node = Node;
        let wrong: Vec<String> =
            w.check(&node).into_iter().filter(|e| !e.contains("no such program")).collect();
        assert_eq!(wrong, Vec::<String>::new());
        assert_eq!((w.order, w.limits.memory_mib, w.health.interval_s), (10, Some(1024), 2));
    }

    #[test]
    fn every_mistake_is_named_with_what_was_expected() {
        let e =
            Workload::from_toml(&format!("{GOOD}\nreplicas = 2\n"), "pg.toml").expect_err("unknown field");
        assert!(e.contains("pg.toml") && e.contains("replicas"), "{e}");
        let bad = GOOD
            .replace("\"postgres\"\n        command", "\"Postgres\"\n        command")
            .replace("/usr/bin/postgres", "/usr/bin/postgresql")
            .replace(
                "user = \"postgres\"",
                "user = \"pg\"\n        environment = { \"A-B\" = \"1\" }\n        stop_timeout_s = 0\n        \
                 stop_signal = \"SIGSTOP\"",
            )
            .replace(
                "{ volume = \"db\", mount = \"/srv/db\" }",
                "{ volume = \"logs\", mount = \"/etc/pg\" }, { volume = \"db\", mount = \"/etc\" }",
            )
            .replace("{ tcp = 5432 }", "{ tcp = 5432, http = \"https://x\" }");
        let w = Workload::from_toml(&bad, "pg.toml").expect("parses");
        let wrong = w.check(&Node).join("\n");
        for expected in [
            "name \"Postgres\"",
            "command \"/usr/bin/postgresql\": no such program",
            "user \"pg\": no such user",
            "environment \"A-B\"",
            "\"logs\": the pair has no such volume",
            "mount /etc/pg: expected a folder under /srv/",
            "overlaps another",
            "exactly one of tcp, http or command (got 2)",
            "health.http \"https://x\"",
            "stop_timeout_s 0",
            "stop_signal \"SIGSTOP\": expected one of SIGTERM, SIGINT",
        ] {
            assert!(wrong.contains(expected), "{expected:?} missing from:\n{wrong}");
        }
        // A program on one of its own volumes cannot be seen before the volume is mounted.
        let on_volume = GOOD.replace("/usr/bin/postgres\"", "/srv/db/bin/server\"");
        assert_eq!(Workload::from_toml(&on_volume, "x").expect("parses").check(&Node), Vec::<String>::new());
    }
}
