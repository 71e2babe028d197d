//! The volume manager, a thread of the pair daemon. Every few seconds it:
//! 1. takes the peer's pair configuration over the private link (believed only with the pair
//!    key's tag) and adopts it when it is a later version of this node's; a conflict is an
//!    alarm and changes nothing;
//! 2. applies the configuration when it changed: DRBD's configuration file, each volume's
//!    logical volume, fresh metadata on a logical volume it just made, and `drbdadm adjust`;
//! 3. makes each volume primary while the daemon acts as primary, secondary otherwise. A
//!    volume's first generation (`primary --force`) is started once, on the node that made the
//!    volume with `pairos volume create`, and only while neither side has data;
//! 4. writes what it sees for `pairos volume list`.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use pairos_mirror::document::{PairConfig, Reconciled};
use pairos_mirror::drbd::{Drbd, CONF};
use pairos_mirror::drbd_conf::{render, Sites};
use pairos_mirror::lvm;
use pairos_mirror::resync_watch::{Seen, VolumeWatch};
use pairos_recovery::peer::{PeerClient, PORT};
use pairos_recovery::trust::PairKey;

use super::split_brain;
use super::view::{self, VolumeView, VolumesView};

/// The tag's purpose word for the pair configuration under the pair key.
pub const TAG_PURPOSE: &str = "pairos pair config";
/// Where a volume waits for its first generation (written by `pairos volume create`).
pub const FIRST_GENERATION_DIR: &str = "first-generation";
const ROUND: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct Setup {
    pub state_dir: PathBuf,
    pub run_dir: PathBuf,
    pub key: PairKey,
    /// The peer's private-link address (its image service serves its configuration).
    pub peer: Ipv4Addr,
    pub sites: Sites,
    /// How long a volume may be stuck before it is cycled.
    pub resync_stall_ms: u64,
}

/// Between the daemon and the manager: the role the daemon wants, and whether every volume is
/// up to date (false until the manager has looked).
#[derive(Debug, Clone, Default)]
pub struct Handle {
    primary: Arc<AtomicBool>,
    peer_live: Arc<AtomicBool>,
    peer_primary: Arc<AtomicBool>,
    ready: Arc<AtomicBool>,
}

impl Handle {
    pub fn set_primary(&self, on: bool) {
        self.primary.store(on, Ordering::SeqCst);
    }

    /// Whether the peer is heard, and heard acting as primary (whose data wins a split brain).
    pub fn set_peer(&self, live: bool, primary: bool) {
        self.peer_live.store(live, Ordering::SeqCst);
        self.peer_primary.store(primary, Ordering::SeqCst);
    }

    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// The peer is confirmed powered off (its BMC said so), so every connection DRBD still
    /// holds to it is dead. DRBD finds that out by its own timeouts, seconds later (its ping
    /// and request timeouts are generous for emulated nodes), and until then a primary's writes
    /// stay frozen and a secondary cannot be promoted. Each such connection is dropped and
    /// made again at once, on a thread of its own: the fence-peer handler then hears from the
    /// daemon that the peer is off, and writes resume. (Only after a confirmed power-off: a
    /// peer that is alive may still hold its volumes.)
    pub fn peer_is_off(&self, say: fn(String)) {
        std::thread::spawn(move || drop_connections_to_a_peer_that_is_off(&Drbd::new(Path::new(CONF)), say));
    }
}

fn drop_connections_to_a_peer_that_is_off(drbd: &Drbd, say: fn(String)) {
    let Ok(state) = drbd.state() else { return };
    for (name, r) in state.resources.iter().filter(|(_, r)| r.connection == "Connected") {
        let start = std::time::Instant::now();
        // drbdadm takes a lock per resource: the manager's round may hold it for a moment.
        let mut done = drbd.force_disconnect(name);
        for _ in 0..5 {
            if done.is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
            done = drbd.force_disconnect(name);
        }
        let done = done.and_then(|()| drbd.connect(name, false));
        say(format!(
            "volumes: volume {name}: the peer is confirmed off: its connection ({} with the peer {}) \
             dropped and made again in {} ms{}",
            r.connection,
            r.peer_role,
            start.elapsed().as_millis(),
            done.err().map(|e| format!(", and that failed: {e:#}")).unwrap_or_default()
        ));
    }
}

