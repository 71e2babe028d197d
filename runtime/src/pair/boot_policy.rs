//! Who is offered what when it network-boots on the private link: by membership, and for a
//! known peer by evidence about its disk, never by a timer alone.
//!
//! - While the peer is live (its heartbeats are heard), the peer is told to boot its disk, and
//!   any other machine is not answered: the pair has both its nodes.
//! - A machine the pair has never seen is offered recovery only while the pair misses a node.
//! - A known peer (one this node installed, or whose heartbeats it heard) that is not live is
//!   told to boot its disk, on every network option its firmware tries and for as long as they
//!   take: both nodes may be starting after a power cut, and firmware that boots the network
//!   first may spend minutes on its PXE and HTTP options, over IPv4 and IPv6, before its disk.
//!   Its UEFI HTTP boot asks then get no offer at all, so the firmware falls through to the disk.
//!   It is offered recovery only on evidence that its disk does not boot:
//!   - its firmware boots its disk first (its heartbeats said so: it booted from the first
//!     entry of its firmware's boot order), so any network boot of it means its disk failed;
//!   - iPXE could not boot it (the BIOS local boot script says so: [`PairPolicy::local_boot_failed`]);
//!   - its firmware went round its boot options again and its disk never started (its
//!     heartbeats were not heard in between): a second exchange from the firmware's own PXE
//!     client after iPXE was told to boot the disk. The firmware's PXE runs once per round of
//!     its boot options; iPXE may run several times in one (the NIC's option ROM, then the
//!     iPXE that the firmware's PXE loads) and HTTP boot retries with new exchanges, so
//!     neither of those counts;
//!   - it was reset through its BMC because its disk had not started [`REJOIN_WAIT`] after its
//!     last ask (firmware that stops in its shell when no option boots never comes back by
//!     itself), and it network-boots again.
//! - A node imaged twice within [`LOOP_WINDOW`] whose disk again does not boot is not offered
//!   recovery a third time: it is held, an alarm names it, and `pairos pair approve MAC` (an
//!   approval given after the hold) lets it go on.
//!
//! A DHCP exchange is one ask however often it is retransmitted: asks are told apart by their
//! transaction id (xid), not by the time between them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use pairos_pxe::client::{Asker, ClientInfo};
use pairos_pxe::policy::{Decision, Policy};

use super::heartbeat::Liveness;
use super::identity;
use super::status::{self, Status};

/// By default, a known peer told to boot its disk whose disk has not started (its heartbeats
/// not heard) this long after its last network-boot ask is reset through its BMC, once, so that
/// it network-boots again and is offered recovery. The pair's `timing.rejoin_wait_ms` sets it.
pub const REJOIN_WAIT: Duration = Duration::from_secs(3 * 60);
/// The longest `timing.rejoin_wait_ms` the pair's settings may give.
pub const MAX_REJOIN_WAIT: Duration = Duration::from_secs(30 * 60);
/// A node imaged twice within this long is held for the operator rather than imaged again.
pub const LOOP_WINDOW: Duration = Duration::from_secs(60 * 60);
/// Imagings within [`LOOP_WINDOW`] after which a node is held.
pub const IMAGINGS_BEFORE_HOLD: usize = 2;
/// Decisions kept in the status.
const SHOWN: usize = 8;
/// The reason given for every DHCP message of an exchange after its first.
const SAME: &str = "the same DHCP exchange";

/// One DHCP ask, as the policy needs it.
#[derive(Debug, Clone, Copy)]
struct Ask {
    now: Instant,
    /// The wall clock now: a hold is compared with the time of the operator's approval.
    wall: SystemTime,
    asker: Asker,
    xid: u32,
}

