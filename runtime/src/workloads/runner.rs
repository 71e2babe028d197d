//! The workload runner, a thread of the pair daemon. While the daemon acts as primary and the
//! pair's document has workloads, it takes the role step by step ([`super::sequence`]), then
//! watches each workload: an exit, or its health check failing `failures` times in a row, is
//! a failure, and the restart budget decides: restart here, move the pair to the peer, or
//! mark it failed with an alarm. When the daemon stops acting, it gives the role up backwards.
//! A pair without workloads is left entirely to the daemon and the volume manager.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use pairos_mirror::document::PairConfig;
use pairos_mirror::drbd::Drbd;
use pairos_recovery::trust::PairKey;
use pairos_workload::budget::{Budget, Decision, Peer};
use pairos_workload::spec::{Workload, MOUNT_ROOT};
use serde::{Deserialize, Serialize};

use super::logs::LogPolicy;
use super::process::{CgroupRoot, Running};
use super::sequence::{self, Step, StopStep};
use super::{filesystem, health};

/// How long a started workload may take to pass its first health check.
const START_GRACE: Duration = Duration::from_secs(120);
const TICK: Duration = Duration::from_millis(250);
/// How long promoting a volume is retried (DRBD refuses until the peer is known off or
/// outdated).
const PROMOTE_WAIT: Duration = Duration::from_secs(60);
/// The view `pairos workload list` reads.
pub const VIEW_FILE: &str = "workloads.json";

#[derive(Debug, Clone)]
pub struct Setup {
    pub state_dir: PathBuf,
    pub run_dir: PathBuf,
    pub drbd_conf: PathBuf,
    /// The pair's address (health checks go to it; workloads get it as PAIROS_ADDRESS).
    pub address: Option<IpAddr>,
    pub logs: LogPolicy,
    /// The peer's private-link address and the pair key: a workload that spent its restarts
    /// here asks whether it spent them on the peer too (its runner's view, tagged).
    pub peer: Option<(Ipv4Addr, PairKey)>,
}

/// What the runner's view is tagged for, when the peer serves it.
const VIEW_TAG_PURPOSE: &str = "pairos workloads view";

/// The view's bytes and their tag under `key` (hex), as the image service serves them.
pub fn sign_view(key: &PairKey, body: &[u8]) -> String {
    crate::pair::tagged::tag(key, VIEW_TAG_PURPOSE, body)
}

/// The peer's view from its bytes and tag, if the tag checks and it reads.
pub fn believe_view(key: &PairKey, body: &[u8], tag: &str) -> anyhow::Result<RunnerView> {
    crate::pair::tagged::check(key, VIEW_TAG_PURPOSE, body, tag)?;
    serde_json::from_slice(body).context("not a workloads view")
}

/// One workload as the runner sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadView {
    pub name: String,
    /// starting, healthy, unhealthy, stopped or failed.
    pub state: String,
    pub pid: Option<u32>,
    pub restarts_left: u32,
    pub last_failure: Option<String>,
    /// It failed once more after its last restart here, within the window: its restarts here
    /// are spent.
    #[serde(default)]
    pub spent: bool,
}

/// What the runner writes for `pairos workload list`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerView {
    pub workloads: Vec<WorkloadView>,
    /// The last role change, step by step, with milliseconds.
    pub last_change: Vec<(String, u64)>,
    pub alarms: Vec<String>,
}

