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
//! - Health: each node reports its own score (links, sensors, later volumes and workloads) and
//!   whether it could take over (its volumes are up to date). A primary whose live peer is
//!   healthier by a margin for a hold time hands over to it, at most once per cooldown, never
//!   to a peer that is not ready, and never in maintenance. A node that is not ready never
//!   takes the role: it asks for no epoch, fences and claims nothing, and is handed nothing;
//!   when only the other node is ready, that one asks, preferred or not. Losing the public network is a
//!   large drop in health, so it is such a move.
//! - One link silent while the other carries heartbeats is a condition (an alarm), never a
//!   failover.
//! - Witnesses (up to two, [`crate::witness`]): each grants its lease to one node at a time.
//!   The pair uses one of them, the *elected* witness (the first, unless the primary cannot
//!   reach it and can reach the other: everRun's preferred and alternate quorum servers). Only
//!   the primary changes it, in two steps: it proposes, the secondary persists and says so,
//!   and only then does the primary persist it. So the witness either node would use is
//!   always among its own, the one its peer last said, and its pending proposal: the
//!   *covered* set.
//!   The primary renews its lease on every witness. A secondary whose peer is silent as long
//!   as before a fence *claims* the role: it persists the next epoch, says so in every
//!   heartbeat, and asks its elected witness; it acts once it holds the covered set's leases
//!   and the claim has been said for the claim wait (longer than the dead time, the watchdog
//!   and any delay). A primary that hears a claim, or whose peer is silent, keeps acting only while it
//!   holds the covered set's leases; so the two never overlap. A lease counts as held only
//!   while it has longer to run than the watchdog takes to reset a hung node: a primary that
//!   hangs cannot stop itself, and is reset before its leases run out.

/// Which link a message came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Private = 0,
    Public = 1,
}

/// Which witness the pair uses: `seq` orders the choices (higher is later).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Elected {
    pub seq: u64,
    pub witness: usize,
}

/// What the nodes say to each other (authenticated by the transport, not here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    Heartbeat {
        incarnation: u64,
        promised: u64,
        acting: Option<u64>,
        /// The sender's health score (higher is healthier).
        health: u32,
        /// The sender could take over: its volumes are up to date.
        ready: bool,
        /// The sender claims this epoch through a witness (its peer is silent to it).
        claim: Option<u64>,
        /// The witness the sender would use, and the one it proposes (a primary).
        elected: Elected,
        proposal: Option<Elected>,
    },
    /// "Grant me `epoch`", from the sender's `incarnation`.
    Request { epoch: u64, incarnation: u64 },
    /// "You may act in `epoch`", for the receiver's incarnation `to`.
    Grant { epoch: u64, to: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The node starts (after a boot or a daemon restart), with what it persisted.
    Start {
        now: u64,
        promised: u64,
        incarnation: u64,
        elected: Elected,
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
    /// This node's own health, whenever it is measured.
    Health {
        now: u64,
        score: u32,
        ready: bool,
    },
    /// Maintenance: no automatic moves (failover after a loss still happens).
    Maintenance {
        on: bool,
    },
    /// Witness `witness` answered the request sent at `sent` (this node's clock): `granted`
    /// means it holds its lease for [`Config::lease`] from when the witness received it.
    WitnessAnswer {
        now: u64,
        witness: usize,
        sent: u64,
        granted: bool,
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
        why: &'static str,
    },
    /// Stop acting, address first out.
    StopActing {
        why: &'static str,
    },
    /// Power the peer off through its BMC, and answer with [`Input::FenceDone`].
    Fence,
    /// Ask witness `witness` for its lease (or renew it) for `epoch`, and answer with
    /// [`Input::WitnessAnswer`].
    AskWitness {
        witness: usize,
        epoch: u64,
    },
    /// Write and fsync the elected witness before carrying out anything after this.
    Elect(Elected),
    /// Give back the lease held for `epoch`, on every witness.
    ReleaseWitness {
        epoch: u64,
    },
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
    /// After a start, the peer is not fenced for this long, however silent: when both nodes
    /// are powered on together, the slower one gets the time to boot rather than a power cut
    /// (DRBD's wait-for-connection at start is the model).
    pub startup_wait: u64,
    /// The peer must be this much healthier for a preventive move...
    pub margin: u32,
    /// ...for this long...
    pub hold: u64,
    /// ...and the last move must be this long ago.
    pub cooldown: u64,
    /// Witnesses configured (0 to 2).
    pub witnesses: usize,
    /// How long a witness grants its lease for; it must be well above `watchdog` and `renew`.
    pub lease: u64,
    /// How long a hung node goes on before its watchdog resets it.
    pub watchdog: u64,
    /// How often a holder renews its leases, and a claimant asks again.
    pub renew: u64,
    /// How long a claim is said before the claimant acts: longer than the dead time or the
    /// watchdog, and the longest a heartbeat may be delayed, so that a primary that still hears
    /// its peer has heard the claim (or, hung just then, has been reset).
    pub claim_wait: u64,
    /// For the simulator's broken-rule check only: promote on silence without a fence.
    pub unsafe_promote_on_silence: bool,
    /// For the simulator's broken-rule check only: act on a lease without the claim wait.
    pub unsafe_skip_claim_wait: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            preferred: false,
            dead_time: 1_000,
            fence_delay: 2_000,
            can_fence: true,
            fence_retry: 3_000,
            startup_wait: 0,
            margin: 100,
            hold: 3_000,
            cooldown: 60_000,
            witnesses: 0,
            lease: 4_000,
            watchdog: 2_000,
            renew: 500,
            claim_wait: 3_000,
            unsafe_promote_on_silence: false,
            unsafe_skip_claim_wait: false,
        }
    }
}

/// What the peer's last heartbeat said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub incarnation: u64,
    pub promised: u64,
    pub acting: Option<u64>,
    pub health: u32,
    pub ready: bool,
    pub claim: Option<u64>,
    pub elected: Elected,
    pub proposal: Option<Elected>,
}

/// How many witnesses a node may have.
pub const MAX_WITNESSES: usize = 2;

