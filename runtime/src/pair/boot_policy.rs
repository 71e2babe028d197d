//! Who is offered what when it network-boots on the private link: by membership, not history.
//!
//! - While the peer is live (its heartbeats are heard), the peer is told to boot its disk, and
//!   any other machine is not answered: the pair has both its nodes.
//! - While the peer is silent, a known peer (one this node installed, or whose heartbeats it
//!   heard) is told to boot its disk: both nodes may be starting after a power cut. If it
//!   network-boots again within [`RETRY_WINDOW`] without having joined, its disk evidently does
//!   not boot, and it is offered recovery. After a recovery, its new disk comes first again.
//! - A machine the pair has never seen is offered recovery only while the pair misses a node.
//!
//! One boot asks DHCP many times (firmware PXE, iPXE, then the firmware's other network
//! options, for minutes under emulation), so asks less than [`SAME_BOOT`] apart are one network
//! boot.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pairos_pxe::client::ClientInfo;
use pairos_pxe::policy::{Decision, Policy};

use super::heartbeat::Liveness;
use super::identity;
use super::status::{self, Status};

/// A known peer that network-boots again within this long of its last try, without having
/// joined, is offered recovery.
pub const RETRY_WINDOW: Duration = Duration::from_secs(5 * 60);
/// By default, a known peer told to boot its disk that has not joined this long after its last
/// ask is reset through its BMC, once: its disk evidently does not boot (a swapped, blank disk
/// drops the firmware into its shell), and its next network boot, within [`RETRY_WINDOW`], is
/// offered recovery. A disk that boots joins well within it, under emulation too. The pair's
/// `timing.rejoin_wait_ms` sets it.
pub const REJOIN_WAIT: Duration = Duration::from_secs(3 * 60);
/// DHCP asks less than this apart belong to one network boot.
pub const SAME_BOOT: Duration = Duration::from_secs(60);
/// Decisions kept in the status.
const SHOWN: usize = 8;
/// The reason given for every DHCP ask of a network boot after its first.
const SAME: &str = "the same network boot";

/// What the policy remembers of a known peer's network boots.
#[derive(Debug, Clone, Copy)]
struct Boots {
    /// When this network boot began.
    began: Instant,
    /// Its last DHCP ask.
    last: Instant,
    decision: Decision,
    /// The peer was reset after this boot (it did not join).
    reset: bool,
}

/// The pure decision, for tests and the simulator: `known` says whether the MAC is a peer of
/// this pair, `previous` what was decided for its last network boot.
fn decide(
    now: Instant,
    live: bool,
    peer_mac_live: bool,
    known: bool,
    joined_since: Option<Instant>,
    previous: Option<Boots>,
) -> (Decision, &'static str) {
    if live {
        return if peer_mac_live {
            (Decision::LocalBoot, "the live peer of this pair: boot from its disk")
        } else {
            (Decision::Ignore, "the pair has both its nodes; a stranger on the private link is not answered")
        };
    }
    if !known {
        return (
            Decision::Recover,
            "a machine the pair has not seen, while the pair misses a node: offered recovery",
        );
    }
    match previous {
        // Asks close together are one boot, unless the peer joined in between (a new boot).
        Some(b) if now - b.last < SAME_BOOT && joined_since.is_none_or(|j| j < b.last) => (b.decision, SAME),
        Some(b)
            if b.decision == Decision::LocalBoot
                && now - b.last < RETRY_WINDOW
                && joined_since.is_none_or(|j| j < b.began) =>
        {
            (
            Decision::Recover,
                "a known peer that network-booted again without joining: its disk does not boot; offered recovery",
            )
        }
        // After a recovery (or long after the last try), the disk first.
        _ => (Decision::LocalBoot, "a known peer, not live: told to boot its disk"),
    }
}

/// Whether the peer of boot `b` is due for a reset at `now`, `wait` after its last ask (see
/// [`REJOIN_WAIT`]): told to boot its disk, not reset yet, silent since, and still in time for
/// its next boot to be offered recovery. `heard` is when its heartbeats were last heard.
fn due_for_reset(now: Instant, b: &Boots, heard: Option<Instant>, wait: Duration) -> bool {
    b.decision == Decision::LocalBoot
        && !b.reset
        && now - b.last >= wait
        && now - b.last < RETRY_WINDOW
        && heard.is_none_or(|h| h < b.began)
}

/// What the policy remembers of known peers' network boots, shared with whoever learns that a
/// boot ended otherwise (a recovery that finished) and with the watch that resets a peer whose
/// disk does not boot.
#[derive(Debug, Clone, Default)]
pub struct BootMemory(Arc<Mutex<HashMap<String, Boots>>>);

impl BootMemory {
    /// The peer with `mac` finished a recovery: its next network boot is a new one, and its new
    /// disk comes first, however soon it asks.
    pub fn recovered(&self, mac: &str) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&mac.to_ascii_lowercase());
    }

    /// The known peers due for a reset now, each said once: they are marked reset.
    pub fn due_for_reset(&self, now: Instant, heard: Option<Instant>, wait: Duration) -> Vec<String> {
        let mut boots = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut due = Vec::new();
        for (mac, b) in boots.iter_mut() {
            if due_for_reset(now, b, heard, wait) {
                b.reset = true;
                due.push(mac.clone());
            }
        }
        due
    }
}

#[derive(Debug)]
pub struct PairPolicy {
    state_dir: PathBuf,
    liveness: Arc<Mutex<Liveness>>,
    status: Arc<Mutex<Status>>,
    boots: BootMemory,
}

