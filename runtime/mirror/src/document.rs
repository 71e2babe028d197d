//! The pair's configuration document: its volumes and workloads, the same on both nodes, `pair-config.json` in the state partition. Every change makes a new version whose
//! digest chains to the one before, so a node that comes back can tell whether its peer's
//! document descends from its own (adopt it), its own descends from the peer's (keep it), or
//! the two were changed apart (a conflict: an alarm, never a silent merge).

use std::path::Path;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use pairos_workload::spec::Workload;

use super::spec::{show_size, VolumeName};

pub const FILE: &str = "pair-config.json";
/// DRBD minors (and so ports, 7788 + minor) a pair uses at most.
pub const MAX_VOLUMES: u32 = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    pub name: VolumeName,
    /// Bytes, whole extents.
    pub size: u64,
    /// Its DRBD minor (`/dev/drbdN`), the same on both nodes; its port is 7788 + minor.
    pub minor: u32,
    /// The node that made it: the one whose side starts its first generation.
    pub origin: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairConfig {
    pub version: u64,
    pub volumes: Vec<Volume>,
    /// The workloads the primary runs, checked when they were added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workloads: Vec<Workload>,
    /// The console's settings (its password), the same on both nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console: Option<ConsoleSettings>,
    /// The digest of every version so far, oldest first (the last is this one's).
    pub lineage: Vec<String>,
}

/// What the console keeps in the pair's document, so that either node can serve it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSettings {
    /// The operator's password as an argon2id PHC string (`$argon2id$v=19$...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Where alarms go.
    #[serde(default)]
    pub alarms: AlarmDestinations,
    /// The operator's own certificate for the console, instead of the pair's derived one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<UploadedTls>,
}

/// A certificate chain (the server's first) and its private key, PEM, as the operator gave them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadedTls {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Where the pair's alarms are sent: mail, SNMP traps, webhooks (any, all or none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmDestinations {
    #[serde(default)]
    pub mail: Option<MailDestination>,
    #[serde(default)]
    pub snmp: Vec<SnmpDestination>,
    #[serde(default)]
    pub webhooks: Vec<WebhookDestination>,
}

/// An SMTP server (submission with STARTTLS and a login, or plain port 25 inside a site).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailDestination {
    pub server: String,
    #[serde(default = "submission_port")]
    pub port: u16,
    /// Upgrade to TLS with STARTTLS before anything is sent (and refuse a server that cannot).
    #[serde(default = "yes")]
    pub starttls: bool,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    /// A CA certificate (PEM) the server's certificate is checked against, besides the
    /// system's.
    #[serde(default)]
    pub ca_pem: Option<String>,
}

fn submission_port() -> u16 {
    587
}

fn yes() -> bool {
    true
}

/// An SNMP manager that receives v2c traps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnmpDestination {
    /// `HOST:PORT` (162 is the trap port).
    pub target: String,
    pub community: String,
}

/// An HTTP endpoint that receives each alarm as a JSON POST.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookDestination {
    pub url: String,
}

/// What to do with the peer's document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconciled {
    /// The same document.
    Same,
    /// The peer's is a later version of ours: adopt it.
    Adopt,
    /// Ours is a later version of the peer's: keep ours (the peer adopts it).
    Keep,
    /// Changed apart: neither descends from the other.
    Conflict,
}

impl PairConfig {
    pub fn load(dir: &Path) -> anyhow::Result<PairConfig> {
        let path = dir.join(FILE);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .with_context(|| format!("{}: expected {{\"version\", \"volumes\": [{{\"name\", \"size\", \"minor\"}}], \"workloads\": […], \"lineage\"}}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PairConfig::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        Ok(pairos_host::write_atomically(
            &dir.join(FILE),
            &serde_json::to_vec_pretty(self).expect("serialises"),
        )?)
    }

    pub fn volume(&self, name: &VolumeName) -> Option<&Volume> {
        self.volumes.iter().find(|v| &v.name == name)
    }

    /// This version's digest: of the one before, of the volumes, and of the workloads and the
    /// console's settings if there are any (so that the digests of older documents still hold).
    fn digest(&self) -> String {
        let parent = self.lineage.iter().rev().nth(1).map_or("", String::as_str);
        let volumes = serde_json::to_string(&self.volumes).expect("serialises");
        let mut text = format!("{parent}\n{}\n{volumes}", self.version);
        if !self.workloads.is_empty() {
            text.push('\n');
            text.push_str(&serde_json::to_string(&self.workloads).expect("serialises"));
        }
        if let Some(c) = &self.console {
            text.push_str("\nconsole\n");
            text.push_str(&serde_json::to_string(c).expect("serialises"));
        }
        pairos_image::digest::sha256_hex(text.as_bytes())
    }

