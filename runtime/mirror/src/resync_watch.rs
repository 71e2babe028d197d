//! Stuck resyncs, noticed and cycled: pure, the caller gives the time and what it sees.
//!
//! A volume is stuck when, for longer than the stall time:
//! - a resync runs (SyncSource, SyncTarget) and what is out of sync does not shrink;
//! - the connection sits in the bitmap exchange (WFBitMapS/T, WFSyncUUID, StartingSyncS/T);
//! - DRBD keeps trying to connect (Connecting, WFConnection, ...) while the pair daemon hears the
//!   peer: the peer is there, DRBD's link to it is not.
//!
//! A stuck volume is cycled (disconnected and connected again by the caller). Each cycle
//! doubles the time the next one needs, up to [`MAX_WAIT`]: a volume that stays stuck is
//! cycled ever more rarely, never in a loop. A volume that is back in sync with its peer starts
//! afresh. A paused resync (by the operator or by DRBD's resync-after) and a StandAlone
//! volume (a split brain, or taken apart by hand) are not stuck: they wait for a decision.

/// The longest wait between two cycles of one volume.
pub const MAX_WAIT: u64 = 10 * 60 * 1000;

/// What the caller sees of a volume in one round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen<'a> {
    pub connection: &'a str,
    pub replication: &'a str,
    pub out_of_sync_kib: u64,
    /// The pair daemon hears the peer on either link.
    pub peer_live: bool,
}

/// What is wrong, in words and in kind (a change of kind starts the clock again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trouble {
    NoProgress,
    BitmapExchange,
    NotConnecting,
}

impl Trouble {
    fn of(seen: &Seen) -> Option<Trouble> {
        match (seen.connection, seen.replication) {
            (_, "SyncSource" | "SyncTarget") => Some(Trouble::NoProgress),
            (_, "WFBitMapS" | "WFBitMapT" | "WFSyncUUID" | "StartingSyncS" | "StartingSyncT") => {
                Some(Trouble::BitmapExchange)
            }
            (
                "Connecting" | "WFConnection" | "Unconnected" | "Timeout" | "BrokenPipe" | "NetworkFailure"
                | "ProtocolError" | "TearDown" | "WFReportParams",
                _,
            ) if seen.peer_live => Some(Trouble::NotConnecting),
            _ => None,
        }
    }

    fn words(self) -> &'static str {
        match self {
            Trouble::NoProgress => "its resync made no progress",
            Trouble::BitmapExchange => "its connection is stuck exchanging bitmaps",
            Trouble::NotConnecting => "DRBD cannot connect to the peer, which the pair hears",
        }
    }
}

/// A cycle the caller is to carry out now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// Why, in words ("its resync made no progress for 60 s").
    pub why: String,
    /// The how-manyth since the volume was last in sync.
    pub attempt: u32,
    /// How long the volume must stay stuck before the next cycle, in ms.
    pub next_wait: u64,
}

/// One volume's watch.
#[derive(Debug, Clone)]
pub struct VolumeWatch {
    stall: u64,
    trouble: Option<(Trouble, u64)>,
    /// The last out-of-sync figure seen during a resync.
    out_of_sync: u64,
    attempts: u32,
}

impl VolumeWatch {
    /// `stall`: how long, in ms, a volume may be stuck before its first cycle.
    pub fn new(stall: u64) -> VolumeWatch {
        VolumeWatch { stall: stall.max(1), trouble: None, out_of_sync: 0, attempts: 0 }
    }

    /// How long the volume must now be stuck before it is cycled.
    fn wait(&self) -> u64 {
        self.stall.saturating_mul(1 << self.attempts.min(20)).min(MAX_WAIT.max(self.stall))
    }

