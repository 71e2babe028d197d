//! The seeded simulator: two [`Node`]s, two links, a BMC each, and a schedule of faults drawn
//! from a seed. Time advances in steps of one tick; at every step the simulator may crash or
//! power on a node, hang it (its daemon stops, while what it holds stays held) until a
//! watchdog resets it, cut or heal either link in either direction, and delay, duplicate or
//! drop messages (random delays also reorder them). Fences fail at random. Witnesses (as many
//! as the configuration names) restart, losing nothing they kept, and are cut off from either
//! node for a while; what goes to and from them is delayed, dropped and duplicated as the
//! rest. After every event it checks the invariant: two nodes never act at once. A violation names the seed and the
//! step, and [`run`] with that seed replays it exactly.

use crate::core::{Action, Config, Elected, Input, Link, Msg, Node};
use crate::witness::{Answer, Witness};

/// A small, seeded PRNG (SplitMix64): the schedule depends on the seed alone.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `per_mille`/1000.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.next_u64() % 1000 < per_mille
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// How hostile a schedule is, per step (per mille).
#[derive(Debug, Clone)]
pub struct Faults {
    pub crash: u64,
    pub power_on: u64,
    pub hang: u64,
    pub cut: u64,
    pub heal: u64,
    pub drop: u64,
    pub duplicate: u64,
    /// Largest message delay, in ticks.
    pub max_delay: u64,
    pub fence_fails: u64,
    pub switchover: u64,
    /// A node's health changes (between healthy, degraded and not ready).
    pub health: u64,
    /// Maintenance is switched on or off on a node.
    pub maintenance: u64,
    /// A witness is cut off from a node (both ways), or reached again.
    pub witness_cut: u64,
    pub witness_heal: u64,
    /// A witness goes down (for up to 3 s) and starts again from what it kept.
    pub witness_restart: u64,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            crash: 3,
            power_on: 20,
            hang: 2,
            cut: 10,
            heal: 30,
            drop: 50,
            duplicate: 30,
            max_delay: 8,
            fence_fails: 300,
            switchover: 5,
            health: 10,
            maintenance: 2,
            witness_cut: 5,
            witness_heal: 30,
            witness_restart: 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Power {
    On,
    Off,
    /// The daemon is stopped until this step; what it holds stays held. A watchdog resets the
    /// node if it stays stopped past [`WATCHDOG`] steps.
    Hung {
        until: u64,
        since: u64,
    },
}

/// Steps a hung daemon may stay stopped before the watchdog resets the node.
const WATCHDOG: u64 = 20;
/// Milliseconds per step.
const TICK: u64 = 100;
/// The nodes' names, as the witnesses know them.
const NAMES: [&str; 2] = ["node-a", "node-b"];

/// Something on its way, by the step it arrives at.
#[derive(Debug, Clone)]
enum Flight {
    Peer { to: usize, link: Link, msg: Msg },
    Ask { witness: usize, from: usize, sent: u64, epoch: u64 },
    Release { witness: usize, from: usize, epoch: u64 },
    Answer { to: usize, witness: usize, sent: u64, granted: bool },
}

struct SimWitness {
    rule: Witness,
    /// Down (restarting) until this step.
    down_until: u64,
    /// reach[node]: the node and the witness can reach each other.
    reach: [bool; 2],
}

struct Machine {
    node: Node,
    power: Power,
    /// What survives a crash: the promise, the incarnation counter and the elected witness.
    promised: u64,
    incarnation: u64,
    elected: Elected,
    /// A fence this node asked for: the step it answers at, and whether it worked.
    fence_due: Option<(u64, bool)>,
}

/// What a run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub violation: Option<String>,
    /// Steps in which some node acted.
    pub steps_with_primary: u64,
    pub role_changes: u64,
    /// The longest a primary's crash went unanswered, in steps, while the other node stayed
    /// up, the crashed one stayed off, and every fence asked for worked: from the crash to
    /// the survivor acting.
    pub longest_takeover: u64,
    /// The longest run of steps in which both nodes were up, every link carried both ways,
    /// and yet neither acted: the pair failing to form or re-form.
    pub longest_leaderless: u64,
}