/// A known peer's network boot, from its first ask until its disk starts.
#[derive(Debug, Clone)]
struct Boot {
    /// Its first ask.
    began: Instant,
    /// Its last ask.
    last: Instant,
    /// Exchanges from the firmware's own PXE client: one per round of its boot options.
    firmware_rounds: u32,
    /// The last DHCP exchange: its messages (DISCOVER, its retransmissions, REQUEST) come one
    /// after another. (iPXE may use the same xid in every boot, so older ones are not kept.)
    last_xid: Option<u32>,
    /// iPXE was told to boot the disk.
    told_disk: bool,
    decision: Decision,
    /// Why its disk is known not to boot.
    evidence: Option<String>,
    /// It was reset through its BMC because its disk did not start.
    reset: bool,
}

impl Boot {
    /// A boot whose first word comes `now`: told to boot the disk, nothing known against it.
    fn starting(now: Instant, told_disk: bool) -> Boot {
        Boot {
            began: now,
            last: now,
            firmware_rounds: 0,
            last_xid: None,
            told_disk,
            decision: Decision::LocalBoot,
            evidence: None,
            reset: false,
        }
    }
}

/// What the policy remembers of one peer.
#[derive(Debug, Clone, Default)]
struct Peer {
    boot: Option<Boot>,
    /// When its imagings from this node finished, within [`LOOP_WINDOW`].
    imaged: Vec<Instant>,
    /// Held for the operator since then (wall clock: an approval given later releases it).
    held: Option<SystemTime>,
}

impl Peer {
    fn imaged_recently(&self, now: Instant) -> usize {
        self.imaged.iter().filter(|t| now.saturating_duration_since(**t) < LOOP_WINDOW).count()
    }
}

/// Where the peer stands: `live` its heartbeats heard now, `heard` when they last were.
#[derive(Debug, Clone, Copy)]
struct Seen {
    live: bool,
    /// The asking MAC is the live peer's.
    is_live_peer: bool,
    known: bool,
    heard: Option<Instant>,
    /// Its last heartbeat said that its firmware boots its disk first.
    disk_first: bool,
}

/// The decision for one ask, and the reason. Pure: `peer` is what is remembered of the asking
/// machine, brought up to date.
fn decide(ask: Ask, seen: Seen, peer: &mut Peer) -> (Decision, String) {
    if seen.live {
        return if seen.is_live_peer {
            (Decision::LocalBoot, "the live peer of this pair: boot from its disk".into())
        } else {
            (
                Decision::Ignore,
                "the pair has both its nodes; a stranger on the private link is not answered".into(),
            )
        };
    }
    if !seen.known {
        return (
            Decision::Recover,
            "a machine the pair has not seen, while the pair misses a node: offered recovery".into(),
        );
    }
    let imaged = peer.imaged_recently(ask.now);
    // Heard since this boot began: its disk started, and this is a new boot.
    if peer.boot.as_ref().is_some_and(|b| seen.heard.is_some_and(|h| h >= b.began)) {
        peer.boot = None;
    }
    let b = peer.boot.get_or_insert(Boot::starting(ask.now, false));
    b.last = ask.now;
    if b.last_xid == Some(ask.xid) {
        return (b.decision, SAME.into());
    }
    if b.evidence.is_none() {
        if b.reset {
            b.evidence = Some("it was reset after its disk did not start, and network-booted again".into());
        } else if seen.disk_first {
            b.evidence =
                Some("its firmware boots its disk first, so a network boot means its disk failed".into());
        } else if b.told_disk && ask.asker == Asker::Firmware && b.firmware_rounds > 0 {
            b.evidence =
                Some("its firmware went round its boot options again and its disk never started".into());
        }
    }
    if ask.asker == Asker::Firmware {
        b.firmware_rounds += 1;
    }
    b.last_xid = Some(ask.xid);
    if b.evidence.is_some() && peer.held.is_none() && imaged >= IMAGINGS_BEFORE_HOLD {
        peer.held = Some(ask.wall);
    }
    let (decision, why) = match (&b.evidence, peer.held) {
        (Some(e), Some(_)) => (
            Decision::LocalBoot,
            format!(
                "its disk does not boot ({e}), but it was imaged {IMAGINGS_BEFORE_HOLD} times within the hour: \
                 held for the operator (pairos pair approve MAC lets it go on)"
            ),
        ),
        (Some(e), None) => (Decision::Recover, format!("a known peer whose disk does not boot ({e}): offered recovery")),
        (None, _) => (Decision::LocalBoot, "a known peer, not live: told to boot its disk".into()),
    };
    b.decision = decision;
    if decision == Decision::LocalBoot && ask.asker == Asker::Ipxe {
        b.told_disk = true;
    }
    (decision, why)
}