    pub fn workload(&self, name: &str) -> Option<&Workload> {
        self.workloads.iter().find(|w| w.name == name)
    }

    /// Adds a workload (checked by the caller), or replaces the one of the same name when
    /// `replace` is set.
    pub fn add_workload(&mut self, workload: Workload, replace: bool) -> anyhow::Result<()> {
        match self.workloads.iter().position(|w| w.name == workload.name) {
            Some(_) if !replace => {
                bail!("workload {} exists already (--replace to change it)", workload.name)
            }
            Some(i) => self.workloads[i] = workload,
            None => self.workloads.push(workload),
        }
        self.next();
        Ok(())
    }

    pub fn remove_workload(&mut self, name: &str) -> anyhow::Result<Workload> {
        let i = self
            .workloads
            .iter()
            .position(|w| w.name == name)
            .with_context(|| format!("no workload {name}"))?;
        let w = self.workloads.remove(i);
        self.next();
        Ok(w)
    }

    /// Sets the console's settings (a new password).
    pub fn set_console(&mut self, console: ConsoleSettings) {
        self.console = Some(console);
        self.next();
    }

    /// Makes the next version after a change.
    fn next(&mut self) {
        self.version += 1;
        self.lineage.push(String::new());
        let d = self.digest();
        *self.lineage.last_mut().expect("pushed") = d;
    }

    pub fn add(&mut self, name: VolumeName, size: u64, origin: &str) -> anyhow::Result<&Volume> {
        if self.volume(&name).is_some() {
            bail!("volume {name} exists already");
        }
        let minor = (0..MAX_VOLUMES)
            .find(|m| self.volumes.iter().all(|v| v.minor != *m))
            .with_context(|| format!("the pair has {MAX_VOLUMES} volumes, the most it can have"))?;
        self.volumes.push(Volume { name, size, minor, origin: origin.to_owned() });
        self.next();
        Ok(self.volumes.last().expect("pushed"))
    }

    pub fn grow(&mut self, name: &VolumeName, size: u64) -> anyhow::Result<()> {
        let v =
            self.volumes.iter_mut().find(|v| &v.name == name).with_context(|| format!("no volume {name}"))?;
        if size <= v.size {
            bail!("volume {name} is {}; it can only grow (asked for {})", show_size(v.size), show_size(size));
        }
        v.size = size;
        self.next();
        Ok(())
    }

    pub fn remove(&mut self, name: &VolumeName) -> anyhow::Result<Volume> {
        if let Some(w) = self.workloads.iter().find(|w| w.volumes.iter().any(|m| m.volume == name.as_str())) {
            bail!("volume {name} is mounted by workload {}: remove the workload first", w.name);
        }
        let i =
            self.volumes.iter().position(|v| &v.name == name).with_context(|| format!("no volume {name}"))?;
        let v = self.volumes.remove(i);
        self.next();
        Ok(v)
    }

    /// Whether the document is what its lineage says (not edited by hand, not damaged).
    pub fn check(&self) -> anyhow::Result<()> {
        if self.version as usize != self.lineage.len() {
            bail!(
                "version {} with {} lineage entries: expected one per version",
                self.version,
                self.lineage.len()
            );
        }
        if self.version > 0 && self.lineage.last() != Some(&self.digest()) {
            bail!(
                "version {}: its digest does not match its volumes and workloads (edited by hand?)",
                self.version
            );
        }
        let mut minors: Vec<u32> = self.volumes.iter().map(|v| v.minor).collect();
        minors.sort_unstable();
        minors.dedup();
        if minors.len() != self.volumes.len() {
            bail!("two volumes share a DRBD minor");
        }
        Ok(())
    }

