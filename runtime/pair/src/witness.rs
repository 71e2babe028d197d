//! A witness's rule: one lease per pair, held by one node at a time, until it expires or its
//! holder gives it back. `pairos witness` keeps one [`Witness`] per pair; the simulator keeps
//! the same ones, so the rule the service answers by is the rule the simulator checks.
//!
//! A lease is held by a node (by name), whatever epoch it names: the holder renews it, in
//! whatever epoch it acts or claims, and nobody else gets it until it runs out. Time is the
//! witness's own monotonic clock in milliseconds. After a restart the witness does not know
//! how long ago its last grant was, so the last holder keeps its lease for a whole lease from
//! the restart ([`Witness::restarted`]): a grant is never shortened by a restart.

/// What the witness answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The asker holds the lease for `lease_ms` from when the witness received the request.
    Granted { epoch: u64, lease_ms: u64 },
    /// Another node holds it, for `epoch`, `remaining_ms` longer unless renewed.
    Refused { holder: String, epoch: u64, remaining_ms: u64 },
}

/// The lease as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub holder: String,
    pub epoch: u64,
    /// Until when (the witness's clock); `None` once given back.
    pub until: Option<u64>,
}

/// One pair's lease.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Witness {
    lease: Option<Lease>,
}

impl Witness {
    /// After a restart, with the last grant as it was kept (holder and epoch): it holds for
    /// `lease_ms` from `now`, the longest any grant could still have to run.
    pub fn restarted(last: Option<(String, u64)>, now: u64, lease_ms: u64) -> Witness {
        Witness { lease: last.map(|(holder, epoch)| Lease { holder, epoch, until: Some(now + lease_ms) }) }
    }

    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// `node` asks for (or renews) the lease for `epoch`, for `lease_ms`. Granted when nobody
    /// else holds a lease that runs past `now`.
    pub fn ask(&mut self, now: u64, node: &str, epoch: u64, lease_ms: u64) -> Answer {
        if let Some(l) = &self.lease {
            let running = l.until.is_some_and(|t| t > now);
            if running && l.holder != node {
                return Answer::Refused {
                    holder: l.holder.clone(),
                    epoch: l.epoch,
                    remaining_ms: l.until.map_or(0, |t| t - now),
                };
            }
        }
        match &mut self.lease {
            Some(l) if l.holder == node => {
                l.epoch = epoch;
                // A renewal never shortens what was granted.
                l.until = Some(l.until.unwrap_or(0).max(now + lease_ms));
            }
            _ => self.lease = Some(Lease { holder: node.to_owned(), epoch, until: Some(now + lease_ms) }),
        }
        Answer::Granted { epoch, lease_ms }
    }

    /// `node` gives back the lease it holds for `epoch`. Anything else (another holder, another
    /// epoch: a release that crossed a later grant) changes nothing.
    pub fn release(&mut self, node: &str, epoch: u64) -> bool {
        match &mut self.lease {
            Some(l) if l.holder == node && l.epoch == epoch && l.until.is_some() => {
                l.until = None;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_until_the_lease_runs_out() {
        let mut w = Witness::default();
        assert_eq!(w.ask(0, "a", 1, 1_000), Answer::Granted { epoch: 1, lease_ms: 1_000 });
        let refused = w.ask(500, "b", 2, 1_000);
        assert_eq!(refused, Answer::Refused { holder: "a".into(), epoch: 1, remaining_ms: 500 });
        // The holder renews; the other still waits.
        assert!(matches!(w.ask(900, "a", 1, 1_000), Answer::Granted { .. }));
        assert!(matches!(w.ask(1_500, "b", 2, 1_000), Answer::Refused { remaining_ms: 400, .. }));
        assert!(matches!(w.ask(1_900, "b", 2, 1_000), Answer::Granted { epoch: 2, .. }));
        assert!(matches!(w.ask(1_950, "a", 1, 1_000), Answer::Refused { .. }));
    }

    #[test]
    fn a_release_frees_the_lease_only_for_its_holder_and_epoch() {
        let mut w = Witness::default();
        w.ask(0, "a", 3, 10_000);
        assert!(!w.release("b", 3), "not b's to give back");
        assert!(!w.release("a", 2), "an older epoch's release");
        assert!(matches!(w.ask(1, "b", 4, 10_000), Answer::Refused { .. }));
        assert!(w.release("a", 3));
        assert!(matches!(w.ask(2, "b", 4, 10_000), Answer::Granted { .. }));
    }

    #[test]
    fn a_restart_keeps_the_last_grant_for_a_whole_lease() {
        let mut w = Witness::restarted(Some(("a".into(), 5)), 100, 1_000);
        assert!(matches!(w.ask(1_000, "b", 6, 1_000), Answer::Refused { epoch: 5, .. }));
        assert!(matches!(w.ask(1_100, "b", 6, 1_000), Answer::Granted { .. }));
        let mut fresh = Witness::restarted(None, 0, 1_000);
        assert!(matches!(fresh.ask(0, "b", 1, 1_000), Answer::Granted { .. }));
    }
}
