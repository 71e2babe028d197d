//! A workload's restart budget, as LifeKeeper's local recovery does it: a failed workload is
//! restarted on this node up to `times` within `within_minutes`; one failure more and the pair
//! moves to the peer, if the peer is healthy and up to date. A workload that used up its
//! budget on the peer too (it was moved here for that) is not bounced back: it is marked
//! failed, with an alarm, and the pair stays put. Pure: times are seconds on any clock that
//! only goes forward.

use std::collections::VecDeque;

use super::spec::Restart;

/// What to do about one failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Restart it here: this is restart `attempt` of `times` in the window.
    Restart { attempt: u32, times: u32 },
    /// The budget here is spent: hand the pair over to the peer.
    MoveToPeer,
    /// The budget is spent and the peer cannot take it (or spent its own): stop trying.
    Failed { why: String },
}

/// The peer, as the pair daemon sees it when a workload fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// Heard, healthy, and its volumes are up to date with nothing out of sync.
    pub can_take: bool,
    /// This node has the role because the same workload spent its budget on the peer.
    pub spent_its_budget: bool,
}

/// One workload's restarts on this node.
#[derive(Debug, Clone)]
pub struct Budget {
    policy: Restart,
    /// When each restart in the window happened.
    restarts: VecDeque<u64>,
}

impl Budget {
    pub fn new(policy: Restart) -> Self {
        Budget { policy, restarts: VecDeque::new() }
    }

    /// Restarts still allowed in the window at `now`.
    pub fn left(&mut self, now: u64) -> u32 {
        self.forget_before(now);
        self.policy.times.saturating_sub(self.restarts.len() as u32)
    }

    fn forget_before(&mut self, now: u64) {
        let window = u64::from(self.policy.within_minutes) * 60;
        while self.restarts.front().is_some_and(|&t| t + window <= now) {
            self.restarts.pop_front();
        }
    }

    /// The workload failed at `now` (exited, or failed its health check enough times).
    pub fn on_failure(&mut self, now: u64, peer: Peer) -> Decision {
        if self.left(now) > 0 {
            self.restarts.push_back(now);
            return Decision::Restart { attempt: self.restarts.len() as u32, times: self.policy.times };
        }
        let spent = format!(
            "it failed {} times within {} minutes here",
            self.policy.times + 1,
            self.policy.within_minutes
        );
        if peer.spent_its_budget {
            Decision::Failed { why: format!("{spent}, and it had spent its restarts on the peer too") }
        } else if peer.can_take {
            Decision::MoveToPeer
        } else {
            Decision::Failed {
                why: format!(
                    "{spent}, and the peer cannot take the role (not heard, not healthy, or not up to date)"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER_OK: Peer = Peer { can_take: true, spent_its_budget: false };

    #[test]
    fn three_restarts_in_the_window_then_the_pair_moves() {
        let mut b = Budget::new(Restart { times: 3, within_minutes: 10 });
        for (t, attempt) in [(0, 1), (60, 2), (120, 3)] {
            assert_eq!(b.on_failure(t, PEER_OK), Decision::Restart { attempt, times: 3 });
        }
        assert_eq!(b.on_failure(180, PEER_OK), Decision::MoveToPeer);
        // Ten minutes after the first restart, one restart is free again.
        assert_eq!(b.left(600), 1);
        assert_eq!(b.on_failure(600, PEER_OK), Decision::Restart { attempt: 3, times: 3 });
    }

    #[test]
    fn a_workload_failing_on_both_nodes_is_not_bounced() {
        let mut b = Budget::new(Restart { times: 1, within_minutes: 5 });
        let moved_here = Peer { can_take: true, spent_its_budget: true };
        assert_eq!(b.on_failure(0, moved_here), Decision::Restart { attempt: 1, times: 1 });
        let d = b.on_failure(10, moved_here);
        assert!(matches!(&d, Decision::Failed { why } if why.contains("on the peer too")), "{d:?}");
        let mut alone = Budget::new(Restart { times: 0, within_minutes: 5 });
        let d = alone.on_failure(0, Peer { can_take: false, spent_its_budget: false });
        assert!(matches!(&d, Decision::Failed { why } if why.contains("cannot take")), "{d:?}");
    }
}
