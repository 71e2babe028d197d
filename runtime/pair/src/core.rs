//! One node's decisions. Time is milliseconds of the node's own monotonic clock, given with
//! each input; the core never reads a clock.
//!
//! Authority, epoch by epoch:
//! - `promised` (persisted) is the highest epoch this node has taken for itself or granted to
//!   its peer. It never acts in an epoch it granted, and never grants one it took.
//! - To form the pair (nobody acting, the peer heard), the preferred node asks for the next
//!   epoch: it persists it as promised, then sends a [`Msg::Request`] naming its incarnation.
//!   The peer grants it only if it is not acting and has promised nothing as high; it persists
//!   the promise first. The requester acts on a grant for its current request only.
//! - A switchover is a grant nobody asked for: the primary stops acting, persists the next
//!   epoch as promised, and grants it to the peer's incarnation as last heard.
//! - A secondary whose peer is silent on both links for the dead time (and, as Pacemaker's
//!   priority-fencing-delay has it, a while longer) asks for a fence; only a fence that
//!   confirmed the peer powered off lets it act, in an epoch above any it knows of. A primary
//!   that loses its peer fences at once, so that in a full partition it wins. Without a fence,
//!   nobody promotes, and an alarm says why.
//! - Every start is a new incarnation (persisted), as a secondary: grants meant for an earlier
//!   incarnation, delayed in the network, are worthless.

/// Which link a message came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Private = 0,
    Public = 1,
}