impl PairPolicy {
    pub fn new(
        state_dir: PathBuf,
        liveness: Arc<Mutex<Liveness>>,
        status: Arc<Mutex<Status>>,
        boots: BootMemory,
    ) -> PairPolicy {
        PairPolicy { state_dir, liveness, status, boots }
    }
}

impl Policy for PairPolicy {
    fn decide(&self, client: &ClientInfo) -> (Decision, String) {
        let mac = client.mac_string();
        let now = Instant::now();
        let (live, peer_mac, heard) = {
            let l = self.liveness.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            (l.live(now), l.peer_mac.clone(), l.last_heard())
        };
        let is_peer = peer_mac.as_deref() == Some(mac.as_str());
        // Read each time: `pairos pair forget-peer` changes it under a running node.
        let known = is_peer || identity::known_peers(&self.state_dir).contains(&mac);
        let mut boots = self.boots.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let previous = boots.get(&mac).copied();
        let joined = if is_peer { heard } else { None };
        let (decision, why) = decide(now, live, is_peer && live, known, joined, previous);
        if known && !live {
            let same = previous.filter(|_| why == SAME);
            let (began, reset) = same.map_or((now, false), |b| (b.began, b.reset));
            boots.insert(mac.clone(), Boots { began, last: now, decision, reset });
        }
        drop(boots);
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
        (decision, why.to_owned())
    }

    fn serves_plain_clients(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_boot_goes_by_membership() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // The pair has both its nodes: its peer boots its disk, a stranger gets nothing.
        assert_eq!(decide(t0, true, true, true, Some(t0), None).0, Decision::LocalBoot);
        assert_eq!(decide(t0, true, false, false, None, None).0, Decision::Ignore);
        assert_eq!(
            decide(t0, true, false, true, None, None).0,
            Decision::Ignore,
            "a remembered MAC that is not the live peer"
        );
        // The pair misses a node: a stranger is offered recovery.
        assert_eq!(decide(t0, false, false, false, None, None).0, Decision::Recover);
        // A known peer after a power cut: its disk first.
        let first = decide(t0, false, false, true, None, None);
        assert_eq!(first.0, Decision::LocalBoot);
        let b = Some(Boots { began: t0, last: t0, decision: first.0, reset: false });
        assert_eq!(
            decide(at(30), false, false, true, None, b).0,
            Decision::LocalBoot,
            "iPXE asking in the same boot"
        );
        // The firmware's other network options keep asking for minutes: still the same boot.
        let long = Some(Boots { began: t0, last: at(150), decision: first.0, reset: false });
        assert_eq!(
            decide(at(180), false, false, true, None, long),
            (Decision::LocalBoot, "the same network boot")
        );
        // Back within minutes without joining: the disk does not boot.
        assert_eq!(decide(at(200), false, false, true, None, b).0, Decision::Recover);
        // It joined in between (heard after that boot began): its disk boots; disk again.
        assert_eq!(decide(at(200), false, false, true, Some(at(100)), b).0, Decision::LocalBoot);
        // Joined in between, then back within the minute (killed, disk wiped): a new boot.
        let joined = decide(at(170), false, false, true, Some(at(160)), long);
        assert_eq!(joined, (Decision::LocalBoot, "a known peer, not live: told to boot its disk"));
        // After that recovery, the next network boot is told to boot the new disk.
        let recovered =
            Some(Boots { began: at(200), last: at(210), decision: Decision::Recover, reset: false });
        assert_eq!(decide(at(330), false, false, true, None, recovered).0, Decision::LocalBoot);
        // Long after: a new power cut, the disk first again.
        assert_eq!(decide(at(400), false, false, true, None, b).0, Decision::LocalBoot);
    }

    #[test]
    fn a_peer_whose_disk_does_not_boot_is_reset_once_in_time_for_recovery() {
        let t0 = Instant::now();
        let told = Boots { began: t0, last: t0, decision: Decision::LocalBoot, reset: false };
        let early = t0 + REJOIN_WAIT - Duration::from_secs(60);
        assert!(!due_for_reset(early, &told, None, REJOIN_WAIT), "it may still be booting its disk");
        assert!(due_for_reset(t0 + REJOIN_WAIT, &told, None, REJOIN_WAIT));
        assert!(
            !due_for_reset(t0 + REJOIN_WAIT, &told, Some(t0 + Duration::from_secs(50)), REJOIN_WAIT),
            "it joined"
        );
        assert!(
            !due_for_reset(t0 + RETRY_WINDOW, &told, None, REJOIN_WAIT),
            "too late: its next boot is a new one"
        );
        let offered = Boots { decision: Decision::Recover, ..told };
        assert!(
            !due_for_reset(t0 + REJOIN_WAIT, &offered, None, REJOIN_WAIT),
            "only a peer told to boot its disk"
        );

        // Once: the memory marks it; and the reset boot, asking soon after, is offered recovery.
        let memory = BootMemory::default();
        memory.0.lock().expect("not poisoned").insert("52:54:00:12:04:00".into(), told);
        assert_eq!(memory.due_for_reset(t0 + REJOIN_WAIT, None, REJOIN_WAIT), ["52:54:00:12:04:00"]);
        assert!(memory
            .due_for_reset(t0 + REJOIN_WAIT + Duration::from_secs(5), None, REJOIN_WAIT)
            .is_empty());
        let after = t0 + REJOIN_WAIT + Duration::from_secs(40);
        let previous = memory.0.lock().expect("not poisoned").get("52:54:00:12:04:00").copied();
        assert_eq!(decide(after, false, false, true, None, previous).0, Decision::Recover);
    }
}