#[derive(Debug, Clone)]
pub struct Node {
    cfg: Config,
    started: bool,
    incarnation: u64,
    promised: u64,
    acting: Option<u64>,
    /// The epoch this node asked its peer for in this incarnation, and when it first asked.
    requested: Option<(u64, u64)>,
    heard: [Option<u64>; 2],
    /// The peer's last heartbeat.
    peer: Option<Peer>,
    health: u32,
    ready: bool,
    maintenance: bool,
    /// Since when the peer has been healthier by the margin (while this node acts).
    better_since: Option<u64>,
    /// When this node last handed over or took over by a handover.
    last_move: Option<u64>,
    /// A fence was asked for and has not answered.
    fencing: bool,
    /// What this node had promised when it asked for the fence: an answer is worth acting on
    /// only if no epoch was granted or asked for since.
    fence_promised: u64,
    /// A fence confirmed the peer off; it is not fenced again until it is heard again.
    fenced: bool,
    next_fence: u64,
    /// No fence before this (the start plus the startup wait).
    quiet_until: u64,
    started_at: Option<u64>,
    alarmed: bool,
    /// Until when (this node's clock) each witness's lease is held by this node, counted from
    /// when the request was sent, less a tenth for the clocks' rates.
    leases: [Option<u64>; MAX_WITNESSES],
    /// When the leases were last given back: answers to requests sent before are void.
    released_at: Option<u64>,
    last_ask: Option<u64>,
    /// The epoch this node claims through a witness, and since when.
    claim: Option<(u64, u64)>,
    /// A witness refused this node's claim: the peer holds its lease.
    claim_refused: bool,
    /// Since when the peer has said its volumes are not up to date.
    peer_unready_since: Option<u64>,
    /// The witness this node would use (persisted), and the one it proposes (as primary).
    elected: Elected,
    proposal: Option<Elected>,
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
            health: 0,
            ready: true,
            maintenance: false,
            better_since: None,
            last_move: None,
            fencing: false,
            fence_promised: 0,
            fenced: false,
            next_fence: 0,
            quiet_until: 0,
            started_at: None,
            alarmed: false,
            leases: [None; MAX_WITNESSES],
            released_at: None,
            last_ask: None,
            claim: None,
            claim_refused: false,
            peer_unready_since: None,
            elected: Elected::default(),
            proposal: None,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The epoch this node acts in, if it acts.
    pub fn acting(&self) -> Option<u64> {
        self.acting
    }

    /// The epoch this node has promised (persisted).
    pub fn promised(&self) -> u64 {
        self.promised
    }

    /// Whether a fence confirmed the peer powered off (and it has not been heard since).
    pub fn peer_fenced(&self) -> bool {
        self.fenced
    }

    /// Whether this node could take the role (its volumes are up to date), as last told.
    pub fn ready(&self) -> bool {
        self.ready
    }

    /// The peer as its last heartbeat showed it.
    pub fn peer(&self) -> Option<Peer> {
        self.peer
    }

    /// The epoch this node claims through a witness, if it does.
    pub fn claim(&self) -> Option<u64> {
        self.claim.map(|(e, _)| e)
    }

    /// The witness this node would use.
    pub fn elected(&self) -> Elected {
        self.elected
    }

    /// Whether this node holds witness `w`'s lease at `now`, with longer to run than the
    /// watchdog takes (as far as it can tell).
    pub fn lease_held(&self, w: usize, now: u64) -> bool {
        self.leases.get(w).copied().flatten().is_some_and(|t| now + self.cfg.watchdog < t)
    }

    /// Whether this node holds the lease of every witness either node might use: its own,
    /// the one its peer last said and its own proposal; every witness when the peer is not
    /// known.
    fn covered(&self, now: u64) -> bool {
        let Some(peer) = self.peer else {
            return (0..self.cfg.witnesses).all(|w| self.lease_held(w, now));
        };
        [Some(self.elected), Some(peer.elected), self.proposal]
            .into_iter()
            .flatten()
            .all(|e| self.lease_held(e.witness, now))
    }

    /// Whether the peer was heard on `link` within the dead time.
    pub fn heard_on(&self, link: Link, now: u64) -> bool {
        self.heard[link as usize].is_some_and(|t| now.saturating_sub(t) < self.cfg.dead_time)
    }