/// What iPXE's word that the peer's local disk did not boot decides.
fn local_boot_failed(now: Instant, wall: SystemTime, seen: Seen, peer: &mut Peer) -> (Decision, String) {
    if seen.live || !seen.known {
        return (Decision::Ignore, "not a known peer that the pair misses".into());
    }
    let imaged = peer.imaged_recently(now);
    let b = peer.boot.get_or_insert(Boot::starting(now, true));
    b.evidence = Some("iPXE could not boot its disk".into());
    if peer.held.is_none() && imaged >= IMAGINGS_BEFORE_HOLD {
        peer.held = Some(wall);
    }
    if peer.held.is_some() {
        b.decision = Decision::LocalBoot;
        return (Decision::LocalBoot, "its disk does not boot, but it is held for the operator".into());
    }
    b.decision = Decision::Recover;
    (
        Decision::Recover,
        "a known peer whose disk does not boot (iPXE could not boot it): offered recovery".into(),
    )
}

/// Whether the peer of boot `b` is due for a reset at `now`, `wait` after its last ask (see
/// [`REJOIN_WAIT`]): told to boot its disk, not reset yet, no evidence yet, and its disk not
/// started since (`heard`: its heartbeats were last heard then).
fn due_for_reset(now: Instant, b: &Boot, heard: Option<Instant>, wait: Duration) -> bool {
    b.decision == Decision::LocalBoot
        && b.evidence.is_none()
        && !b.reset
        && now.saturating_duration_since(b.last) >= wait
        && heard.is_none_or(|h| h < b.began)
}

/// What the policy remembers of peers' network boots and imagings, shared with whoever learns
/// that a recovery finished and with the watch that resets a peer whose disk does not start.
#[derive(Debug, Clone, Default)]
pub struct BootMemory(Arc<Mutex<HashMap<String, Peer>>>);

impl BootMemory {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Peer>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The peer with `mac` finished a recovery at `now`: its next network boot is a new one,
    /// and its new disk comes first, however soon it asks. Returns how many times it was imaged
    /// within [`LOOP_WINDOW`].
    pub fn recovered(&self, mac: &str, now: Instant) -> usize {
        let mut peers = self.lock();
        let p = peers.entry(mac.to_ascii_lowercase()).or_default();
        p.boot = None;
        p.imaged.retain(|t| now.saturating_duration_since(*t) < LOOP_WINDOW);
        p.imaged.push(now);
        p.imaged.len()
    }

    /// The known peers due for a reset now, each said once: they are marked reset.
    pub fn due_for_reset(&self, now: Instant, heard: Option<Instant>, wait: Duration) -> Vec<String> {
        let mut due = Vec::new();
        for (mac, p) in self.lock().iter_mut() {
            // A held peer the operator released is reset at once: it waits in its firmware.
            let released = p.held.is_none();
            let is_due = |b: &Boot| {
                due_for_reset(now, b, heard, wait)
                    || (released && b.evidence.is_some() && b.decision == Decision::LocalBoot && !b.reset)
            };
            if let Some(b) = p.boot.as_mut().filter(|b| is_due(b)) {
                b.reset = true;
                due.push(mac.clone());
            }
        }
        due
    }

    /// The peers held for the operator, with the alarm's text.
    pub fn held(&self) -> Vec<(String, String)> {
        let mut held: Vec<(String, String)> = self
            .lock()
            .iter()
            .filter(|(_, p)| p.held.is_some())
            .map(|(mac, _)| (mac.clone(), held_alarm(mac)))
            .collect();
        held.sort();
        held
    }