    /// Takes what is seen at `now` (ms); a cycle when the volume has been stuck long enough.
    pub fn see(&mut self, now: u64, seen: &Seen) -> Option<Cycle> {
        if seen.connection == "Connected" && seen.replication == "Established" && seen.out_of_sync_kib == 0 {
            self.attempts = 0;
        }
        let Some(trouble) = Trouble::of(seen) else {
            self.trouble = None;
            return None;
        };
        let progressed = trouble == Trouble::NoProgress && seen.out_of_sync_kib < self.out_of_sync;
        self.out_of_sync = seen.out_of_sync_kib;
        let since = match self.trouble {
            Some((t, since)) if t == trouble && !progressed => since,
            _ => now,
        };
        self.trouble = Some((trouble, since));
        let stuck = now.saturating_sub(since);
        if stuck < self.wait() {
            return None;
        }
        self.attempts += 1;
        self.trouble = Some((trouble, now));
        Some(Cycle {
            why: format!("{} for {} s", trouble.words(), stuck / 1000),
            attempt: self.attempts,
            next_wait: self.wait(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resync(oos: u64) -> Seen<'static> {
        Seen { connection: "Connected", replication: "SyncTarget", out_of_sync_kib: oos, peer_live: true }
    }

    const S: u64 = 1000;

    #[test]
    fn a_resync_that_progresses_is_left_alone_and_one_that_stalls_is_cycled() {
        let mut w = VolumeWatch::new(60 * S);
        for (i, oos) in [1000, 900, 800, 700].into_iter().enumerate() {
            assert_eq!(w.see(i as u64 * 50 * S, &resync(oos)), None, "progress at round {i}");
        }
        // 700 KiB left, and no progress from 150 s on.
        assert_eq!(w.see(200 * S, &resync(700)), None);
        let c = w.see(210 * S, &resync(700)).expect("stuck for 60 s");
        assert_eq!((c.attempt, c.next_wait), (1, 120 * S));
        assert!(c.why.contains("no progress for 60 s"), "{}", c.why);
    }

    #[test]
    fn cycles_back_off_to_a_bound_and_start_afresh_once_in_sync() {
        let mut w = VolumeWatch::new(10 * S);
        let stuck =
            Seen { connection: "Connected", replication: "WFBitMapT", out_of_sync_kib: 5, peer_live: true };
        let mut cycles = Vec::new();
        // Rounds every 2 s for an hour, stuck all along.
        for t in (0..3600 * S).step_by(2000) {
            if let Some(c) = w.see(t, &stuck) {
                cycles.push((t, c));
            }
        }
        let gaps: Vec<u64> = cycles.windows(2).map(|p| (p[1].0 - p[0].0) / S).collect();
        assert_eq!(&gaps[..6], [20, 40, 80, 160, 320, 600], "doubling, then bounded at 10 minutes");
        assert!(gaps.iter().all(|g| *g <= MAX_WAIT / S), "{gaps:?}");
        assert!(cycles.len() < 12, "never a loop: {} cycles in an hour", cycles.len());
        assert_eq!(cycles[0].1.attempt, 1);
        assert!(cycles[0].1.why.contains("exchanging bitmaps"), "{}", cycles[0].1.why);

        // In sync again: the next trouble gets the first wait again.
        let synced =
            Seen { connection: "Connected", replication: "Established", out_of_sync_kib: 0, peer_live: true };
        assert_eq!(w.see(3600 * S, &synced), None);
        assert_eq!(w.see(3602 * S, &stuck), None);
        assert_eq!(w.see(3612 * S, &stuck).map(|c| c.attempt), Some(1));
    }

    #[test]
    fn connecting_counts_only_while_the_peer_is_heard_and_waiting_states_never() {
        let mut w = VolumeWatch::new(10 * S);
        let away = Seen { connection: "WFConnection", replication: "", out_of_sync_kib: 0, peer_live: false };
        for t in (0..600 * S).step_by(2000) {
            assert_eq!(w.see(t, &away), None, "the peer is away: DRBD waits for it");
        }
        let here = Seen { peer_live: true, ..away };
        assert_eq!(w.see(600 * S, &here), None);
        let c = w.see(610 * S, &here).expect("the peer is heard and DRBD cannot reach it");
        assert!(c.why.contains("cannot connect"), "{}", c.why);

        let mut w = VolumeWatch::new(10 * S);
        for (connection, replication) in
            [("StandAlone", ""), ("Connected", "PausedSyncT"), ("Connected", "Established")]
        {
            let s = Seen { connection, replication, out_of_sync_kib: 9, peer_live: true };
            for t in (0..100 * S).step_by(2000) {
                assert_eq!(w.see(t, &s), None, "{connection} {replication}");
            }
        }
    }
}