/// The daemon's side.
#[derive(Debug, Clone)]
pub struct Handle {
    primary: Arc<AtomicBool>,
    peer_can_take: Arc<AtomicBool>,
    /// Workloads an operator asked to restart, not yet restarted.
    restarts: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Handle {
    pub fn set_primary(&self, on: bool) {
        self.primary.store(on, Ordering::SeqCst);
    }

    /// Whether the peer is heard, healthy and up to date (a move to it would be safe).
    pub fn set_peer_can_take(&self, yes: bool) {
        self.peer_can_take.store(yes, Ordering::SeqCst);
    }

    /// An operator asked to restart workload `name` (it does not count against its budget).
    pub fn restart(&self, name: &str) {
        self.restarts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(name.to_owned());
    }
}

struct Supervised {
    spec: Workload,
    process: Option<Running>,
    healthy_once: bool,
    failures_in_row: u32,
    next_check: Instant,
    state: &'static str,
    last_failure: Option<String>,
}

struct Runner {
    setup: Setup,
    say: fn(String),
    /// Asked to hand the pair to the peer (the reason).
    move_away: Box<dyn Fn(String) + Send>,
    handle: Handle,
    up: bool,
    doc: PairConfig,
    /// When the document last changed on disk, as last read.
    doc_modified: Option<std::time::SystemTime>,
    running: BTreeMap<String, Supervised>,
    /// Each workload's restarts on this node, kept across role changes (a workload that spent
    /// them here and comes back within the window has none left).
    budgets: BTreeMap<String, Budget>,
    /// When each workload last spent its restarts here.
    spent: BTreeMap<String, u64>,
    view: RunnerView,
    /// The view as last written (it is written again only when it changed).
    written: Option<RunnerView>,
    retry_at: Option<Instant>,
}

/// Starts the runner.
pub fn spawn(
    setup: Setup,
    say: fn(String),
    move_away: Box<dyn Fn(String) + Send>,
) -> std::io::Result<Handle> {
    let handle = Handle {
        primary: Arc::new(AtomicBool::new(false)),
        peer_can_take: Arc::new(AtomicBool::new(false)),
        restarts: Arc::default(),
    };
    let mut r = Runner {
        setup,
        say,
        move_away,
        handle: handle.clone(),
        up: false,
        doc: PairConfig::default(),
        doc_modified: None,
        running: BTreeMap::new(),
        budgets: BTreeMap::new(),
        spent: BTreeMap::new(),
        view: RunnerView::default(),
        written: None,
        retry_at: None,
    };
    std::thread::Builder::new().name("workloads".into()).spawn(move || loop {
        r.round();
        std::thread::sleep(TICK);
    })?;
    Ok(handle)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Runner {
    fn say(&self, msg: String) {
        (self.say)(format!("workloads: {msg}"));
    }

    fn round(&mut self) {
        // The document is read again only when it changed on disk.
        let file = self.setup.state_dir.join(pairos_mirror::document::FILE);
        let modified = std::fs::metadata(&file).and_then(|m| m.modified()).ok();
        if modified != self.doc_modified {
            if let Ok(doc) = PairConfig::load(&self.setup.state_dir) {
                self.doc = doc;
                self.doc_modified = modified;
            }
        }
        let want = self.handle.primary.load(Ordering::SeqCst);
        if want
            && !self.up
            && !self.doc.workloads.is_empty()
            && self.retry_at.is_none_or(|t| Instant::now() >= t)
        {
            self.take_over();
        } else if !want && self.up {
            self.give_up();
        } else if self.up {
            self.follow_document();
            self.restart_asked();
            self.supervise();
        }
        self.write_view();
    }

    fn take_over(&mut self) {
        let steps = sequence::take_over(&self.doc);
        let mut done = Vec::new();
        let result = sequence::run(&steps, |s| self.step(s).map_err(|e| format!("{e:#}")), |d| done.push(d));
        self.view.last_change = done.iter().map(|d| (d.step.clone(), d.took.as_millis() as u64)).collect();
        let shown: Vec<String> =
            done.iter().map(|d| format!("{} {} ms", d.step, d.took.as_millis())).collect();
        match result {
            Ok(()) => {
                self.up = true;
                self.retry_at = None;
                self.view.alarms.retain(|a| !a.starts_with("taking the role failed"));
                self.say(format!("primary, step by step: {}", shown.join(", ")));
            }
            Err(e) => {
                self.say(format!("taking the role failed at {e}; undoing, and trying again in 10 s"));
                self.view.alarms = vec![format!("taking the role failed at {e}")];
                self.up = true;
                self.give_up();
                self.retry_at = Some(Instant::now() + Duration::from_secs(10));
            }
        }
    }

    fn give_up(&mut self) {
        let steps = sequence::give_up(&self.doc);
        let mut done = Vec::new();
        // Giving up goes on past a failing step: whatever can be undone is.
        for s in &steps {
            let start = Instant::now();
            match self.stop_step(s) {
                Ok(()) => done.push(format!("{s} {} ms", start.elapsed().as_millis())),
                Err(e) => self.say(format!("{s}: {e:#}")),
            }
        }
        // Anything still running that the document no longer names.
        for (_, mut w) in std::mem::take(&mut self.running) {
            if let Some(p) = w.process.take() {
                p.stop(Duration::from_secs(u64::from(w.spec.stop_timeout_s)));
            }
        }
        self.up = false;
        self.say(format!("secondary, step by step: {}", done.join(", ")));
    }

    fn device(&self, volume: &str) -> anyhow::Result<PathBuf> {
        let v = self.doc.volumes.iter().find(|v| v.name.as_str() == volume).context("no such volume")?;
        Ok(PathBuf::from(format!("/dev/drbd{}", v.minor)))
    }

    fn step(&mut self, step: &Step) -> anyhow::Result<()> {
        match step {
            Step::Promote { volume } => {
                // DRBD may refuse for a moment after a failover: until its fence-peer handler
                // has heard from the daemon that the peer is off or outdated.
                let start = Instant::now();
                loop {
                    match Drbd::new(&self.setup.drbd_conf).primary(volume, false) {
                        Ok(()) => return Ok(()),
                        Err(e) if start.elapsed() > PROMOTE_WAIT => return Err(e),
                        Err(_) => std::thread::sleep(Duration::from_millis(300)),
                    }
                }
            }
            Step::Mount { volume, at, .. } => {
                mount_root()?;
                let device = self.device(volume)?;
                if filesystem::is_mounted(at) {
                    return Ok(());
                }
                if filesystem::prepare(&device, volume)? == filesystem::Prepared::Made {
                    self.say(format!("volume {volume} was blank: made ext4 on it"));
                }
                filesystem::mount(&device, at)?;
                // The mount's top folder belongs to the workloads that mount it (a server that
                // runs as its own user makes its files there).
                let users: Vec<&str> = self
                    .doc
                    .workloads
                    .iter()
                    .filter(|w| w.volumes.iter().any(|m| &m.mount == at))
                    .map(|w| w.user.as_str())
                    .collect();
                if let [user] = users[..] {
                    filesystem::own(at, user)?;
                }
                Ok(())
            }
            Step::Address => wait_for_address(self.setup.address),
            Step::Start { workload } => {
                let spec = self.doc.workload(workload).context("no longer defined")?.clone();
                let process = self.start(&spec)?;
                self.budgets.entry(workload.clone()).or_insert_with(|| Budget::new(spec.restart));
                self.running.insert(
                    workload.clone(),
                    Supervised {
                        next_check: Instant::now(),
                        spec,
                        process: Some(process),
                        healthy_once: false,
                        failures_in_row: 0,
                        state: "starting",
                        last_failure: None,
                    },
                );
                Ok(())
            }
            Step::Healthy { workload } => {
                // A workload that fails its first start is one failure of that workload: its
                // budget decides (restart here, move the pair, or failed), and the role change
                // goes on for the others rather than being undone for all of them.
                if let Err(why) = self.wait_healthy(workload)? {
                    self.fail(workload, why);
                }
                Ok(())
            }
            Step::Ready => Ok(()),
        }
    }

    /// Waits until a started workload is healthy: the inner error says how it failed.
    fn wait_healthy(&mut self, workload: &str) -> anyhow::Result<Result<(), String>> {
        let host = self.health_host();
        let w = self.running.get_mut(workload).context("not started")?;
        let start = Instant::now();
        loop {
            if let Some(status) = w.process.as_mut().and_then(Running::exited) {
                return Ok(Err(format!("it exited ({status}) before it was healthy")));
            }
            match health::check(&w.spec.health, host) {
                Ok(()) => {
                    w.healthy_once = true;
                    w.state = "healthy";
                    return Ok(Ok(()));
                }
                Err(e) if start.elapsed() > START_GRACE => {
                    return Ok(Err(format!("not healthy {} s after its start: {e}", START_GRACE.as_secs())))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    fn stop_step(&mut self, step: &StopStep) -> anyhow::Result<()> {
        match step {
            StopStep::Stop { workload } => {
                if let Some(mut w) = self.running.remove(workload) {
                    if let Some(p) = w.process.take() {
                        let (_, killed) = p.stop(Duration::from_secs(u64::from(w.spec.stop_timeout_s)));
                        if killed {
                            self.say(format!(
                                "{workload} did not stop within {} s: killed",
                                w.spec.stop_timeout_s
                            ));
                        }
                    }
                }
                Ok(())
            }
            StopStep::Unmount { at } => filesystem::unmount(at),
            StopStep::Demote { volume } => Drbd::new(&self.setup.drbd_conf).secondary(volume),
            // The daemon releases the address when it stops acting.
            StopStep::ReleaseAddress => Ok(()),
        }
    }

    fn health_host(&self) -> IpAddr {
        self.setup.address.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    fn start(&self, spec: &Workload) -> anyhow::Result<Running> {
        let mut extra = Vec::new();
        if let Some(a) = self.setup.address {
            extra.push(("PAIROS_ADDRESS", a.to_string()));
        }
        super::process::start(spec, &self.setup.logs, CgroupRoot::system().as_ref(), &extra)
    }

    /// While primary: a workload added to the document is started (its volumes promoted and
    /// mounted first), and one removed from it is stopped.
    fn follow_document(&mut self) {
        let gone: Vec<String> =
            self.running.keys().filter(|n| self.doc.workload(n).is_none()).cloned().collect();
        for name in gone {
            let _ = self.stop_step(&StopStep::Stop { workload: name.clone() });
            self.say(format!("{name} is no longer defined: stopped"));
        }
        let new: Vec<String> = sequence::start_order(&self.doc)
            .iter()
            .filter(|w| !self.running.contains_key(&w.name))
            .map(|w| w.name.clone())
            .collect();
        if new.is_empty() || self.retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let steps: Vec<Step> = sequence::take_over(&self.doc)
            .into_iter()
            .filter(|s| match s {
                Step::Start { workload } | Step::Healthy { workload } => new.contains(workload),
                Step::Ready => false,
                _ => true,
            })
            .collect();
        let mut done = Vec::new();
        match sequence::run(&steps, |s| self.step(s).map_err(|e| format!("{e:#}")), |d| done.push(d)) {
            Ok(()) => self.say(format!("started {}", new.join(", "))),
            Err(e) => {
                self.say(format!("starting {} failed at {e}; trying again in 10 s", new.join(", ")));
                self.retry_at = Some(Instant::now() + Duration::from_secs(10));
            }
        }
    }

    /// Restarts what an operator asked to: stopped (its stop timeout, then killed) and started
    /// again, a failed one too; its restart budget is not spent.
    fn restart_asked(&mut self) {
        let asked = std::mem::take(
            &mut *self.handle.restarts.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for name in asked {
            let Some(mut w) = self.running.remove(&name) else {
                self.say(format!("{name}: a restart was asked, and it does not run here"));
                continue;
            };
            if let Some(p) = w.process.take() {
                p.stop(Duration::from_secs(u64::from(w.spec.stop_timeout_s)));
            }
            if let Some(pid) = self.start_again(&name, &mut w) {
                self.say(format!("{name} restarted, as an operator asked (pid {pid})"));
                w.next_check = Instant::now();
                self.view.alarms.retain(|a| !a.starts_with(&format!("workload {name} is failed")));
            }
            self.running.insert(name, w);
        }
    }

    /// Health checks and exits, each failure through the restart budget.
    fn supervise(&mut self) {
        let host = self.health_host();
        let names: Vec<String> = self.running.keys().cloned().collect();
        for name in names {
            let Some(w) = self.running.get_mut(&name) else { continue };
            if w.state == "failed" {
                continue;
            }
            let failure = if let Some(status) = w.process.as_mut().and_then(Running::exited) {
                Some(format!("it exited ({status})"))
            } else if Instant::now() >= w.next_check {
                w.next_check = Instant::now() + Duration::from_secs(u64::from(w.spec.health.interval_s));
                match health::check(&w.spec.health, host) {
                    Ok(()) => {
                        (w.healthy_once, w.failures_in_row, w.state) = (true, 0, "healthy");
                        None
                    }
                    Err(e) => {
                        let grace = !w.healthy_once
                            && w.process.as_ref().is_some_and(|p| p.started.elapsed() < START_GRACE);
                        w.failures_in_row += u32::from(!grace);
                        w.state = if grace { "starting" } else { "unhealthy" };
                        (w.failures_in_row >= w.spec.health.failures)
                            .then(|| format!("{} health checks failed in a row: {e}", w.failures_in_row))
                    }
                }
            } else {
                None
            };
            let Some(why) = failure else { continue };
            self.fail(&name, why);
        }
    }

    /// One failure of workload `name`, through its restart budget.
    fn fail(&mut self, name: &str, why: String) {
        let Some(w) = self.running.get_mut(name) else { return };
        w.last_failure = Some(why.clone());
        let restart = w.spec.restart;
        let now = now_secs();
        let left = self.budgets.entry(name.to_owned()).or_insert_with(|| Budget::new(restart)).left(now);
        // The peer is asked only when the restarts here are spent.
        let spent_its_budget = left == 0 && self.peer_spent(name);
        let peer = Peer { can_take: self.handle.peer_can_take.load(Ordering::SeqCst), spent_its_budget };
        let decision = self.budgets.get_mut(name).expect("made above").on_failure(now, peer);
        if !matches!(decision, Decision::Restart { .. }) {
            self.spent.insert(name.to_owned(), now);
        }
        self.on_failure(name, why, decision);
    }

    /// Starts a stopped workload's process again, as new (its health not yet seen); its pid,
    /// or None (said) when it cannot start.
    fn start_again(&self, name: &str, w: &mut Supervised) -> Option<u32> {
        match self.start(&w.spec) {
            Ok(p) => {
                let pid = p.pid();
                w.process = Some(p);
                (w.healthy_once, w.failures_in_row, w.state) = (false, 0, "starting");
                Some(pid)
            }
            Err(e) => {
                self.say(format!("{name}: cannot start it again: {e:#}"));
                w.state = "stopped";
                None
            }
        }
    }

    fn on_failure(&mut self, name: &str, why: String, decision: Decision) {
        let Some(mut w) = self.running.remove(name) else { return };
        if let Some(p) = w.process.take() {
            p.stop(Duration::from_secs(u64::from(w.spec.stop_timeout_s)));
        }
        match decision {
            Decision::Restart { attempt, times } => {
                self.say(format!("{name} failed ({why}): restarting it here ({attempt} of {times})"));
                self.start_again(name, &mut w);
            }
            Decision::MoveToPeer => {
                self.say(format!(
                    "{name} failed ({why}) and spent its restarts here: handing the pair to the peer"
                ));
                w.state = "stopped";
                (self.move_away)(format!("workload {name} failed ({why}) and spent its restarts here"));
            }
            Decision::Failed { why: budget } => {
                let alarm = format!("workload {name} is failed: {budget}; last: {why}");
                self.say(alarm.clone());
                self.view.alarms.push(alarm);
                w.state = "failed";
            }
        }
        self.running.insert(name.to_owned(), w);
    }

    /// Whether the peer's runner says workload `name` spent its restarts there (asked over
    /// the private link; an unreachable or unbelievable peer says no).
    fn peer_spent(&self, name: &str) -> bool {
        let Some((address, key)) = &self.setup.peer else { return false };
        let client = pairos_recovery::peer::PeerClient::new(*address, pairos_recovery::peer::PORT);
        let view = client
            .pair_workloads()
            .map_err(anyhow::Error::from)
            .and_then(|(body, tag)| believe_view(key, &body, &tag));
        match view {
            Ok(v) => v.workloads.iter().any(|w| w.name == name && w.spent),
            Err(e) => {
                self.say(format!("{name}: cannot tell whether it spent its restarts on the peer: {e:#}"));
                false
            }
        }
    }

    fn write_view(&mut self) {
        let now = now_secs();
        let spent = |name: &str, restart: pairos_workload::spec::Restart| {
            self.spent.get(name).is_some_and(|t| t + u64::from(restart.within_minutes) * 60 > now)
        };
        self.view.workloads = sequence::start_order(&self.doc)
            .iter()
            .map(|spec| {
                let restarts_left =
                    self.budgets.get_mut(&spec.name).map_or(spec.restart.times, |b| b.left(now));
                let spent = spent(&spec.name, spec.restart);
                match self.running.get_mut(&spec.name) {
                    Some(w) => WorkloadView {
                        name: spec.name.clone(),
                        state: w.state.into(),
                        pid: w.process.as_ref().map(Running::pid),
                        restarts_left,
                        last_failure: w.last_failure.clone(),
                        spent,
                    },
                    None => WorkloadView {
                        name: spec.name.clone(),
                        state: "stopped".into(),
                        restarts_left,
                        spent,
                        ..Default::default()
                    },
                }
            })
            .collect();
        if self.written.as_ref() == Some(&self.view) {
            return;
        }
        if let Ok(bytes) = serde_json::to_vec_pretty(&self.view) {
            if pairos_host::write_atomically(&self.setup.run_dir.join(VIEW_FILE), &bytes).is_ok() {
                self.written = Some(self.view.clone());
            }
        }
    }
}

/// Workloads' volumes are mounted under /srv, on a tmpfs (the node's root is read-only).
fn mount_root() -> anyhow::Result<()> {
    let root = Path::new(MOUNT_ROOT);
    if filesystem::is_mounted(root) {
        return Ok(());
    }
    std::fs::create_dir_all(root).with_context(|| format!("making {MOUNT_ROOT}"))?;
    pairos_host::Cmd::new("mount")
        .args(["-t", "tmpfs", "-o", "mode=0755,size=1m", "pairos-srv", MOUNT_ROOT])
        .run()?;
    Ok(())
}

/// Waits until the daemon holds the pair's address on this node.
fn wait_for_address(address: Option<IpAddr>) -> anyhow::Result<()> {
    let Some(a) = address else { return Ok(()) };
    let start = Instant::now();
    loop {
        // Binding to it works only when it is one of this node's addresses.
        if std::net::UdpSocket::bind((a, 0)).is_ok() {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(15) {
            bail!("the pair's address {a} is not on this node after 15 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peers_view_is_believed_only_with_its_own_tag() {
        let key = PairKey::generate().expect("random");
        let view = RunnerView {
            workloads: vec![WorkloadView {
                name: "db".into(),
                state: "stopped".into(),
                spent: true,
                ..Default::default()
            }],
            ..Default::default()
        };
        let body = serde_json::to_vec(&view).expect("serialises");
        let tag = sign_view(&key, &body);
        assert_eq!(believe_view(&key, &body, &tag).expect("believed"), view);
        let other = PairKey::generate().expect("random");
        assert!(believe_view(&other, &body, &tag).is_err(), "another pair's key");
        // A configuration's tag is no view's tag.
        let config_tag = crate::volumes::manager::sign(&key, &body);
        assert!(believe_view(&key, &body, &config_tag).is_err(), "a tag for another purpose");
        let mut changed = body.clone();
        changed[10] ^= 1;
        assert!(believe_view(&key, &changed, &tag).is_err(), "a changed body");
        // A view written before `spent` existed reads as not spent.
        let old = br#"{"workloads":[{"name":"db","state":"healthy","pid":7,"restarts_left":3,"last_failure":null}],"last_change":[],"alarms":[]}"#;
        let old = believe_view(&key, old, &sign_view(&key, old)).expect("believed");
        assert!(!old.workloads[0].spent);
    }
}