    /// Releases the held peers the operator approved since they were held (`approved`: the
    /// MACs approved, and when the list was last written). Says whether any was released.
    fn release_approved(&self, approved: &(Vec<String>, Option<SystemTime>)) -> bool {
        let mut released = false;
        for (mac, p) in self.lock().iter_mut() {
            let approved_since = |since: SystemTime| {
                approved.1.is_some_and(|at| at >= since)
                    && approved.0.iter().any(|a| a.eq_ignore_ascii_case(mac))
            };
            if p.held.is_some_and(approved_since) {
                p.held = None;
                p.imaged.clear();
                released = true;
            }
        }
        released
    }
}

/// The alarm of a held peer.
pub fn held_alarm(mac: &str) -> String {
    format!(
        "{mac} was imaged {IMAGINGS_BEFORE_HOLD} times within the hour and its disk still does not boot: \
         it is not imaged again until the operator approves (pairos pair approve {mac})"
    )
}

#[derive(Debug, Clone)]
pub struct PairPolicy {
    state_dir: PathBuf,
    /// The operator's approvals (`pairos pair approve`).
    approved_file: PathBuf,
    liveness: Arc<Mutex<Liveness>>,
    status: Arc<Mutex<Status>>,
    boots: BootMemory,
}

impl PairPolicy {
    pub fn new(
        state_dir: PathBuf,
        approved_file: PathBuf,
        liveness: Arc<Mutex<Liveness>>,
        status: Arc<Mutex<Status>>,
        boots: BootMemory,
    ) -> PairPolicy {
        PairPolicy { state_dir, approved_file, liveness, status, boots }
    }

    /// Where the asking machine stands.
    fn seen(&self, mac: &str, now: Instant) -> Seen {
        let (live, peer_mac, heard, disk_first) = {
            let l = self.liveness.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            (l.live(now), l.peer_mac.clone(), l.last_heard(), l.peer_disk_first)
        };
        let is_peer = peer_mac.as_deref() == Some(mac);
        // Read each time: `pairos pair forget-peer` changes it under a running node.
        let known = is_peer || identity::known_peers(&self.state_dir).contains(mac);
        Seen {
            live,
            is_live_peer: is_peer && live,
            known,
            heard: if is_peer { heard } else { None },
            disk_first: is_peer && disk_first,
        }
    }

    /// Releases the held peers the operator approved, and brings the status's alarms up to
    /// date with the holds (each new hold said once on the console).
    pub fn update_holds(&self) {
        let approvals = (
            super::services::approved(&self.approved_file),
            std::fs::metadata(&self.approved_file).and_then(|m| m.modified()).ok(),
        );
        if self.boots.release_approved(&approvals) {
            crate::run::say("network boot: the operator approved a held peer: it is offered recovery again");
        }
        let held = self.boots.held();
        let shown = self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner).alarms.clone();
        let alarms: Vec<String> = held.iter().map(|(_, a)| a.clone()).collect();
        if alarms != shown {
            for (mac, alarm) in held.iter().filter(|(_, a)| !shown.contains(a)) {
                crate::run::say(format_args!("network boot: {mac} held: {alarm}"));
            }
            status::update(&self.status, |s| s.alarms = alarms);
        }
    }

    fn remember(&self, mac: &str, decision: Decision, why: &str) {
        let line = format!("{mac}: {decision:?}: {why}");
        // A machine that keeps asking (one the pair ignores) writes the status once, not per ask.
        let repeated =
            self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner).network_boot.last()
                == Some(&line);
        if why != SAME && !repeated {
            status::update(&self.status, |s| {
                s.network_boot.push(line);
                let excess = s.network_boot.len().saturating_sub(SHOWN);
                s.network_boot.drain(..excess);
            });
        }
    }
}