/// The pair configuration's bytes and their tag under `key` (hex).
pub fn sign(key: &PairKey, body: &[u8]) -> String {
    crate::pair::tagged::tag(key, TAG_PURPOSE, body)
}

/// The peer's configuration from its bytes and tag, if the tag checks and it reads.
pub fn believe(key: &PairKey, body: &[u8], tag: &str) -> anyhow::Result<PairConfig> {
    crate::pair::tagged::check(key, TAG_PURPOSE, body, tag)?;
    let doc: PairConfig = serde_json::from_slice(body).context("not a pair configuration")?;
    doc.check()?;
    Ok(doc)
}

pub fn spawn(setup: Setup, say: fn(String)) -> std::io::Result<Handle> {
    let handle = Handle::default();
    let handed = handle.clone();
    std::thread::Builder::new().name("pair-volumes".into()).spawn(move || {
        let mut m = Manager {
            drbd: Drbd::new(Path::new(CONF)),
            setup,
            applied: None,
            said: Vec::new(),
            heal: HealClock::default(),
            watches: HashMap::new(),
            started: std::time::Instant::now(),
            kept: None,
        };
        loop {
            let (alarms, up_to_date) = m.round(Peers {
                acting: handed.primary.load(Ordering::SeqCst),
                peer_live: handed.peer_live.load(Ordering::SeqCst),
                peer_acting: handed.peer_primary.load(Ordering::SeqCst),
            });
            handed.ready.store(up_to_date, Ordering::SeqCst);
            for a in alarms.iter().filter(|a| !m.said.contains(a)) {
                say(format!("volumes: {a}"));
            }
            m.said = alarms;
            std::thread::sleep(ROUND);
        }
    })?;
    Ok(handle)
}

struct Manager {
    setup: Setup,
    drbd: Drbd,
    /// The lineage of the configuration last applied.
    applied: Option<Vec<String>>,
    /// The alarms last said (each is said once, when it appears).
    said: Vec<String>,
    heal: HealClock,
    /// Each volume's stuck-resync watch.
    watches: HashMap<String, VolumeWatch>,
    /// When the manager started, for the watches' clock.
    started: std::time::Instant,
    /// The snapshots that keep divergent data, and when they were listed ([`KEPT_EVERY`]).
    kept: Option<(std::time::Instant, Vec<(String, String)>)>,
}

/// How long a listing of the divergent-data snapshots is used. `lvs` costs a tenth of a second
/// of CPU on a small node, too much for every round; a snapshot this manager makes is listed
/// at once, and one the operator removes leaves the alarms within this time.
const KEPT_EVERY: Duration = Duration::from_secs(30);

/// What the pair daemon says of the two nodes.
#[derive(Debug, Clone, Copy)]
struct Peers {
    /// This node acts as primary.
    acting: bool,
    /// The peer is heard on either link.
    peer_live: bool,
    /// The peer is heard acting as primary.
    peer_acting: bool,
}

/// Times the pair's heals: from the first round that finds a volume not up to date on both
/// nodes to the first that finds all of them up to date on both again.
#[derive(Debug, Default)]
struct HealClock {
    degraded_since: Option<u64>,
    last: Option<view::Heal>,
}