/// Runs one schedule of `steps` steps from `seed`.
pub fn run(seed: u64, steps: u64, base: &Config, faults: &Faults) -> Outcome {
    run_traced(seed, steps, base, faults, &mut None)
}

/// [`run`], writing every event into `trace` when there is one (to explain a violation).
pub fn run_traced(
    seed: u64,
    steps: u64,
    base: &Config,
    faults: &Faults,
    trace: &mut Option<Vec<String>>,
) -> Outcome {
    // Takes a closure, so that an untraced run formats nothing.
    let mut note = |step: u64, what: &dyn Fn() -> String| {
        if let Some(t) = trace.as_mut() {
            t.push(format!("{step:5} {}", what()));
        }
    };
    let mut rng = Rng::new(seed);
    let mut machines: Vec<Machine> = (0..2)
        .map(|i| Machine {
            node: Node::new(Config { preferred: i == 0, ..base.clone() }),
            power: Power::On,
            promised: 0,
            incarnation: 0,
            elected: Elected::default(),
            fence_due: None,
        })
        .collect();
    // Messages in flight, by the step they arrive at (a ring of slots, each in the order sent).
    let slots = faults.max_delay as usize + 2;
    let mut wire: Vec<Vec<Flight>> = vec![Vec::new(); slots];
    let mut witnesses: Vec<SimWitness> = (0..base.witnesses)
        .map(|_| SimWitness { rule: Witness::default(), down_until: 0, reach: [true; 2] })
        .collect();
    // Sends `flight` unless dropped, once or twice, each copy with its own delay.
    let post = |rng: &mut Rng, wire: &mut Vec<Vec<Flight>>, step: u64, flight: Flight| {
        if rng.chance(faults.drop) {
            return;
        }
        let copies = if rng.chance(faults.duplicate) { 2 } else { 1 };
        for _ in 0..copies {
            let at = step + 1 + rng.below(faults.max_delay + 1);
            wire[at as usize % slots].push(flight.clone());
        }
    };
    let mut arriving = Vec::new();
    // cut[link][from]: that direction of that link is down.
    let mut cut = [[false; 2]; 2];
    let mut out = Outcome {
        violation: None,
        steps_with_primary: 0,
        role_changes: 0,
        longest_takeover: 0,
        longest_leaderless: 0,
    };
    let mut leaderless = 0u64;
    // A primary crashed at this step while its peer was up, and nobody acts yet.
    let mut crashed_primary: Option<(usize, u64)> = None;
    let mut last_acting: [Option<u64>; 2] = [None; 2];

    let start = |m: &mut Machine, now: u64| {
        m.incarnation += 1;
        m.power = Power::On;
        m.fence_due = None;
        Input::Start { now, promised: m.promised, incarnation: m.incarnation, elected: m.elected }
    };
    // What the nodes said, node by node, carried out at the next step.
    let mut pending: [Vec<Action>; 2] = [Vec::new(), Vec::new()];
    let mut said = Vec::new();
    for (i, m) in machines.iter_mut().enumerate() {
        let input = start(m, 0);
        m.node.step_into(input, &mut pending[i]);
    }

    for step in 0..steps {
        let now = step * TICK;
        // Carry out what the nodes said.
        for i in 0..2 {
            std::mem::swap(&mut said, &mut pending[i]);
            for a in said.drain(..) {
                if !matches!(a, Action::Send(Msg::Heartbeat { .. })) {
                    note(step, &|| format!("node {i}: {a:?}"));
                }
                match a {
                    Action::Send(msg) => {
                        for link in [Link::Private, Link::Public] {
                            if !cut[link as usize][i] {
                                post(
                                    &mut rng,
                                    &mut wire,
                                    step,
                                    Flight::Peer { to: 1 - i, link, msg: msg.clone() },
                                );
                            }
                        }
                    }
                    Action::AskWitness { witness, epoch } => {
                        if witnesses[witness].reach[i] {
                            let ask = Flight::Ask { witness, from: i, sent: now, epoch };
                            post(&mut rng, &mut wire, step, ask);
                        }
                    }
                    Action::ReleaseWitness { epoch } => {
                        for (witness, w) in witnesses.iter().enumerate() {
                            if w.reach[i] {
                                post(&mut rng, &mut wire, step, Flight::Release { witness, from: i, epoch });
                            }
                        }
                    }
                    Action::Persist { promised } => machines[i].promised = promised,
                    Action::Elect(e) => machines[i].elected = e,
                    Action::Act { .. } | Action::StopActing { .. } | Action::Alarm(_) => {}
                    Action::Fence => {
                        let fails = rng.chance(faults.fence_fails);
                        let answer_at = step + 2 + rng.below(5);
                        note(step, &|| {
                            format!(
                                "fence of node {} {}",
                                1 - i,
                                if fails { "fails" } else { "powers it off" }
                            )
                        });
                        if fails {
                            crashed_primary = None;
                        } else {
                            // The BMC powers the peer off before the answer comes back.
                            machines[1 - i].power = Power::Off;
                            machines[1 - i].node = Node::new(machines[1 - i].node_config());
                        }
                        machines[i].fence_due = Some((answer_at, !fails));
                    }
                }
            }
        }
        // The invariant, after everything this step did.
        let acting: Vec<Option<u64>> =
            machines.iter().map(|m| if m.power == Power::Off { None } else { m.node.acting() }).collect();
        if acting[0].is_some() && acting[1].is_some() {
            out.violation = Some(format!(
                "seed {seed:#x}, step {step}: both nodes act (epochs {:?} and {:?})",
                acting[0], acting[1]
            ));
            return out;
        }
        if acting.iter().any(Option::is_some) {
            out.steps_with_primary += 1;
        }
        for i in 0..2 {
            if acting[i] != last_acting[i] {
                out.role_changes += 1;
                last_acting[i] = acting[i];
            }
        }
        let connected = cut.iter().flatten().all(|down| !down);
        // A pair can only be expected to have a primary when one of its nodes is ready.
        let one_ready = machines.iter().any(|m| m.node.ready());
        let all_on = machines.iter().all(|m| m.power == Power::On);
        if connected && all_on && one_ready && acting.iter().all(Option::is_none) {
            leaderless += 1;
            out.longest_leaderless = out.longest_leaderless.max(leaderless);
        } else {
            leaderless = 0;
        }
        if let Some((survivor, at)) = crashed_primary {
            if acting[survivor].is_some() {
                out.longest_takeover = out.longest_takeover.max(step - at);
                crashed_primary = None;
            } else if machines[survivor].power != Power::On {
                crashed_primary = None;
            }
        }

        // Faults.
        for (i, m) in machines.iter_mut().enumerate() {
            match m.power {
                Power::On if rng.chance(faults.crash) => {
                    note(step, &|| format!("node {i}: crash"));
                    if m.node.acting().is_some() {
                        crashed_primary = Some((1 - i, step));
                    }
                    m.power = Power::Off;
                    m.node = Node::new(m.node_config());
                }
                Power::On if rng.chance(faults.hang) => {
                    note(step, &|| format!("node {i}: hang"));
                    m.power = Power::Hung { until: step + 1 + rng.below(2 * WATCHDOG), since: step };
                }
                Power::Off if rng.chance(faults.power_on) => {
                    note(step, &|| format!("node {i}: power on"));
                    // The crashed primary is back before it was replaced: a new situation.
                    if crashed_primary.is_some_and(|(survivor, _)| survivor != i) {
                        crashed_primary = None;
                    }
                    let input = start(m, now);
                    m.node.step_into(input, &mut pending[i]);
                }
                Power::Hung { since, .. } if step >= since + WATCHDOG => {
                    // The watchdog resets the node before it can resume.
                    note(step, &|| format!("node {i}: watchdog reset"));
                    let input = start(m, now);
                    m.node.step_into(input, &mut pending[i]);
                }
                Power::Hung { until, .. } if step >= until => {
                    note(step, &|| format!("node {i}: resumes"));
                    m.power = Power::On
                }
                _ => {}
            }
        }
        for down in cut.iter_mut().flatten() {
            if !*down && rng.chance(faults.cut) {
                *down = true;
            } else if *down && rng.chance(faults.heal) {
                *down = false;
            }
        }
        for (n, w) in witnesses.iter_mut().enumerate() {
            for (i, reach) in w.reach.iter_mut().enumerate() {
                if *reach && rng.chance(faults.witness_cut) {
                    note(step, &|| format!("witness {n} cut off from node {i}"));
                    *reach = false;
                } else if !*reach && rng.chance(faults.witness_heal) {
                    *reach = true;
                }
            }
            if w.down_until <= step && rng.chance(faults.witness_restart) {
                // It kept its last grant (fsynced before it answered): it starts from that.
                let kept = w.rule.lease().filter(|l| l.until.is_some()).map(|l| (l.holder.clone(), l.epoch));
                w.down_until = step + 1 + rng.below(30);
                note(step, &|| format!("witness {n} restarts, keeping {kept:?}"));
                w.rule = Witness::restarted(kept, w.down_until * TICK, base.lease);
            }
        }

        // Inputs: messages due, fence answers, ticks, and now and then a switchover.
        std::mem::swap(&mut arriving, &mut wire[step as usize % slots]);
        for flight in arriving.drain(..) {
            match flight {
                Flight::Peer { to, link, msg } => {
                    if machines[to].power == Power::On {
                        if !matches!(msg, Msg::Heartbeat { .. }) {
                            note(step, &|| format!("node {to} gets {msg:?} on {link:?}"));
                        }
                        machines[to].node.step_into(Input::Received { now, link, msg }, &mut pending[to]);
                    }
                }
                Flight::Ask { witness, from, sent, epoch } => {
                    let w = &mut witnesses[witness];
                    if w.down_until > step || !w.reach[from] {
                        continue;
                    }
                    let granted =
                        matches!(w.rule.ask(now, NAMES[from], epoch, base.lease), Answer::Granted { .. });
                    note(step, &|| {
                        format!("witness {witness}: node {from} asks for epoch {epoch}: {granted}")
                    });
                    post(&mut rng, &mut wire, step, Flight::Answer { to: from, witness, sent, granted });
                }
                Flight::Release { witness, from, epoch } => {
                    let w = &mut witnesses[witness];
                    if w.down_until <= step && w.reach[from] && w.rule.release(NAMES[from], epoch) {
                        note(step, &|| format!("witness {witness}: node {from} gives back epoch {epoch}"));
                    }
                }
                Flight::Answer { to, witness, sent, granted } => {
                    if machines[to].power == Power::On && witnesses[witness].reach[to] {
                        let answer = Input::WitnessAnswer { now, witness, sent, granted };
                        machines[to].node.step_into(answer, &mut pending[to]);
                    }
                }
            }
        }
        for (i, m) in machines.iter_mut().enumerate() {
            if m.power != Power::On {
                continue;
            }
            if let Some((_, off)) = m.fence_due.filter(|(at, _)| step >= *at) {
                m.fence_due = None;
                m.node.step_into(Input::FenceDone { now, off }, &mut pending[i]);
            }
            m.node.step_into(Input::Tick { now }, &mut pending[i]);
            if rng.chance(faults.switchover) {
                m.node.step_into(Input::Switchover { now }, &mut pending[i]);
            }
            if rng.chance(faults.health) {
                let score = [1_000, 1_000, 500, 300][rng.below(4) as usize];
                let ready = !rng.chance(100);
                m.node.step_into(Input::Health { now, score, ready }, &mut pending[i]);
            }
            if rng.chance(faults.maintenance) {
                m.node.step_into(Input::Maintenance { on: rng.chance(300) }, &mut pending[i]);
            }
        }
    }
    out
}

impl Machine {
    fn node_config(&self) -> Config {
        self.node.config().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_replays_exactly_from_its_seed() {
        let cfg = Config { dead_time: 1_000, fence_delay: 1_000, ..Config::default() };
        let a = run(42, 2_000, &cfg, &Faults::default());
        let b = run(42, 2_000, &cfg, &Faults::default());
        assert_eq!(a, b);
        assert_ne!(a, run(43, 2_000, &cfg, &Faults::default()), "another seed, another schedule");
    }
}