impl Policy for PairPolicy {
    fn decide(&self, client: &ClientInfo) -> (Decision, String) {
        self.update_holds();
        let mac = client.mac_string();
        let ask =
            Ask { now: Instant::now(), wall: SystemTime::now(), asker: client.asker(), xid: client.xid };
        let seen = self.seen(&mac, ask.now);
        let (decision, why) = {
            let mut peers = self.boots.lock();
            if seen.known && !seen.live {
                decide(ask, seen, peers.entry(mac.clone()).or_default())
            } else {
                decide(ask, seen, &mut Peer::default())
            }
        };
        self.remember(&mac, decision, &why);
        self.update_holds();
        (decision, why)
    }

    fn serves_plain_clients(&self) -> bool {
        false
    }

    fn local_boot_failed(&self, mac: &str) -> (Decision, String) {
        self.update_holds();
        let now = Instant::now();
        let seen = self.seen(mac, now);
        let (decision, why) = if seen.known && !seen.live {
            local_boot_failed(
                now,
                SystemTime::now(),
                seen,
                self.boots.lock().entry(mac.to_owned()).or_default(),
            )
        } else {
            local_boot_failed(now, SystemTime::now(), seen, &mut Peer::default())
        };
        crate::run::say(format_args!(
            "network boot: {mac}: iPXE could not boot its disk: {decision:?}: {why}"
        ));
        self.remember(mac, decision, &why);
        self.update_holds();
        (decision, why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: &str = "52:54:00:12:04:00";

    fn ask(now: Instant, asker: Asker, xid: u32) -> Ask {
        Ask { now, wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000), asker, xid }
    }

    fn silent(heard: Option<Instant>) -> Seen {
        Seen { live: false, is_live_peer: false, known: true, heard, disk_first: false }
    }

    #[test]
    fn network_boot_goes_by_membership() {
        let t0 = Instant::now();
        let live = |is_live_peer, known| Seen {
            live: true,
            is_live_peer,
            known,
            heard: Some(t0),
            disk_first: false,
        };
        let mut p = Peer::default();
        let a = ask(t0, Asker::Ipxe, 1);
        // The pair has both its nodes: its peer boots its disk, a stranger gets nothing.
        assert_eq!(decide(a, live(true, true), &mut p).0, Decision::LocalBoot);
        assert_eq!(decide(a, live(false, false), &mut p).0, Decision::Ignore);
        assert_eq!(
            decide(a, live(false, true), &mut p).0,
            Decision::Ignore,
            "a remembered MAC, not the live peer"
        );
        // The pair misses a node: a stranger is offered recovery.
        let stranger =
            Seen { live: false, is_live_peer: false, known: false, heard: None, disk_first: false };
        assert_eq!(decide(a, stranger, &mut p).0, Decision::Recover);
        assert!(p.boot.is_none(), "nothing is remembered of a stranger");
    }

    /// OVMF booting the network first with every option on: PXE (the firmware's, then iPXE),
    /// then IPv6 and HTTP boot, for minutes, then the disk. Never offered recovery for it.
    #[test]
    fn a_known_peer_is_told_to_boot_its_disk_on_every_option_for_as_long_as_they_take() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut p = Peer::default();
        let mut go = |s, asker, xid| decide(ask(at(s), asker, xid), silent(None), &mut p);
        // The NIC's iPXE ROM, then the firmware's PXE, which loads iPXE again (as the lab's OVMF).
        assert_eq!(go(0, Asker::Ipxe, 7).0, Decision::LocalBoot, "the ROM's iPXE: told to boot the disk");
        assert_eq!(go(10, Asker::Firmware, 1).0, Decision::LocalBoot);
        assert_eq!(go(14, Asker::Firmware, 1), (Decision::LocalBoot, SAME.into()), "its REQUEST");
        assert_eq!(go(20, Asker::Ipxe, 2).0, Decision::LocalBoot, "iPXE again, in the same round");
        assert_eq!(go(25, Asker::Ipxe, 2).0, Decision::LocalBoot);
        // Minutes later the firmware's HTTP boot asks, several exchanges: still no offer.
        for (i, s) in [130, 150, 190, 260, 400].into_iter().enumerate() {
            assert_eq!(go(s, Asker::HttpBoot, 10 + i as u32).0, Decision::LocalBoot, "HTTP boot at {s} s");
        }
        assert_eq!(go(900, Asker::Ipxe, 3).0, Decision::LocalBoot, "another iPXE of the same boot");
        assert!(p.boot.as_ref().is_some_and(|b| b.evidence.is_none()));
    }