    /// What is wrong now, as the core sees it (the daemon adds what it measures itself).
    pub fn conditions(&self, now: u64) -> Vec<&'static str> {
        let mut out = Vec::new();
        let (private, public) = (self.heard_on(Link::Private, now), self.heard_on(Link::Public, now));
        if private && !public {
            out.push("the peer is silent on the public link (heard on the private link only)");
        }
        if public && !private {
            out.push("the peer is silent on the private link (heard on the public link only)");
        }
        if !self.peer_live(now) {
            out.push(if self.cfg.can_fence {
                "the peer is silent on both links"
            } else if self.cfg.witnesses > 0 {
                "the peer is silent on both links: asking the witness for its lease"
            } else {
                "the peer is silent on both links and no fence is configured: not promoting"
            });
        }
        if self.claim.is_some() && self.claim_refused {
            out.push("the peer is silent but holds the witness's lease: not promoting");
        }
        if self.maintenance {
            out.push("maintenance: no automatic moves");
        }
        if !self.ready {
            out.push("this node's volumes are not up to date: it does not take the role");
        }
        out
    }

    /// When the peer's silence next calls for action (the dead time, and for a secondary the
    /// fence delay, after it was last heard): a driver that ticks at this moment as well as on
    /// its heartbeat clock reacts without a tick's lag.
    pub fn next_deadline(&self) -> Option<u64> {
        if let Some((_, since)) = self.claim {
            return Some(since + self.cfg.claim_wait);
        }
        if !self.cfg.can_fence || self.fencing || self.fenced {
            return None;
        }
        let wait = if self.acting.is_some() { 0 } else { self.cfg.fence_delay };
        self.last_heard().map(|t| (t + self.cfg.dead_time + wait).max(self.quiet_until))
    }

    /// When the peer was last heard on either link, or the start if it has not been since:
    /// a node that boots alone waits the dead time (and, as a secondary, the delay) before it
    /// fences.
    fn last_heard(&self) -> Option<u64> {
        self.heard.iter().flatten().copied().chain(self.started_at).max()
    }

    fn peer_live(&self, now: u64) -> bool {
        self.last_heard().is_some_and(|t| now.saturating_sub(t) < self.cfg.dead_time)
    }

    /// The heartbeat this node would send now.
    pub fn heartbeat_msg(&self) -> Msg {
        match self.heartbeat() {
            Action::Send(m) => m,
            _ => unreachable!("a heartbeat is sent"),
        }
    }

    fn heartbeat(&self) -> Action {
        Action::Send(Msg::Heartbeat {
            incarnation: self.incarnation,
            promised: self.promised,
            acting: self.acting,
            health: self.health,
            ready: self.ready,
            claim: self.claim(),
            elected: self.elected,
            proposal: self.proposal,
        })
    }

    /// Takes authority for `epoch`, persisted first.
    fn act(&mut self, epoch: u64, why: &'static str, out: &mut Vec<Action>) {
        self.promised = self.promised.max(epoch);
        out.push(Action::Persist { promised: self.promised });
        self.acting = Some(epoch);
        self.requested = None;
        self.claim = None;
        self.claim_refused = false;
        self.better_since = None;
        out.push(Action::Act { epoch, why });
        out.push(self.heartbeat());
    }

    /// Hands the role to the live peer: stop acting, promise the next epoch, grant it to the
    /// peer's incarnation. Refused (with an alarm) unless this node acts and its peer is live,
    /// ready, not acting, and no fence is under way.
    fn hand_over(&mut self, now: u64, why: &'static str, out: &mut Vec<Action>) -> bool {
        let peer =
            self.peer.filter(|p| self.peer_live(now) && !self.fencing && p.acting.is_none() && p.ready);
        let (Some(_), Some(peer)) = (self.acting, peer) else {
            return false;
        };
        self.stop_acting(now, why, out);
        self.last_move = Some(now);
        self.promised += 1;
        out.push(Action::Persist { promised: self.promised });
        out.push(Action::Send(Msg::Grant { epoch: self.promised, to: peer.incarnation }));
        out.push(self.heartbeat());
        true
    }

    /// Stops acting (the address first out, by whoever carries this out) and gives back the
    /// witnesses' leases.
    fn stop_acting(&mut self, now: u64, why: &'static str, out: &mut Vec<Action>) {
        let Some(epoch) = self.acting.take() else { return };
        self.better_since = None;
        out.push(Action::StopActing { why });
        self.give_back(epoch, now, out);
    }

    fn give_back(&mut self, epoch: u64, now: u64, out: &mut Vec<Action>) {
        if self.cfg.witnesses > 0 {
            out.push(Action::ReleaseWitness { epoch });
            self.leases = [None; MAX_WITNESSES];
            self.released_at = Some(now);
            self.last_ask = None;
        }
    }

    /// Asks the witnesses in `wanted` for their leases for `epoch`, at most once per renewal
    /// period.
    fn ask_witnesses(&mut self, epoch: u64, now: u64, wanted: [bool; MAX_WITNESSES], out: &mut Vec<Action>) {
        if self.last_ask.is_some_and(|t| now.saturating_sub(t) < self.cfg.renew) {
            return;
        }
        self.last_ask = Some(now);
        for witness in (0..self.cfg.witnesses).filter(|w| wanted[*w]) {
            out.push(Action::AskWitness { witness, epoch });
        }
    }

    /// The witnesses a claim needs: its own elected one and the one its peer last said (every
    /// witness when the peer is not known).
    fn claim_needs(&self) -> [bool; MAX_WITNESSES] {
        let mut wanted = [false; MAX_WITNESSES];
        match self.peer {
            Some(p) => [self.elected, p.elected].iter().for_each(|e| wanted[e.witness] = true),
            None => wanted = [true; MAX_WITNESSES],
        }
        wanted
    }

    /// The primary's part of electing the witness, while it hears its peer: once the peer
    /// has taken up the proposal, the primary takes it up too; with no proposal pending and
    /// the peer agreeing, it proposes the other witness when it cannot hold the elected one's
    /// lease but can hold the other's, or the first one again when it can hold that.
    fn elect(&mut self, now: u64, out: &mut Vec<Action>) {
        let Some(peer) = self.peer else { return };
        if let Some(p) = self.proposal {
            if peer.elected.seq >= p.seq {
                self.proposal = None;
                if peer.elected == p {
                    self.elected = p;
                    out.push(Action::Elect(p));
                }
            }
            return;
        }
        if self.cfg.witnesses < 2 || peer.elected != self.elected {
            return;
        }
        let (current, other) = (self.elected.witness, 1 - self.elected.witness);
        let lost = !self.lease_held(current, now) && self.lease_held(other, now);
        let preferred_back = current == 1 && self.lease_held(0, now);
        if lost || preferred_back {
            self.proposal = Some(Elected { seq: self.elected.seq.max(peer.elected.seq) + 1, witness: other });
            out.push(self.heartbeat());
        }
    }

    pub fn step(&mut self, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        self.step_into(input, &mut out);
        out
    }

    /// [`Node::step`], appending the actions to `out` (the simulator reuses one buffer).
    pub fn step_into(&mut self, input: Input, out: &mut Vec<Action>) {
        match input {
            Input::Start { now, promised, incarnation, elected } => {
                *self = Node::new(self.cfg.clone());
                self.started = true;
                self.promised = promised;
                self.elected = elected;
                self.incarnation = incarnation;
                self.started_at = Some(now);
                self.quiet_until = now + self.cfg.startup_wait;
                out.push(self.heartbeat());
            }
            _ if !self.started => {}
            Input::Tick { now } => self.tick(now, out),
            Input::Received { now, link, msg } => self.receive(now, link, msg, out),
            Input::FenceDone { now, off } => {
                self.fencing = false;
                if off {
                    // A confirmation that comes after this node granted or asked for an epoch
                    // speaks of a world that has moved on: it is no authority.
                    // (A claim made since is no such thing: it neither granted nor asked.)
                    let claimed = self.claim.is_some_and(|(e, _)| e == self.promised);
                    // With witnesses, the fenced peer could be powered on again and claim
                    // through a witness this node has no lease of: a fence alone is not
                    // enough then (the claim acts once the leases are held).
                    let leased = self.cfg.witnesses == 0 || self.covered(now);
                    let may = (self.promised == self.fence_promised || claimed) && leased && self.ready;
                    if self.acting.is_none() && may {
                        let known = self.peer.map_or(0, |p| p.promised);
                        let epoch = self.promised.max(known) + 1;
                        self.act(epoch, "the peer was silent and its fence confirmed it off", out);
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
                if !self.hand_over(now, "switchover asked by the operator", out) {
                    out.push(Action::Alarm(
                        "switchover refused: this node is not primary, or its peer is not live and up to date",
                    ));
                }
            }
            Input::Health { score, ready, .. } => {
                self.health = score;
                self.ready = ready;
            }
            Input::Maintenance { on } => self.maintenance = on,
            Input::WitnessAnswer { witness, sent, granted, .. } => {
                // An answer to a request sent before the leases were given back, or before
                // this start, speaks of a lease that may be gone.
                let void = self.released_at.is_some_and(|t| sent <= t)
                    || self.started_at.is_some_and(|t| sent < t)
                    || witness >= self.cfg.witnesses;
                if void || (self.acting.is_none() && self.claim.is_none()) {
                    return;
                }
                if granted {
                    let until = sent + self.cfg.lease - self.cfg.lease / 10;
                    let held = &mut self.leases[witness];
                    *held = Some(held.unwrap_or(0).max(until));
                } else if self.claim.is_some() && !self.claim_refused {
                    self.claim_refused = true;
                    out.push(Action::Alarm(
                        "the peer is silent but holds the witness's lease: not promoting",
                    ));
                }
            }
        }
    }

    /// The witnesses' part of a tick: a primary renews its leases, and stops when its peer is
    /// silent and a lease ran out; a secondary whose peer is silent claims the role, and acts
    /// once a witness granted its lease and the claim wait is over.
    fn witness_tick(&mut self, now: u64, out: &mut Vec<Action>) {
        if self.cfg.witnesses == 0 {
            return;
        }
        if let Some(epoch) = self.acting {
            if !self.peer_live(now) && !self.covered(now) {
                self.stop_acting(now, "the peer is silent and a witness's lease ran out", out);
                out.push(Action::Alarm("the peer is silent and a witness's lease ran out: stood down"));
                return;
            }
            self.ask_witnesses(epoch, now, [true; MAX_WITNESSES], out);
            if self.peer_live(now) {
                self.elect(now, out);
            }
            return;
        }
        if let Some((epoch, since)) = self.claim {
            if self.peer_live(now) || self.promised != epoch {
                self.claim = None;
                self.claim_refused = false;
                self.give_back(epoch, now, out);
                out.push(self.heartbeat());
                return;
            }
            let waited = now.saturating_sub(since) >= self.cfg.claim_wait || self.cfg.unsafe_skip_claim_wait;
            if waited && self.covered(now) && self.ready {
                self.act(epoch, "the peer was silent and a witness granted its lease", out);
                return;
            }
            self.ask_witnesses(epoch, now, self.claim_needs(), out);
            return;
        }
        let silent = now.saturating_sub(self.last_heard().unwrap_or(0));
        if silent >= self.cfg.dead_time + self.cfg.fence_delay && now >= self.quiet_until && self.ready {
            let known = self.peer.map_or(0, |p| p.promised);
            let epoch = self.promised.max(known) + 1;
            self.promised = epoch;
            self.requested = None;
            out.push(Action::Persist { promised: epoch });
            self.claim = Some((epoch, now));
            self.claim_refused = false;
            self.last_ask = None;
            out.push(self.heartbeat());
            self.ask_witnesses(epoch, now, self.claim_needs(), out);
        }
    }

    /// A preventive move: the primary hands over to a peer that has been healthier by the
    /// margin for the hold time, at most once per cooldown, never in maintenance.
    fn consider_moving(&mut self, now: u64, out: &mut Vec<Action>) {
        let better = self.peer.is_some_and(|p| {
            p.acting.is_none() && p.ready && p.health >= self.health.saturating_add(self.cfg.margin)
        });
        if self.acting.is_none() || self.maintenance || !better {
            self.better_since = None;
            return;
        }
        let since = *self.better_since.get_or_insert(now);
        let cooled = self.last_move.is_none_or(|t| now.saturating_sub(t) >= self.cfg.cooldown);
        if now.saturating_sub(since) >= self.cfg.hold && cooled {
            self.hand_over(now, "preventive move: the peer is healthier", out);
        }
    }

    fn tick(&mut self, now: u64, out: &mut Vec<Action>) {
        out.push(self.heartbeat());
        self.witness_tick(now, out);
        if self.peer_live(now) {
            self.alarmed = false;
            self.consider_moving(now, out);
            let peer_acts = self.peer.is_some_and(|p| p.acting.is_some());
            // The preferred node asks; the other one only when it alone has been ready for the
            // hold time (a peer that just started has not yet looked at its volumes).
            let peer_unready =
                self.peer_unready_since.is_some_and(|t| now.saturating_sub(t) >= self.cfg.hold);
            let asks = self.ready && (self.cfg.preferred || peer_unready);
            if self.acting.is_none() && !peer_acts && asks {
                // A request the peer has promised more than can never be granted; one it has
                // promised exactly as much may have been granted (the grant still on its way)
                // or promised to itself: after twice the dead time without a grant (a round
                // trip, each way shorter than the dead time), it is the latter.
                // Either way, ask for a later epoch. (A late grant of the old one is then
                // below what this node promised, and worthless.)
                let known = self.peer.map_or(0, |p| p.promised);
                if self.requested.is_some_and(|(e, since)| {
                    known > e || (known == e && now.saturating_sub(since) >= 2 * self.cfg.dead_time)
                }) {
                    self.requested = None;
                }
                // Form the pair: ask for the next epoch (again, until granted).
                let epoch = match self.requested {
                    Some((e, _)) => e,
                    None => {
                        let e = self.promised.max(known) + 1;
                        self.promised = e;
                        out.push(Action::Persist { promised: e });
                        self.requested = Some((e, now));
                        e
                    }
                };
                out.push(Action::Send(Msg::Request { epoch, incarnation: self.incarnation }));
            }
            return;
        }
        // The peer is silent on both links.
        let silent_since = self.last_heard().unwrap_or(0);
        if !self.ready && self.acting.is_none() {
            if !self.alarmed {
                self.alarmed = true;
                out.push(Action::Alarm(
                    "the peer is silent and this node's volumes are not up to date: not promoting",
                ));
            }
            return;
        }
        if self.cfg.unsafe_promote_on_silence && self.acting.is_none() {
            let epoch = self.promised + 1;
            self.act(epoch, "the broken rule: silence", out);
            return;
        }
        if !self.cfg.can_fence {
            if self.acting.is_none() && self.cfg.witnesses == 0 && !self.alarmed {
                self.alarmed = true;
                out.push(Action::Alarm(
                    "the peer is silent on both links and no fence is configured: not promoting",
                ));
            }
            return;
        }
        let wait = if self.acting.is_some() { 0 } else { self.cfg.fence_delay };
        let due = now.saturating_sub(silent_since) >= self.cfg.dead_time + wait;
        if !self.fencing && !self.fenced && now >= self.next_fence.max(self.quiet_until) && due {
            self.fencing = true;
            self.fence_promised = self.promised;
            out.push(Action::Fence);
        }
    }

    fn receive(&mut self, now: u64, link: Link, msg: Msg, out: &mut Vec<Action>) {
        match msg {
            Msg::Heartbeat { incarnation, promised, acting, health, ready, claim, elected, proposal } => {
                // A heartbeat from an older incarnation than one already heard is stale.
                if self.peer.is_some_and(|p| incarnation < p.incarnation) {
                    return;
                }
                self.heard[link as usize] = Some(now);
                self.peer =
                    Some(Peer { incarnation, promised, acting, health, ready, claim, elected, proposal });
                match (ready, self.peer_unready_since) {
                    (true, _) => self.peer_unready_since = None,
                    (false, None) => self.peer_unready_since = Some(now),
                    (false, Some(_)) => {}
                }
                // A secondary takes up the primary's choice of witness, persisted before it
                // says so.
                if self.acting.is_none() && acting.is_some() {
                    let theirs = proposal.into_iter().chain([elected]).max_by_key(|e| e.seq);
                    if let Some(e) =
                        theirs.filter(|e| e.seq > self.elected.seq && e.witness < self.cfg.witnesses)
                    {
                        self.elected = e;
                        out.push(Action::Elect(e));
                    }
                }
                self.fenced = false;
                // A peer acting in a later epoch than ours means ours is over (the rule above
                // makes this impossible; should it happen anyway, the older epoch yields).
                if let (Some(mine), Some(theirs)) = (self.acting, acting) {
                    if theirs > mine {
                        self.stop_acting(now, "the peer acts in a later epoch", out);
                        out.push(Action::Alarm("the peer acted in a later epoch: stood down"));
                    }
                }
                // A peer that cannot hear this node claims the role through a witness: unless
                // this node holds every witness's lease (so the claim cannot be granted), it
                // stands down before the claim wait is over.
                // (Whatever epoch it names: a peer that never heard this node knows no later.)
                if self.acting.is_some() && claim.is_some() && !self.covered(now) {
                    self.stop_acting(now, "the peer claims the role through a witness", out);
                }
            }
            Msg::Request { epoch, incarnation } => {
                // Never while a fence is under way: the peer may be powered off and started
                // again before the fence answers, and must not gain an epoch meanwhile.
                if self.acting.is_none() && !self.fencing && epoch > self.promised {
                    if let Some((claimed, _)) = self.claim.take() {
                        self.claim_refused = false;
                        self.give_back(claimed, now, out);
                    }
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
                let asked = self.requested.is_some_and(|(e, _)| e == epoch);
                let handed_over = self.requested.is_none() && epoch > self.promised;
                if asked {
                    // A request can be left over from the moment after this node handed over
                    // (the peer's last heartbeat still said it was not acting); the peer's
                    // later switchover grant then answers it. Say which it was.
                    let why = if self.peer.is_some_and(|p| p.acting.is_some()) {
                        "the peer handed over"
                    } else {
                        "the pair formed: the peer granted the first epoch"
                    };
                    self.act(epoch, why, out);
                } else if handed_over {
                    self.last_move = Some(now);
                    self.act(epoch, "the peer handed over", out);
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
        n.step(Input::Start { now: 0, promised: 0, incarnation, elected: Elected::default() });
        n
    }

    fn sent(actions: &[Action]) -> Vec<Msg> {
        actions.iter().filter_map(|a| if let Action::Send(m) = a { Some(m.clone()) } else { None }).collect()
    }

    #[test]
    fn the_pair_forms_by_request_and_grant_and_persists_before_acting() {
        let (mut a, mut b) = (started(true, 1), started(false, 1));
        let hb_b = Msg::Heartbeat {
            incarnation: 1,
            promised: 0,
            acting: None,
            health: 0,
            ready: true,
            claim: None,
            elected: Elected::default(),
            proposal: None,
        };
        a.step(Input::Received { now: 10, link: Link::Private, msg: hb_b });
        let req = sent(&a.step(Input::Tick { now: 20 }));
        let request = req.iter().find(|m| matches!(m, Msg::Request { .. })).expect("a request").clone();
        let granted = b.step(Input::Received { now: 30, link: Link::Private, msg: request });
        assert!(matches!(granted[0], Action::Persist { promised: 1 }), "{granted:?}");
        let grant = sent(&granted).into_iter().find(|m| matches!(m, Msg::Grant { .. })).expect("grant");
        let acts = a.step(Input::Received { now: 40, link: Link::Private, msg: grant.clone() });
        let persist = acts.iter().position(|x| matches!(x, Action::Persist { .. })).expect("persist");
        let act = acts.iter().position(|x| matches!(x, Action::Act { epoch: 1, .. })).expect("act");
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
    fn a_switchover_back_is_told_as_a_handover_even_after_a_leftover_request() {
        let mut a = started(true, 1);
        a.step(Input::Received { now: 0, link: Link::Private, msg: hb(2, None, 1_000) });
        assert!(sent(&a.step(Input::Tick { now: 100 })).contains(&Msg::Request { epoch: 1, incarnation: 1 }));
        a.step(Input::Received { now: 150, link: Link::Private, msg: Msg::Grant { epoch: 1, to: 1 } });
        assert_eq!(a.acting(), Some(1));
        assert!(grants(&a.step(Input::Switchover { now: 200 })));
        // The peer's last heartbeat still says it is not acting: a asks for the next epoch,
        // which the peer, acting by then, ignores.
        a.step(Input::Received { now: 250, link: Link::Private, msg: hb(2, None, 1_000) });
        assert!(sent(&a.step(Input::Tick { now: 300 })).contains(&Msg::Request { epoch: 3, incarnation: 1 }));
        a.step(Input::Received { now: 400, link: Link::Private, msg: hb(2, Some(2), 1_000) });
        // The peer switches back, granting that very epoch: a handover, not the pair forming.
        let out =
            a.step(Input::Received { now: 500, link: Link::Private, msg: Msg::Grant { epoch: 3, to: 1 } });
        assert!(out.contains(&Action::Act { epoch: 3, why: "the peer handed over" }), "{out:?}");
    }

    #[test]
    fn silence_alone_is_never_authority() {
        let mut b = Node::new(Config { can_fence: false, ..Config::default() });
        b.step(Input::Start { now: 0, promised: 3, incarnation: 1, elected: Elected::default() });
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

    fn hb(incarnation: u64, acting: Option<u64>, health: u32) -> Msg {
        Msg::Heartbeat {
            incarnation,
            promised: acting.unwrap_or(0),
            acting,
            health,
            ready: true,
            claim: None,
            elected: Elected::default(),
            proposal: None,
        }
    }

    /// `msg`, a heartbeat, from a node whose volumes are not up to date.
    fn not_ready(mut msg: Msg) -> Msg {
        if let Msg::Heartbeat { ready, .. } = &mut msg {
            *ready = false;
        }
        msg
    }

    /// A primary in epoch 1 and healthy (1000), its peer secondary, incarnation 2.
    fn primary() -> Node {
        let mut a = Node::new(Config { hold: 1_000, cooldown: 10_000, ..Config::default() });
        a.step(Input::Start { now: 0, promised: 0, incarnation: 1, elected: Elected::default() });
        a.step(Input::Health { now: 0, score: 1_000, ready: true });
        a.step(Input::Received { now: 0, link: Link::Private, msg: hb(2, None, 1_000) });
        a.step(Input::FenceDone { now: 0, off: true });
        a.step(Input::Received { now: 1, link: Link::Private, msg: hb(2, None, 1_000) });
        assert_eq!(a.acting(), Some(1));
        a
    }

    fn grants(actions: &[Action]) -> bool {
        sent(actions).iter().any(|m| matches!(m, Msg::Grant { .. }))
    }

    /// Runs 100 ms ticks from `from` to `to`, the peer heard on both links with `peer_health`
    /// and this node's health as `own` says at each time; returns when it handed over.
    fn ticks(a: &mut Node, from: u64, to: u64, peer_health: u32, own: impl Fn(u64) -> u32) -> Option<u64> {
        (from..to).step_by(100).find(|&now| {
            a.step(Input::Health { now, score: own(now), ready: true });
            for link in [Link::Private, Link::Public] {
                a.step(Input::Received { now, link, msg: hb(2, None, peer_health) });
            }
            grants(&a.step(Input::Tick { now }))
        })
    }

    #[test]
    fn a_healthier_peer_gets_the_role_after_the_hold_time_once_per_cooldown() {
        let mut a = primary();
        // The peer is healthier, but not by the margin: nothing moves.
        assert_eq!(ticks(&mut a, 100, 5_000, 1_050, |_| 1_000), None);
        // By the margin: the move comes after the hold time, not before.
        let moved = ticks(&mut a, 5_000, 9_000, 1_000, |_| 500).expect("a preventive move");
        assert!((6_000..=6_100).contains(&moved), "moved at {moved}");
        assert_eq!(a.acting(), None);
        // The peer's grant makes it primary; it must not move back within the cooldown.
        let mut b = Node::new(Config { hold: 1_000, cooldown: 10_000, ..Config::default() });
        b.step(Input::Start { now: 0, promised: 1, incarnation: 2, elected: Elected::default() });
        b.step(Input::Health { now: 0, score: 1_000, ready: true });
        b.step(Input::Received { now: 6_100, link: Link::Private, msg: hb(1, None, 500) });
        b.step(Input::Received { now: 6_100, link: Link::Private, msg: Msg::Grant { epoch: 2, to: 2 } });
        assert_eq!(b.acting(), Some(2));
        assert_eq!(
            (6_200..14_000).step_by(100).find(|&now| {
                b.step(Input::Health { now, score: 300, ready: true });
                b.step(Input::Received { now, link: Link::Private, msg: hb(1, None, 1_000) });
                grants(&b.step(Input::Tick { now }))
            }),
            None,
            "moved back within the cooldown"
        );
    }

    #[test]
    fn a_flapping_sensor_moves_nothing_and_maintenance_holds_the_role() {
        let mut a = primary();
        // Critical for 0.5 s of every second: never for the whole hold time.
        let flapping = |now: u64| if now % 1_000 < 500 { 500 } else { 1_000 };
        assert_eq!(ticks(&mut a, 100, 20_000, 1_000, flapping), None);
        a.step(Input::Maintenance { on: true });
        assert_eq!(ticks(&mut a, 20_000, 30_000, 1_000, |_| 300), None, "maintenance: no moves");
        assert!(a.conditions(30_000).iter().any(|c| c.contains("maintenance")));
        a.step(Input::Maintenance { on: false });
        assert!(ticks(&mut a, 30_000, 40_000, 1_000, |_| 300).is_some());
    }

    #[test]
    fn one_silent_link_is_a_condition_not_a_failover() {
        let mut a = primary();
        for now in (100..5_000).step_by(100) {
            a.step(Input::Received { now, link: Link::Public, msg: hb(2, None, 1_000) });
            let out = a.step(Input::Tick { now });
            assert!(!out.contains(&Action::Fence), "{out:?}");
        }
        assert_eq!(a.acting(), Some(1));
        let c = a.conditions(5_000);
        assert!(c.iter().any(|c| c.contains("silent on the private link")), "{c:?}");
        a.step(Input::Received { now: 5_000, link: Link::Private, msg: hb(2, None, 1_000) });
        assert!(a.conditions(5_000).is_empty(), "healed: {:?}", a.conditions(5_000));
    }

    fn witnessed(preferred: bool, witnesses: usize) -> Config {
        // A lease counts for 10 s less a tenth less the 2 s watchdog: 7 s from when it was asked.
        let (lease, watchdog, renew, claim_wait) = (10_000, 2_000, 500, 3_000);
        Config {
            preferred,
            can_fence: false,
            witnesses,
            lease,
            watchdog,
            renew,
            claim_wait,
            ..Config::default()
        }
    }

    fn asks(actions: &[Action]) -> Vec<usize> {
        actions
            .iter()
            .filter_map(|a| if let Action::AskWitness { witness, .. } = a { Some(*witness) } else { None })
            .collect()
    }

    #[test]
    fn a_silent_peer_is_claimed_through_the_elected_witness_and_the_claim_waits() {
        let mut b = Node::new(witnessed(false, 2));
        let second = Elected { seq: 3, witness: 1 };
        b.step(Input::Start { now: 0, promised: 4, incarnation: 9, elected: second });
        let peer = Msg::Heartbeat {
            incarnation: 2,
            promised: 4,
            acting: Some(4),
            health: 1_000,
            ready: true,
            claim: None,
            elected: second,
            proposal: None,
        };
        b.step(Input::Received { now: 0, link: Link::Private, msg: peer });
        assert!(asks(&b.step(Input::Tick { now: 2_900 })).is_empty(), "not silent long enough");
        let out = b.step(Input::Tick { now: 3_000 });
        // The claim is persisted, said in a heartbeat, and put to the elected witness only.
        assert_eq!(out[1..3], [Action::Persist { promised: 5 }, b.heartbeat()], "{out:?}");
        assert!(matches!(&out[2], Action::Send(Msg::Heartbeat { claim: Some(5), .. })));
        assert_eq!(asks(&out), [1]);
        // It refuses (the peer holds its lease): an alarm, and no role.
        let refused = b.step(Input::WitnessAnswer { now: 3_050, witness: 1, sent: 3_000, granted: false });
        assert!(matches!(refused[..], [Action::Alarm(_)]), "{refused:?}");
        assert!(b.conditions(3_050).iter().any(|c| c.contains("holds the witness's lease")));
        // Then it grants: still no role until the claim has been said for the claim wait.
        assert_eq!(asks(&b.step(Input::Tick { now: 3_500 })), [1]);
        b.step(Input::WitnessAnswer { now: 3_560, witness: 1, sent: 3_500, granted: true });
        b.step(Input::Tick { now: 5_900 });
        assert_eq!(b.acting(), None, "within the claim wait");
        let out = b.step(Input::Tick { now: 6_000 });
        assert!(out
            .contains(&Action::Act { epoch: 5, why: "the peer was silent and a witness granted its lease" }));
        assert_eq!(b.claim(), None);
    }

    #[test]
    fn the_pair_moves_to_the_second_witness_in_two_steps_and_back() {
        let mut a = witnessed_primary(2);
        let mut b = Node::new(witnessed(false, 2));
        b.step(Input::Start { now: 0, promised: 1, incarnation: 2, elected: Elected::default() });
        // a holds only the second witness's lease: it proposes that one, and keeps its own.
        a.step(Input::Tick { now: 100 });
        a.step(Input::WitnessAnswer { now: 120, witness: 1, sent: 100, granted: true });
        a.step(Input::Received { now: 150, link: Link::Private, msg: hb(2, None, 1_000) });
        let out = a.step(Input::Tick { now: 200 });
        let proposing = sent(&out).pop().expect("a heartbeat");
        let Msg::Heartbeat { proposal: Some(p), elected, .. } = proposing else { panic!("{out:?}") };
        assert_eq!((p.witness, elected.witness), (1, 0));
        // b persists it before it says so; a takes it up once b says so.
        let taken = b.step(Input::Received { now: 210, link: Link::Private, msg: proposing });
        assert_eq!(taken, [Action::Elect(p)]);
        a.step(Input::Received { now: 220, link: Link::Private, msg: b.heartbeat_msg() });
        assert!(a.step(Input::Tick { now: 250 }).contains(&Action::Elect(p)));
        assert_eq!((a.elected(), b.elected()), (p, p));
        // The first witness answers again: the pair goes back to it, the same way.
        a.step(Input::WitnessAnswer { now: 300, witness: 0, sent: 250, granted: true });
        let out = a.step(Input::Tick { now: 300 });
        assert!(matches!(
            sent(&out).pop(),
            Some(Msg::Heartbeat { proposal: Some(Elected { witness: 0, seq: 2 }), .. })
        ));
    }

    #[test]
    fn a_claim_without_a_lease_or_heard_answered_by_the_peer_gives_up() {
        let mut b = Node::new(witnessed(false, 1));
        b.step(Input::Start { now: 0, promised: 0, incarnation: 9, elected: Elected::default() });
        b.step(Input::Tick { now: 3_000 });
        assert_eq!(b.claim(), Some(1));
        // Nobody answers: the claim stands, asked again every renewal, and never acts.
        let asked: usize = (31..80).map(|t| asks(&b.step(Input::Tick { now: t * 100 })).len()).sum();
        assert!((9..=10).contains(&asked), "asked {asked} times in 4.9 s");
        assert_eq!(b.acting(), None);
        // The peer is heard again: the claim is given up, and the witness told.
        b.step(Input::Received { now: 8_000, link: Link::Public, msg: hb(3, Some(7), 1_000) });
        let out = b.step(Input::Tick { now: 8_000 });
        assert!(out.contains(&Action::ReleaseWitness { epoch: 1 }), "{out:?}");
        assert_eq!(b.claim(), None);
        // A grant that comes after, for a request sent before, is void.
        b.step(Input::WitnessAnswer { now: 8_100, witness: 0, sent: 7_900, granted: true });
        assert!(!b.lease_held(0, 8_100));
    }

    /// A primary in epoch 1 with `witnesses` witnesses, its peer (incarnation 2) heard at 0.
    fn witnessed_primary(witnesses: usize) -> Node {
        let mut a = Node::new(witnessed(true, witnesses));
        a.step(Input::Start { now: 0, promised: 0, incarnation: 1, elected: Elected::default() });
        a.step(Input::Received { now: 0, link: Link::Private, msg: hb(2, None, 1_000) });
        a.step(Input::Tick { now: 0 });
        a.step(Input::Received { now: 1, link: Link::Private, msg: Msg::Grant { epoch: 1, to: 1 } });
        assert_eq!(a.acting(), Some(1));
        a
    }

    #[test]
    fn a_primary_keeps_the_role_through_silence_only_while_it_holds_every_lease() {
        let mut a = witnessed_primary(2);
        assert_eq!(asks(&a.step(Input::Tick { now: 100 })), [0, 1], "renews both");
        for w in 0..2 {
            a.step(Input::WitnessAnswer { now: 120, witness: w, sent: 100, granted: true });
        }
        // Held until 7.1 s. The peer is silent from 1 s on; renewals of witness 0 (the elected
        // one) go unanswered, witness 1 keeps granting.
        for t in (2..71).map(|t| t * 100) {
            let out = a.step(Input::Tick { now: t });
            if asks(&out).contains(&1) {
                a.step(Input::WitnessAnswer { now: t + 10, witness: 1, sent: t, granted: true });
            }
            assert_eq!(a.acting(), Some(1), "at {t}");
        }
        let out = a.step(Input::Tick { now: 7_100 });
        assert_eq!(a.acting(), None, "witness 0's lease ran out: {out:?}");
        assert!(out.contains(&Action::ReleaseWitness { epoch: 1 }), "{out:?}");
    }

    #[test]
    fn a_primary_that_hears_a_claim_stands_down_unless_every_lease_is_its_own() {
        let claim = Msg::Heartbeat {
            incarnation: 2,
            promised: 2,
            acting: None,
            health: 1_000,
            ready: true,
            claim: Some(2),
            elected: Elected::default(),
            proposal: None,
        };
        let mut a = witnessed_primary(1);
        a.step(Input::Tick { now: 100 });
        a.step(Input::WitnessAnswer { now: 120, witness: 0, sent: 100, granted: true });
        a.step(Input::Received { now: 200, link: Link::Public, msg: claim.clone() });
        assert_eq!(a.acting(), Some(1), "the claim cannot be granted while a holds the lease");
        let mut a = witnessed_primary(1);
        let out = a.step(Input::Received { now: 200, link: Link::Public, msg: claim });
        assert_eq!(a.acting(), None, "{out:?}");
        assert!(out.contains(&Action::StopActing { why: "the peer claims the role through a witness" }));
    }

    #[test]
    fn a_node_whose_volumes_are_not_up_to_date_never_takes_the_role() {
        // Its peer dies: it neither fences nor claims, and says why.
        let mut b = Node::new(Config { witnesses: 1, ..Config::default() });
        b.step(Input::Start { now: 0, promised: 2, incarnation: 5, elected: Elected::default() });
        b.step(Input::Health { now: 0, score: 1_000, ready: false });
        let out: Vec<Action> = (1..100).flat_map(|t| b.step(Input::Tick { now: t * 100 })).collect();
        assert!(!out.contains(&Action::Fence) && b.claim().is_none(), "{out:?}");
        assert!(out.contains(&Action::Alarm(
            "the peer is silent and this node's volumes are not up to date: not promoting"
        )));
        assert!(b.conditions(10_000).iter().any(|c| c.contains("not up to date")));
        // A switchover to it is refused.
        let mut a = primary();
        let unready = not_ready(hb(2, None, 1_000));
        a.step(Input::Received { now: 10, link: Link::Private, msg: unready });
        assert!(!grants(&a.step(Input::Switchover { now: 20 })));
        assert_eq!(a.acting(), Some(1));
    }

    #[test]
    fn when_only_the_other_node_is_ready_it_asks_for_the_first_epoch() {
        let mut b = started(false, 2);
        b.step(Input::Health { now: 0, score: 1_000, ready: true });
        let unready = not_ready(hb(1, None, 1_000));
        b.step(Input::Received { now: 0, link: Link::Private, msg: unready.clone() });
        let asks = |out: Vec<Action>| sent(&out).iter().any(|m| matches!(m, Msg::Request { .. }));
        assert!(!asks(b.step(Input::Tick { now: 100 })), "not before the hold time");
        b.step(Input::Received { now: 3_000, link: Link::Private, msg: unready });
        assert!(asks(b.step(Input::Tick { now: 3_000 })));
        // The preferred node asks nothing while it is not ready.
        let mut a = started(true, 1);
        a.step(Input::Health { now: 0, score: 1_000, ready: false });
        a.step(Input::Received { now: 0, link: Link::Private, msg: hb(2, None, 1_000) });
        assert!(!sent(&a.step(Input::Tick { now: 100 })).iter().any(|m| matches!(m, Msg::Request { .. })));
    }

    #[test]
    fn a_node_that_starts_alone_waits_before_it_fences() {
        let mut b = Node::new(Config { startup_wait: 30_000, ..Config::default() });
        b.step(Input::Start { now: 0, promised: 0, incarnation: 1, elected: Elected::default() });
        assert!(!b.step(Input::Tick { now: 20_000 }).contains(&Action::Fence), "within the wait");
        assert_eq!(b.next_deadline(), Some(30_000));
        assert!(b.step(Input::Tick { now: 30_000 }).contains(&Action::Fence));
    }
}