impl HealClock {
    fn see(&mut self, now: u64, redundant: bool) {
        match (redundant, self.degraded_since) {
            (false, None) => self.degraded_since = Some(now),
            (true, Some(since)) => {
                self.last = Some(view::Heal { ended: now, seconds: now.saturating_sub(since) });
                self.degraded_since = None;
            }
            _ => {}
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Manager {
    fn backups(&self) -> PathBuf {
        self.setup.state_dir.join("lvm")
    }

    /// One round; returns the alarms, and whether every volume is up to date here.
    fn round(&mut self, peers: Peers) -> (Vec<String>, bool) {
        let want_primary = peers.acting;
        let mut alarms = Vec::new();
        let mut doc = match PairConfig::load(&self.setup.state_dir).and_then(|d| d.check().map(|()| d)) {
            Ok(d) => d,
            Err(e) => {
                alarms.push(format!("this node's pair configuration cannot be read: {e:#}"));
                self.write_view(0, Vec::new(), alarms.clone());
                return (alarms, false);
            }
        };
        if let Some(a) = self.take_peers(&mut doc) {
            alarms.push(a);
        }
        if self.applied.as_ref() != Some(&doc.lineage) {
            match self.apply(&doc) {
                Ok(()) => self.applied = Some(doc.lineage.clone()),
                Err(e) => alarms.push(format!("cannot apply version {}: {e:#}", doc.version)),
            }
        }
        let state = match self.drbd.state() {
            Ok(s) => s,
            Err(e) => {
                alarms.push(format!("{e:#}"));
                Default::default()
            }
        };
        let mut views = Vec::new();
        for v in &doc.volumes {
            let r = state.resources.get(v.name.as_str()).cloned().unwrap_or_default();
            if let Err(e) = self.keep_role(v.name.as_str(), &r, want_primary) {
                alarms.push(format!("{e:#}"));
            }
            if let Err(e) = self.keep_size(v, &r) {
                alarms.push(format!("{e:#}"));
            }
            if let Some(a) = self.resolve_split_brain(v.name.as_str(), &r, want_primary, peers.peer_acting) {
                alarms.push(a);
            }
            if let Some(a) = self.unstick(v.name.as_str(), &r, peers.peer_live) {
                alarms.push(a);
            }
            views.push(VolumeView {
                name: v.name.to_string(),
                size: v.size,
                device: format!("/dev/drbd{}", v.minor),
                role: r.role,
                disk: r.disk,
                peer_disk: r.peer_disk,
                connection: r.connection,
                replication: r.replication,
                out_of_sync: r.out_of_sync_kib * 1024,
                done_percent: r.done_percent,
                rate: r.rate_kib_s.map(|k| k * 1024),
                seconds_left: r.seconds_left,
            });
        }
        match self.divergent_snapshots() {
            Ok(kept) => {
                alarms.extend(kept.iter().map(|(snap, volume)| split_brain::kept_alarm(snap, volume)))
            }
            Err(e) => alarms.push(format!("{e:#}")),
        }
        let up_to_date = views.iter().all(|v| v.disk == "UpToDate");
        let now = unix_now();
        self.heal.see(now, views.iter().all(|v| v.disk == "UpToDate" && v.peer_disk == "UpToDate"));
        self.write_view(doc.version, views, alarms.clone());
        (alarms, up_to_date)
    }

    /// Adopts the peer's configuration when it is a later version of ours; returns an alarm
    /// for a conflict or a configuration that is not believed. A silent peer changes nothing.
    fn take_peers(&self, doc: &mut PairConfig) -> Option<String> {
        let (body, tag) = PeerClient::new(self.setup.peer, PORT).pair_config().ok()?;
        let theirs = match believe(&self.setup.key, &body, &tag) {
            Ok(t) => t,
            Err(e) => return Some(format!("the peer's pair configuration is not believed: {e:#}")),
        };
        match doc.reconcile(&theirs) {
            Reconciled::Same | Reconciled::Keep => None,
            Reconciled::Adopt => match theirs.save(&self.setup.state_dir) {
                Ok(()) => {
                    *doc = theirs;
                    None
                }
                Err(e) => Some(format!("cannot keep the peer's pair configuration: {e:#}")),
            },
            Reconciled::Conflict => Some(format!(
                "the pair's configuration was changed on both nodes apart (here version {}, on the peer {}): nothing is changed until an operator chooses",
                doc.version, theirs.version
            )),
        }
    }

    /// DRBD's configuration, each volume's logical volume (made, or extended to its size),
    /// metadata on a fresh one, and up; a volume the configuration no longer names is taken
    /// down and its logical volume removed.
    fn apply(&self, doc: &PairConfig) -> anyhow::Result<()> {
        let secret = self.setup.key.derive("pairos drbd shared-secret");
        pairos_host::write_atomically(Path::new(CONF), render(doc, self.setup.sites, &secret).as_bytes())?;
        let state = self.drbd.state()?;
        for gone in
            state.resources.keys().filter(|r| doc.volumes.iter().all(|v| v.name.as_str() != r.as_str()))
        {
            self.drbd.down_unnamed(gone)?;
            lvm::remove(gone, &self.backups())?;
            let _ = std::fs::remove_file(self.setup.state_dir.join(FIRST_GENERATION_DIR).join(gone));
        }
        for v in &doc.volumes {
            let name = v.name.as_str();
            // One the kernel has attached has its logical volume and metadata.
            let attached =
                state.resources.get(name).is_some_and(|r| !r.disk.is_empty() && r.disk != "Diskless");
            if !attached {
                let fresh = lvm::lv_size(name, &self.backups())?.is_none();
                lvm::ensure_lv(name, v.size, &self.backups())?;
                if fresh || !self.drbd.has_metadata(name) {
                    self.drbd.create_md(name)?;
                }
            } else {
                lvm::extend(name, v.size, &self.backups())?;
            }
            self.drbd.adjust(name)?;
        }
        Ok(())
    }

    /// On the primary, a volume grown on both nodes is resized until DRBD offers its size
    /// (DRBD takes the smaller side: until the peer has grown too, this changes nothing).
    fn keep_size(
        &self,
        v: &pairos_mirror::document::Volume,
        r: &pairos_mirror::events2::Resource,
    ) -> anyhow::Result<()> {
        // DRBD's internal metadata takes a bitmap bit per 4 KiB and under a MiB besides.
        let metadata = v.size / 32768 + (1 << 20);
        let short = Drbd::device_size(v.minor).is_some_and(|now| now + metadata < v.size);
        if short && r.role == "Primary" && r.connection == "Connected" {
            self.drbd.resize(v.name.as_str())?;
        }
        Ok(())
    }

    /// Primary while the daemon acts, secondary otherwise; the first generation once.
    fn keep_role(
        &self,
        name: &str,
        r: &pairos_mirror::events2::Resource,
        want_primary: bool,
    ) -> anyhow::Result<()> {
        let first = self.setup.state_dir.join(FIRST_GENERATION_DIR).join(name);
        if r.disk == "UpToDate" && first.exists() {
            let _ = std::fs::remove_file(&first);
        }
        if r.role.is_empty() {
            return Ok(());
        }
        if want_primary && r.role != "Primary" {
            let force = first.exists() && r.disk == "Inconsistent" && r.peer_disk != "UpToDate";
            self.drbd.primary(name, force)?;
            if force {
                let _ = std::fs::remove_file(&first);
            }
        } else if !want_primary && r.role == "Primary" {
            self.drbd.secondary(name)?;
        }
        Ok(())
    }

    /// A split brain DRBD left to us ([`split_brain`]): the acting node's data wins; the
    /// other side's is kept in a snapshot first. Returns an alarm while it is not resolved.
    fn resolve_split_brain(
        &mut self,
        name: &str,
        r: &pairos_mirror::events2::Resource,
        acting: bool,
        peer_acting: bool,
    ) -> Option<String> {
        let run_dir = &self.setup.run_dir;
        let found = split_brain::marked(run_dir, name)?;
        if r.connection != "StandAlone" {
            // Connecting again, or connected: resolved (or being resolved) by DRBD's resync.
            if r.connection == "Connected" {
                split_brain::clear(run_dir, name);
            }
            return None;
        }
        let result = match split_brain::side(acting, peer_acting) {
            split_brain::Side::Undecided => {
                return Some(format!(
                    "volume {name}: a split brain (both sides wrote apart); neither node acts as primary, so \
                     nothing is decided yet"
                ))
            }
            split_brain::Side::Keep => self.drbd.connect(name, false),
            split_brain::Side::GiveWay => self.give_way(name, found),
        };
        result.err().map(|e| format!("volume {name}: a split brain, not resolved: {e:#}"))
    }

    /// Cycles a volume whose resync or connection is stuck ([`pairos_mirror::resync_watch`]);
    /// the alarm says so once.
    fn unstick(
        &mut self,
        name: &str,
        r: &pairos_mirror::events2::Resource,
        peer_live: bool,
    ) -> Option<String> {
        let now = self.started.elapsed().as_millis() as u64;
        let stall = self.setup.resync_stall_ms;
        let seen = Seen {
            connection: &r.connection,
            replication: &r.replication,
            out_of_sync_kib: r.out_of_sync_kib,
            peer_live,
        };
        let cycle =
            self.watches.entry(name.to_owned()).or_insert_with(|| VolumeWatch::new(stall)).see(now, &seen)?;
        // Disconnected and connected again; should the connect fail, adjust brings it back.
        let done = self.drbd.disconnect(name).and_then(|()| self.drbd.connect(name, false));
        let done = done.or_else(|_| self.drbd.adjust(name));
        Some(format!(
            "volume {name}: {}: reconnecting it (attempt {}; the next no sooner than {} s){}",
            cycle.why,
            cycle.attempt,
            cycle.next_wait / 1000,
            done.err().map(|e| format!(", and that failed: {e:#}")).unwrap_or_default()
        ))
    }

    /// This node's side of a split brain loses: its data is kept in a snapshot, then it
    /// connects as the sync target.
    fn give_way(&mut self, name: &str, found: u64) -> anyhow::Result<()> {
        let kept = lvm::divergent_snapshots(&self.backups())?;
        let snapshot = format!("{name}-{}-{found}", lvm::DIVERGENT);
        if !kept.iter().any(|(s, _)| *s == snapshot) {
            self.kept = None;
            lvm::snapshot(name, found, &self.backups()).context("keeping this node's divergent data")?;
        }
        self.drbd.connect(name, true)
    }

    /// The snapshots that keep divergent data: (snapshot, its volume), listed at most every
    /// [`KEPT_EVERY`].
    fn divergent_snapshots(&mut self) -> anyhow::Result<Vec<(String, String)>> {
        match &self.kept {
            Some((at, kept)) if at.elapsed() < KEPT_EVERY => Ok(kept.clone()),
            _ => {
                let kept = lvm::divergent_snapshots(&self.backups())?;
                self.kept = Some((std::time::Instant::now(), kept.clone()));
                Ok(kept)
            }
        }
    }

    fn write_view(&self, version: u64, volumes: Vec<VolumeView>, alarms: Vec<String>) {
        let v = VolumesView { version, volumes, alarms, updated: unix_now(), last_heal: self.heal.last };
        let _ = pairos_host::write_atomically(
            &view::path(&self.setup.run_dir),
            &serde_json::to_vec_pretty(&v).expect("serialises"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_is_believed_only_with_the_pair_keys_tag() {
        let key = PairKey::generate().expect("random");
        let mut doc = PairConfig::default();
        doc.add("data".parse().expect("name"), 64 << 20, "node-1").expect("added");
        let body = serde_json::to_vec(&doc).expect("serialises");
        let tag = sign(&key, &body);
        assert_eq!(believe(&key, &body, &tag).expect("believed"), doc);
        let other = PairKey::generate().expect("random");
        assert!(believe(&other, &body, &tag).is_err(), "another pair's key");
        let mut changed = body.clone();
        changed[5] ^= 1;
        assert!(believe(&key, &changed, &tag).is_err(), "a changed body");
        assert!(format!("{:#}", believe(&key, &body, "zz").expect_err("not hex")).contains("hex"));
    }

    #[test]
    fn a_heal_is_timed_from_the_first_degraded_round_to_redundancy() {
        let mut clock = HealClock::default();
        clock.see(100, true);
        assert_eq!(clock.last, None, "redundant from the start: nothing healed");
        clock.see(110, false);
        clock.see(120, false);
        clock.see(150, true);
        assert_eq!(clock.last, Some(view::Heal { ended: 150, seconds: 40 }));
        clock.see(160, true);
        assert_eq!(clock.last, Some(view::Heal { ended: 150, seconds: 40 }), "kept until the next heal");
    }
}