    #[test]
    fn a_known_peer_is_offered_recovery_on_evidence_only() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // The firmware comes round again (a new exchange from its PXE) without the disk starting.
        let mut p = Peer::default();
        decide(ask(at(0), Asker::Firmware, 1), silent(None), &mut p);
        decide(ask(at(20), Asker::Ipxe, 2), silent(None), &mut p);
        assert_eq!(
            decide(ask(at(25), Asker::Ipxe, 5), silent(None), &mut p).0,
            Decision::LocalBoot,
            "iPXE again"
        );
        let (d, why) = decide(ask(at(30), Asker::Firmware, 3), silent(None), &mut p);
        assert_eq!(d, Decision::Recover, "{why}");
        assert!(why.contains("went round its boot options again"), "{why}");
        // Its iPXE, with the xid iPXE used in the round before (iPXE repeats them): a new
        // exchange all the same.
        let (d, why) = decide(ask(at(50), Asker::Ipxe, 2), silent(None), &mut p);
        assert_eq!(d, Decision::Recover, "{why}");
        assert_ne!(why, SAME);

        // The same, but its disk started in between (heard): a new boot, the disk first.
        let mut p = Peer::default();
        decide(ask(at(0), Asker::Firmware, 1), silent(None), &mut p);
        decide(ask(at(20), Asker::Ipxe, 2), silent(None), &mut p);
        let heard = silent(Some(at(60)));
        assert_eq!(decide(ask(at(300), Asker::Firmware, 3), heard, &mut p).0, Decision::LocalBoot);
        assert_eq!(decide(ask(at(320), Asker::Ipxe, 4), heard, &mut p).0, Decision::LocalBoot);

        // Firmware that starts with HTTP boot: an unanswered HTTP boot retries with new xids, so
        // that is no evidence; the reset is.
        let mut p = Peer::default();
        for (s, xid) in [(0, 1), (40, 2), (90, 3)] {
            assert_eq!(decide(ask(at(s), Asker::HttpBoot, xid), silent(None), &mut p).0, Decision::LocalBoot);
        }
        let b = p.boot.clone().expect("a boot");
        assert!(!due_for_reset(at(90) + REJOIN_WAIT - Duration::from_secs(1), &b, None, REJOIN_WAIT));
        assert!(due_for_reset(at(90) + REJOIN_WAIT, &b, None, REJOIN_WAIT));
        assert!(!due_for_reset(at(90) + REJOIN_WAIT, &b, Some(at(100)), REJOIN_WAIT), "its disk started");
        p.boot.as_mut().expect("a boot").reset = true;
        let (d, why) = decide(ask(at(400), Asker::HttpBoot, 9), silent(None), &mut p);
        assert_eq!(d, Decision::Recover, "{why}");
        assert!(why.contains("reset after its disk did not start"), "{why}");

        // Its firmware boots its disk first (so its heartbeats said): any network boot is evidence.
        let mut p = Peer::default();
        let first = Seen { disk_first: true, ..silent(Some(at(0))) };
        let (d, why) = decide(ask(at(100), Asker::Ipxe, 1), first, &mut p);
        assert_eq!(d, Decision::Recover, "{why}");
        assert!(why.contains("boots its disk first"), "{why}");