    /// What to do with `theirs`, the peer's document.
    pub fn reconcile(&self, theirs: &PairConfig) -> Reconciled {
        if self.lineage == theirs.lineage {
            return Reconciled::Same;
        }
        let descends = |later: &PairConfig, earlier: &PairConfig| {
            later.lineage.len() > earlier.lineage.len() && later.lineage.starts_with(&earlier.lineage)
        };
        if descends(theirs, self) {
            Reconciled::Adopt
        } else if descends(self, theirs) {
            Reconciled::Keep
        } else {
            Reconciled::Conflict
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> VolumeName {
        s.parse().expect("a name")
    }

    #[test]
    fn changes_make_versions_and_say_what_is_wrong() {
        let mut c = PairConfig::default();
        assert_eq!(c.add(name("data"), 256 << 20, "node-1").expect("added").minor, 0);
        assert_eq!(c.add(name("raw"), 256 << 20, "node-1").expect("added").minor, 1);
        assert!(c.add(name("data"), 1 << 30, "node-1").expect_err("twice").to_string().contains("exists"));
        assert!(c.grow(&name("data"), 128 << 20).expect_err("shrink").to_string().contains("only grow"));
        c.grow(&name("data"), 512 << 20).expect("grows");
        c.remove(&name("data")).expect("removed");
        assert_eq!(c.add(name("db"), 64 << 20, "node-1").expect("added").minor, 0, "the free minor again");
        assert_eq!(c.version, 5);
        c.check().expect("consistent");
        let mut edited = c.clone();
        edited.volumes[0].size *= 2;
        assert!(edited.check().expect_err("edited").to_string().contains("digest"));
    }

    #[test]
    fn workloads_are_versioned_with_the_volumes_and_keep_theirs_mounted() {
        let mut c = PairConfig::default();
        c.add(name("db"), 256 << 20, "node-1").expect("added");
        let before = c.lineage.clone();
        let w = Workload::from_toml(
            "name = \"pg\"\ncommand = [\"/bin/true\"]\nvolumes = [{ volume = \"db\", mount = \"/srv/db\" }]\nhealth = { tcp = 5432 }",
            "pg.toml",
        )
        .expect("parses");
        c.add_workload(w.clone(), false).expect("added");
        assert!(c.add_workload(w.clone(), false).expect_err("twice").to_string().contains("--replace"));
        let mut changed = w.clone();
        changed.order = 5;
        c.add_workload(changed, true).expect("replaced");
        assert_eq!((c.version, c.workload("pg").map(|w| w.order)), (3, Some(5)));
        assert!(c.lineage.starts_with(&before), "a later version of the same history");
        c.check().expect("consistent");
        let e = c.remove(&name("db")).expect_err("mounted").to_string();
        assert!(e.contains("workload pg"), "{e}");
        let mut edited = c.clone();
        edited.workloads[0].order = 1;
        assert!(edited.check().is_err(), "a workload edited by hand breaks the digest");
        c.remove_workload("pg").expect("removed");
        c.remove(&name("db")).expect("free now");
        c.check().expect("consistent");
    }

    #[test]
    fn the_later_version_wins_and_a_fork_is_a_conflict() {
        let mut a = PairConfig::default();
        a.add(name("data"), 256 << 20, "node-1").expect("added");
        let b = a.clone();
        assert_eq!(a.reconcile(&b), Reconciled::Same);
        a.add(name("raw"), 64 << 20, "node-1").expect("added");
        assert_eq!(b.reconcile(&a), Reconciled::Adopt);
        assert_eq!(a.reconcile(&b), Reconciled::Keep);
        // Both change version 1 apart: the same version number, different histories.
        let mut c = b.clone();
        c.add(name("logs"), 64 << 20, "node-1").expect("added");
        assert_eq!(a.version, c.version);
        assert_eq!(a.reconcile(&c), Reconciled::Conflict);
        c.add(name("more"), 64 << 20, "node-1").expect("added");
        assert_eq!(a.reconcile(&c), Reconciled::Conflict, "a later version of another history");
    }

    #[test]
    fn a_saved_document_loads_and_a_damaged_one_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(PairConfig::load(dir.path()).expect("none yet"), PairConfig::default());
        let mut c = PairConfig::default();
        c.add(name("data"), 256 << 20, "node-1").expect("added");
        c.save(dir.path()).expect("saved");
        assert_eq!(PairConfig::load(dir.path()).expect("loads"), c);
        std::fs::write(
            dir.path().join(FILE),
            "{\"version\": 1, \"volumes\": [], \"lineage\": [], \"extra\": 1}",
        )
        .expect("written");
        let e = format!("{:#}", PairConfig::load(dir.path()).expect_err("unknown field"));
        assert!(e.contains("extra"), "{e}");
    }
}