/// What the nodes say to each other (authenticated by the transport, not here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    Heartbeat {
        incarnation: u64,
        promised: u64,
        acting: Option<u64>,
    },
    /// "Grant me `epoch`", from the sender's `incarnation`.
    Request {
        epoch: u64,
        incarnation: u64,
    },
    /// "You may act in `epoch`", for the receiver's incarnation `to`.
    Grant {
        epoch: u64,
        to: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The node starts (after a boot or a daemon restart), with what it persisted.
    Start {
        now: u64,
        promised: u64,
        incarnation: u64,
    },
    Tick {
        now: u64,
    },
    Received {
        now: u64,
        link: Link,
        msg: Msg,
    },
    /// The fence asked for answered: `off` means the peer's BMC confirmed it is powered off.
    FenceDone {
        now: u64,
        off: bool,
    },
    /// The operator asks the primary to hand over.
    Switchover {
        now: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send on both links.
    Send(Msg),
    /// Write and fsync `promised` before carrying out anything after this.
    Persist {
        promised: u64,
    },
    /// Act as primary in `epoch` (the address, later volumes and workloads).
    Act {
        epoch: u64,
    },
    /// Stop acting, address first out.
    StopActing,
    /// Power the peer off through its BMC, and answer with [`Input::FenceDone`].
    Fence,
    Alarm(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// This node asks first when the pair forms.
    pub preferred: bool,
    /// The peer is lost when silent on both links this long.
    pub dead_time: u64,
    /// A secondary waits this much longer than a primary before it fences.
    pub fence_delay: u64,
    /// A fence (the peer's BMC) is configured.
    pub can_fence: bool,
    /// A failed fence is tried again after this long.
    pub fence_retry: u64,
    /// For the simulator's broken-rule check only: promote on silence without a fence.
    pub unsafe_promote_on_silence: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            preferred: false,
            dead_time: 1_000,
            fence_delay: 2_000,
            can_fence: true,
            fence_retry: 3_000,
            unsafe_promote_on_silence: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    cfg: Config,
    started: bool,
    incarnation: u64,
    promised: u64,
    acting: Option<u64>,
    /// The epoch this node asked its peer for, in this incarnation.
    requested: Option<u64>,
    heard: [Option<u64>; 2],
    /// The peer's last heartbeat: its incarnation, promise and whether it acts.
    peer: Option<(u64, u64, Option<u64>)>,
    /// A fence was asked for and has not answered.
    fencing: bool,
    /// What this node had promised when it asked for the fence: an answer is worth acting on
    /// only if no epoch was granted or asked for since.
    fence_promised: u64,
    /// A fence confirmed the peer off; it is not fenced again until it is heard again.
    fenced: bool,
    next_fence: u64,
    alarmed: bool,
}

impl Node {
    pub fn new(cfg: Config) -> Node {
        Node {
            cfg,
            started: false,
            incarnation: 0,
            promised: 0,
            acting: None,
            requested: None,
            heard: [None; 2],
            peer: None,
            fencing: false,
            fence_promised: 0,
            fenced: false,
            next_fence: 0,
            alarmed: false,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The epoch this node acts in, if it acts.
    pub fn acting(&self) -> Option<u64> {
        self.acting
    }

    fn last_heard(&self) -> Option<u64> {
        self.heard.iter().flatten().copied().max()
    }

    fn peer_live(&self, now: u64) -> bool {
        self.last_heard().is_some_and(|t| now.saturating_sub(t) < self.cfg.dead_time)
    }

    fn heartbeat(&self) -> Action {
        Action::Send(Msg::Heartbeat {
            incarnation: self.incarnation,
            promised: self.promised,
            acting: self.acting,
        })
    }

    /// Takes authority for `epoch`, persisted first.
    fn act(&mut self, epoch: u64, out: &mut Vec<Action>) {
        self.promised = self.promised.max(epoch);
        out.push(Action::Persist { promised: self.promised });
        self.acting = Some(epoch);
        self.requested = None;
        out.push(Action::Act { epoch });
        out.push(self.heartbeat());
    }

    pub fn step(&mut self, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Start { now, promised, incarnation } => {
                *self = Node::new(self.cfg.clone());
                self.started = true;
                self.promised = promised;
                self.incarnation = incarnation;
                // The peer counts as heard at the start, so that a node that boots alone
                // waits the dead time (and, as a secondary, the delay) before it fences.
                self.heard = [Some(now), None];
                out.push(self.heartbeat());
            }
            _ if !self.started => {}
            Input::Tick { now } => self.tick(now, &mut out),
            Input::Received { now, link, msg } => self.receive(now, link, msg, &mut out),
            Input::FenceDone { now, off } => {
                self.fencing = false;
                if off {
                    // A confirmation that comes after this node granted or asked for an epoch
                    // speaks of a world that has moved on: it is no authority.
                    if self.acting.is_none() && self.promised == self.fence_promised {
                        let known = self.peer.map_or(0, |p| p.1);
                        let epoch = self.promised.max(known) + 1;
                        self.act(epoch, &mut out);
                    }
                    // The peer is off: it is silent until it starts again.
                    self.peer = None;
                    self.fenced = true;
                } else {
                    self.next_fence = now + self.cfg.fence_retry;
                    out.push(Action::Alarm("the peer's fence failed: not promoting"));
                }
            }
            Input::Switchover { now } => {
                let peer = self.peer.filter(|_| self.peer_live(now) && !self.fencing);
                if let (Some(_), Some((peer_incarnation, _, None))) = (self.acting, peer) {
                    out.push(Action::StopActing);
                    self.acting = None;
                    self.promised += 1;
                    out.push(Action::Persist { promised: self.promised });
                    out.push(Action::Send(Msg::Grant { epoch: self.promised, to: peer_incarnation }));
                    out.push(self.heartbeat());
                } else {
                    out.push(Action::Alarm(
                        "switchover refused: this node is not primary, or its peer is not live",
                    ));
                }
            }
        }
        out
    }

    fn tick(&mut self, now: u64, out: &mut Vec<Action>) {
        out.push(self.heartbeat());
        if self.peer_live(now) {
            self.alarmed = false;
            let peer_acts = self.peer.is_some_and(|p| p.2.is_some());
            if self.acting.is_none() && !peer_acts && self.cfg.preferred {
                // Form the pair: ask for the next epoch (again, until granted).
                let epoch = match self.requested {
                    Some(e) => e,
                    None => {
                        let known = self.peer.map_or(0, |p| p.1);
                        let e = self.promised.max(known) + 1;
                        self.promised = e;
                        out.push(Action::Persist { promised: e });
                        self.requested = Some(e);
                        e
                    }
                };
                out.push(Action::Send(Msg::Request { epoch, incarnation: self.incarnation }));
            }
            return;
        }
        // The peer is silent on both links.
        let silent_since = self.last_heard().unwrap_or(0);
        if self.cfg.unsafe_promote_on_silence && self.acting.is_none() {
            let epoch = self.promised + 1;
            self.act(epoch, out);
            return;
        }
        if !self.cfg.can_fence {
            if self.acting.is_none() && !self.alarmed {
                self.alarmed = true;
                out.push(Action::Alarm(
                    "the peer is silent on both links and no fence is configured: not promoting",
                ));
            }
            return;
        }
        let wait = if self.acting.is_some() { 0 } else { self.cfg.fence_delay };
        let due = now.saturating_sub(silent_since) >= self.cfg.dead_time + wait;
        if !self.fencing && !self.fenced && now >= self.next_fence && due {
            self.fencing = true;
            self.fence_promised = self.promised;
            out.push(Action::Fence);
        }
    }

    fn receive(&mut self, now: u64, link: Link, msg: Msg, out: &mut Vec<Action>) {
        match msg {
            Msg::Heartbeat { incarnation, promised, acting } => {
                // A heartbeat from an older incarnation than one already heard is stale.
                if self.peer.is_some_and(|p| incarnation < p.0) {
                    return;
                }
                self.heard[link as usize] = Some(now);
                self.peer = Some((incarnation, promised, acting));
                self.fenced = false;
            }
            Msg::Request { epoch, incarnation } => {
                // Never while a fence is under way: the peer may be powered off and started
                // again before the fence answers, and must not gain an epoch meanwhile.
                if self.acting.is_none() && !self.fencing && epoch > self.promised {
                    self.promised = epoch;
                    self.requested = None;
                    out.push(Action::Persist { promised: epoch });
                    out.push(Action::Send(Msg::Grant { epoch, to: incarnation }));
                }
            }
            Msg::Grant { epoch, to } => {
                if to != self.incarnation || self.acting.is_some() {
                    return;
                }
                let asked = self.requested == Some(epoch);
                let handed_over = self.requested.is_none() && epoch > self.promised;
                if asked || handed_over {
                    self.act(epoch, out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(preferred: bool, incarnation: u64) -> Node {
        let mut n = Node::new(Config { preferred, ..Config::default() });
        n.step(Input::Start { now: 0, promised: 0, incarnation });
        n
    }

    fn sent(actions: &[Action]) -> Vec<Msg> {
        actions.iter().filter_map(|a| if let Action::Send(m) = a { Some(m.clone()) } else { None }).collect()
    }

    #[test]
    fn the_pair_forms_by_request_and_grant_and_persists_before_acting() {
        let (mut a, mut b) = (started(true, 1), started(false, 1));
        let hb_b = Msg::Heartbeat { incarnation: 1, promised: 0, acting: None };
        a.step(Input::Received { now: 10, link: Link::Private, msg: hb_b });
        let req = sent(&a.step(Input::Tick { now: 20 }));
        let request = req.iter().find(|m| matches!(m, Msg::Request { .. })).expect("a request").clone();
        let granted = b.step(Input::Received { now: 30, link: Link::Private, msg: request });
        assert!(matches!(granted[0], Action::Persist { promised: 1 }), "{granted:?}");
        let grant = sent(&granted).into_iter().find(|m| matches!(m, Msg::Grant { .. })).expect("grant");
        let acts = a.step(Input::Received { now: 40, link: Link::Private, msg: grant.clone() });
        let persist = acts.iter().position(|x| matches!(x, Action::Persist { .. })).expect("persist");
        let act = acts.iter().position(|x| matches!(x, Action::Act { epoch: 1 })).expect("act");
        assert!(persist < act, "persisted before acting: {acts:?}");
        assert_eq!(a.acting(), Some(1));
        // The same grant again, or a grant for another incarnation, changes nothing.
        assert!(a.step(Input::Received { now: 50, link: Link::Public, msg: grant }).is_empty());
        let mut c = started(false, 2);
        let stale = Msg::Grant { epoch: 5, to: 1 };
        assert!(c.step(Input::Received { now: 1, link: Link::Private, msg: stale }).is_empty());
        assert_eq!(c.acting(), None);
    }

    #[test]
    fn silence_alone_is_never_authority() {
        let mut b = Node::new(Config { can_fence: false, ..Config::default() });
        b.step(Input::Start { now: 0, promised: 3, incarnation: 1 });
        let out = b.step(Input::Tick { now: 60_000 });
        assert!(out.iter().any(|a| matches!(a, Action::Alarm(_))), "{out:?}");
        assert_eq!(b.acting(), None);
        // With a fence: it fences after the dead time and the delay, and acts only once the
        // peer is confirmed off, above every epoch it knows of.
        let mut b = started(false, 1);
        assert!(!b.step(Input::Tick { now: 2_000 }).contains(&Action::Fence), "too early");
        assert!(b.step(Input::Tick { now: 3_000 }).contains(&Action::Fence));
        b.step(Input::FenceDone { now: 3_100, off: false });
        assert_eq!(b.acting(), None, "a failed fence is no authority");
        assert!(b.step(Input::Tick { now: 6_200 }).contains(&Action::Fence), "tried again");
        b.step(Input::FenceDone { now: 6_300, off: true });
        assert_eq!(b.acting(), Some(1));
    }
}