        // BIOS: iPXE's local boot fails; recovery at once.
        let mut p = Peer::default();
        decide(ask(at(0), Asker::Ipxe, 1), silent(None), &mut p);
        let wall = SystemTime::now();
        assert_eq!(local_boot_failed(at(5), wall, silent(None), &mut p).0, Decision::Recover);
        assert_eq!(
            local_boot_failed(at(5), wall, Seen { known: false, ..silent(None) }, &mut Peer::default()).0,
            Decision::Ignore,
            "a stranger's word about its disk is not acted on"
        );
    }

    #[test]
    fn a_node_imaged_twice_within_the_hour_is_held_until_approved() {
        let memory = BootMemory::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let wiped = |memory: &BootMemory, s: u64, xid: u32| {
            let mut peers = memory.lock();
            let p = peers.entry(MAC.into()).or_default();
            decide(ask(at(s), Asker::Firmware, xid), silent(None), p);
            decide(ask(at(s + 20), Asker::Ipxe, xid + 1), silent(None), p);
            decide(ask(at(s + 60), Asker::Firmware, xid + 2), silent(None), p)
        };
        // Imaged once: a wiped disk is healed.
        assert_eq!(memory.recovered(MAC, at(0)), 1);
        assert_eq!(wiped(&memory, 100, 10).0, Decision::Recover);
        assert!(memory.held().is_empty());
        // Imaged twice: the second time it is held, and told to boot its disk.
        assert_eq!(memory.recovered(MAC, at(600)), 2);
        assert!(memory.held().is_empty(), "two imagings are not yet a loop: its disk may boot now");
        let (d, why) = wiped(&memory, 700, 20);
        assert_eq!(d, Decision::LocalBoot, "{why}");
        assert!(why.contains("held for the operator"), "{why}");
        assert_eq!(memory.held().len(), 1);
        assert!(memory.held()[0].1.contains("pairos pair approve 52:54:00:12:04:00"));
        let wall = ask(at(0), Asker::Ipxe, 0).wall;
        assert_eq!(
            local_boot_failed(at(770), wall, silent(None), memory.lock().get_mut(MAC).expect("there")).0,
            Decision::LocalBoot
        );

        // An approval from before the hold does not release it; one given after does.
        let before = (vec![MAC.to_owned()], Some(wall - Duration::from_secs(1)));
        assert!(!memory.release_approved(&before));
        assert!(!memory.release_approved(&(Vec::new(), Some(wall + Duration::from_secs(5)))), "another MAC");
        let after = (vec![MAC.to_ascii_uppercase()], Some(wall + Duration::from_secs(5)));
        assert!(memory.release_approved(&after));
        assert!(memory.held().is_empty());
        let mut peers = memory.lock();
        let p = peers.get_mut(MAC).expect("remembered");
        assert_eq!(decide(ask(at(800), Asker::Firmware, 40), silent(None), p).0, Decision::Recover);
        drop(peers);

        // Imagings an hour apart are no loop.
        let memory = BootMemory::default();
        memory.recovered(MAC, t0);
        memory.recovered(MAC, t0 + LOOP_WINDOW + Duration::from_secs(1));
        assert_eq!(wiped(&memory, LOOP_WINDOW.as_secs() + 100, 50).0, Decision::Recover);
    }

    #[test]
    fn a_peer_whose_disk_does_not_start_is_reset_once() {
        let t0 = Instant::now();
        let memory = BootMemory::default();
        memory.lock().entry(MAC.into()).or_default();
        {
            let mut peers = memory.lock();
            let p = peers.get_mut(MAC).expect("there");
            decide(ask(t0, Asker::Firmware, 1), silent(None), p);
            decide(ask(t0, Asker::Ipxe, 2), silent(None), p);
        }
        assert!(memory.due_for_reset(t0 + Duration::from_secs(60), None, REJOIN_WAIT).is_empty());
        assert_eq!(memory.due_for_reset(t0 + REJOIN_WAIT, None, REJOIN_WAIT), [MAC]);
        assert!(memory.due_for_reset(t0 + REJOIN_WAIT * 2, None, REJOIN_WAIT).is_empty(), "once");
        let mut peers = memory.lock();
        let p = peers.get_mut(MAC).expect("there");
        let back = t0 + REJOIN_WAIT + Duration::from_secs(40);
        assert_eq!(decide(ask(back, Asker::Firmware, 7), silent(None), p).0, Decision::Recover);
    }
}
