//! The pair daemon (`pairos pair run`): one node's side of the pair. It feeds the decision core
//! ([`pairos_pair::core`]) with heartbeats from both links, its clock, fence answers, its own
//! health and the operator's requests, and carries out what the core says, in order: send,
//! persist (fsynced before anything after it), act (take the pair's address), stop acting (give
//! it up first), fence, ask a witness for its lease or give it back, alarm. Every role change
//! and alarm is an event with its reason. With volumes, it runs the volume manager and answers
//! DRBD's fence-peer calls.
//!
//! On a node, `pairos run` (PID 1) starts it and starts it again if it ends; the watchdog resets
//! the node if it hangs. It also runs in a network namespace on a host, which is how it is
//! tested against keepalived.

pub mod address;
pub mod config;
pub mod control;
pub mod persisted;
pub mod public_watch;
pub mod sensors;
pub mod settings;
pub mod status;
pub mod wire;

use std::io::Write;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use pairos_pair::core::{Action, Elected, Input, Link, Msg, Node};
use pairos_recovery::trust::PairKey;

use self::address::PairAddress;
use self::config::DaemonConfig;
use self::control::Request;
use self::persisted::{Event, Roles, Store};
use self::public_watch::Ports;
use self::sensors::Sensors;
use self::status::{AddressView, LinkView, Links, PairStatus, PeerView, WitnessView};
use crate::pair::arp::show;
use crate::pair::membership::{self, Receiver};
use crate::witness::client::Client as WitnessClient;

/// What wakes the loop.
enum Wake {
    Packet(Link, Vec<u8>),
    FenceDone(Result<(), String>),
    Ports(Ports),
    Sensors(Sensors),
    Control(Request, control::Reply),
    Witness(Vec<u8>, std::net::SocketAddr),
    /// The workload runner asks to hand the pair to the peer (why).
    MoveAway(String),
}

fn store_events(cfg: &DaemonConfig) -> std::collections::VecDeque<Event> {
    Store::new(&cfg.state_dir).last_events(EVENTS_SHOWN).into()
}

fn unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn say(msg: impl std::fmt::Display) {
    println!("pair: {msg}");
    let _ = std::io::stdout().flush();
}

/// [`say`] for those that take a line (the volume manager).
fn say_line(line: String) {
    say(line);
}

/// The daemon's process id, in the run folder.
pub const PID_FILE: &str = "pair.pid";

/// How long after taking the address the gratuitous ARPs are sent again.
const GARP_REPEAT: Duration = Duration::from_secs(2);
/// A pair address that could not be taken is tried again this often.
const TAKE_RETRY: Duration = Duration::from_secs(1);

struct Daemon {
    cfg: DaemonConfig,
    core: Node,
    store: Store,
    roles: Roles,
    start: Instant,
    wire: std::sync::Arc<wire::Wire>,
    address: Option<PairAddress>,
    /// The address is to be held (the core acts) but is not yet: when to try again.
    take_at: Option<Instant>,
    garp_again: Option<Instant>,
    take_error: Option<String>,
    ports: Ports,
    /// The last sensor reading (all well until the first one).
    sensors: Sensors,
    peer_holder: [u8; 6],
    receiver: Receiver,
    wake: mpsc::Sender<Wake>,
    fence_error: Option<String>,
    watchdog: Option<std::fs::File>,
    written: Option<(PairStatus, Instant)>,
    /// The last events, for the status (read from the state once, at start).
    recent: std::collections::VecDeque<Event>,
    /// The public port's MAC (read once): the peer's confirmation is compared with it.
    own_mac: Option<[u8; 6]>,
    witness: Option<WitnessClient>,
    /// Each witness's last answer, as the status says it.
    witness_answers: Vec<Option<String>>,
    /// The volume manager, when the node has volumes.
    volumes: Option<crate::volumes::manager::Handle>,
    /// Asks the peer to outdate its side of a volume, for DRBD's fence-peer call.
    outdater: Option<crate::volumes::outdate::Asker>,
    /// The workload runner, when the node has volumes (idle while the pair has no workloads).
    workloads: Option<crate::workloads::runner::Handle>,
}

/// How many events the status shows.
const EVENTS_SHOWN: usize = 10;

pub fn run(cfg: DaemonConfig) -> anyhow::Result<()> {
    let key_text = std::fs::read_to_string(&cfg.key_file)
        .with_context(|| format!("reading the pair key {}", cfg.key_file.display()))?;
    let key = PairKey::from_hex(key_text.trim())
        .with_context(|| format!("{}: expected 64 hex digits", cfg.key_file.display()))?;
    let store = Store::new(&cfg.state_dir);
    let mut roles = store.load()?;
    // A new incarnation at every start, above any before: the clock's seconds, unless the
    // clock is behind what was kept.
    roles.incarnation = (roles.incarnation + 1).max(unix_secs());
    store.save(&roles)?;
    let sockets = [
        pairos_pxe::sockets::udp_socket(&cfg.private.interface, membership::PORT)?,
        pairos_pxe::sockets::udp_socket(&cfg.public.interface, membership::PORT)?,
    ];
    let (wake, events) = mpsc::channel();
    for link in [Link::Private, Link::Public] {
        let socket = sockets[link as usize].try_clone()?;
        let wake = wake.clone();
        std::thread::Builder::new().name(format!("pair-recv-{link:?}")).spawn(move || {
            let mut buf = [0u8; 512];
            loop {
                match socket.recv_from(&mut buf) {
                    Ok((n, _)) => {
                        if wake.send(Wake::Packet(link, buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                    // A port that went away: look again in a moment rather than spin.
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        })?;
    }
    public_watch::spawn(
        public_watch::Watch {
            private: cfg.private.interface.clone(),
            public: cfg.public.interface.clone(),
            own_address: cfg.public.address,
            gateway: cfg.public.gateway,
            pair_address: cfg.pair_address.as_ref().map(|a| a.address),
            every: Duration::from_millis(500),
        },
        wake.clone(),
        Wake::Ports,
    );
    if let Some(command) = cfg.sensors.clone() {
        sensors::spawn(
            command,
            sensors::EVERY,
            wake.clone(),
            Wake::Sensors,
            Some(cfg.run_dir.join(sensors::READINGS_FILE)),
        );
    }
    control::spawn(&cfg.run_dir, wake.clone(), Wake::Control)?;
    let witness = witness_client(&cfg, roles.incarnation, &wake)?;
    let outdater = match cfg.volumes {
        true => {
            use crate::volumes::outdate::{self, Asker, Parties};
            let parties = Parties {
                key: key.clone(),
                pair_id: cfg.pair_id.clone(),
                node: cfg.node.clone(),
                peer: cfg.peer.clone(),
                incarnation: roles.incarnation,
            };
            let socket = pairos_pxe::sockets::udp_socket(&cfg.public.interface, outdate::PORT)?;
            let drbd = pairos_mirror::drbd::Drbd::new(std::path::Path::new(pairos_mirror::drbd::CONF));
            outdate::serve(parties.clone(), socket, drbd, say_line)?;
            let to = std::net::SocketAddr::from((cfg.public.peer, outdate::PORT));
            Some(Asker::new(parties, cfg.public.address, to))
        }
        false => None,
    };
    let volumes = match cfg.volumes {
        true => Some(crate::volumes::manager::spawn(
            crate::volumes::manager::Setup {
                state_dir: cfg.state_dir.clone(),
                run_dir: cfg.run_dir.clone(),
                key: key.clone(),
                peer: cfg.private.peer,
                sites: pairos_mirror::drbd_conf::Sites {
                    node1: crate::pair::private_link::address("node-1"),
                    node2: crate::pair::private_link::address("node-2"),
                },
                resync_stall_ms: cfg.timing.resync_stall_ms,
            },
            say_line,
        )?),
        false => None,
    };
    let workloads = match cfg.volumes {
        true => {
            let wake = wake.clone();
            Some(crate::workloads::runner::spawn(
                crate::workloads::runner::Setup {
                    state_dir: cfg.state_dir.clone(),
                    run_dir: cfg.run_dir.clone(),
                    drbd_conf: std::path::PathBuf::from(pairos_mirror::drbd::CONF),
                    address: cfg.pair_address.as_ref().map(|a| std::net::IpAddr::V4(a.address)),
                    logs: crate::workloads::logs::on_node(&cfg.state_dir),
                    peer: Some((cfg.private.peer, key.clone())),
                },
                say_line,
                Box::new(move |why| {
                    let _ = wake.send(Wake::MoveAway(why));
                }),
            )?)
        }
        false => None,
    };
    // For the operator and the lab: which process is the daemon.
    let pid_file = cfg.run_dir.join(PID_FILE);
    std::fs::write(&pid_file, format!("{}\n", std::process::id()))
        .with_context(|| format!("writing {}", pid_file.display()))?;
    let watchdog = match &cfg.watchdog {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(|| format!("arming the watchdog {}", path.display()))?;
            say(format_args!("watchdog {} armed: the node resets if this daemon stops", path.display()));
            Some(file)
        }
        None => None,
    };
    let address = cfg.pair_address.as_ref().map(|a| PairAddress {
        interface: cfg.public.interface.clone(),
        address: a.address,
        prefix: a.prefix,
    });
    // Whatever a previous run held is not ours until the core says so.
    if let Some(a) = &address {
        if a.held() {
            say(format_args!("giving up {} (held by an earlier run)", a.address));
            a.release().map_err(anyhow::Error::msg)?;
        }
    }
    let receiver = Receiver::new(key.clone(), cfg.pair_id.clone(), cfg.peer.clone());
    let mut d = Daemon {
        core: Node::new(cfg.core()),
        store,
        roles,
        start: Instant::now(),
        wire: wire::Wire::new(
            &cfg.pair_id,
            &cfg.node,
            roles.incarnation,
            key.clone(),
            sockets,
            [cfg.private.peer, cfg.public.peer].map(|ip| std::net::SocketAddr::from((ip, membership::PORT))),
        ),
        address,
        take_at: None,
        garp_again: None,
        take_error: None,
        ports: Ports {
            private_carrier: public_watch::carrier(&cfg.private.interface),
            public_carrier: public_watch::carrier(&cfg.public.interface),
            gateway_answers: None,
            holder: None,
        },
        sensors: Sensors::Read { critical: Vec::new() },
        peer_holder: [0; 6],
        receiver,
        wake,
        fence_error: None,
        watchdog,
        written: None,
        recent: store_events(&cfg),
        own_mac: pairos_pxe::sockets::interface_mac(&cfg.public.interface),
        witness_answers: vec![None; cfg.witnesses.len()],
        witness,
        volumes,
        outdater,
        workloads,
        cfg,
    };
    say(format_args!(
        "{} of pair {} starting (incarnation {}, promised epoch {}, fence: {})",
        d.cfg.node,
        d.cfg.pair_id,
        d.roles.incarnation,
        d.roles.promised,
        d.cfg.fence.as_ref().map_or("none".into(), |f| f.describe())
    ));
    let now = d.now();
    let elected = Elected { seq: d.roles.elected_seq, witness: d.roles.elected_witness };
    d.step(Input::Start { now, promised: d.roles.promised, incarnation: d.roles.incarnation, elected })?;
    d.step(Input::Maintenance { on: d.roles.maintenance })?;
    let health = d.health();
    let ready = d.ready();
    d.step(Input::Health { now, score: health, ready })?;
    let every = Duration::from_millis(d.cfg.timing.heartbeat_ms);
    d.wire.spawn_beats(every, wire::STALE)?;
    let mut next_tick = Instant::now();
    loop {
        // Wake for the next heartbeat, or sooner when the peer's silence runs out.
        let deadline = d.core.next_deadline().map(|ms| d.start + Duration::from_millis(ms));
        let wake_at = deadline.filter(|t| *t > Instant::now()).map_or(next_tick, |t| t.min(next_tick));
        match events.recv_timeout(wake_at.saturating_duration_since(Instant::now())) {
            Ok(w) => d.wake(w)?,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => anyhow::bail!("the daemon's threads ended"),
        }
        if deadline.is_some_and(|t| Instant::now() >= t) && Instant::now() < next_tick {
            let now = d.now();
            d.step(Input::Tick { now })?;
        }
        if Instant::now() >= next_tick {
            next_tick += every;
            // A loop that fell far behind (a stopped process resumed) starts afresh.
            if next_tick < Instant::now() {
                next_tick = Instant::now() + every;
            }
            let now = d.now();
            d.step(Input::Tick { now })?;
            d.tell_readiness()?;
            d.keep_address();
            d.pet_watchdog();
            d.write_status(false);
        }
    }
}

/// The witnesses' client and the thread that hears their answers, when there are witnesses.
fn witness_client(
    cfg: &DaemonConfig,
    incarnation: u64,
    wake: &mpsc::Sender<Wake>,
) -> anyhow::Result<Option<WitnessClient>> {
    let Some(key_file) = cfg.witness_key_file.as_ref().filter(|_| !cfg.witnesses.is_empty()) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(key_file)
        .with_context(|| format!("reading the witness key {}", key_file.display()))?;
    let key = PairKey::from_hex(text.trim())
        .with_context(|| format!("{}: expected 64 hex digits", key_file.display()))?;
    let socket = std::net::UdpSocket::bind(("0.0.0.0", 0)).context("a socket for the witnesses")?;
    let receiving = socket.try_clone()?;
    let wake = wake.clone();
    std::thread::Builder::new().name("pair-witness".into()).spawn(move || {
        let mut buf = [0u8; 1024];
        loop {
            match receiving.recv_from(&mut buf) {
                Ok((n, from)) => {
                    if wake.send(Wake::Witness(buf[..n].to_vec(), from)).is_err() {
                        return;
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    })?;
    Ok(Some(WitnessClient::new(
        socket,
        key,
        &cfg.pair_id,
        &cfg.node,
        incarnation,
        cfg.timing.lease_ms,
        cfg.witnesses.clone(),
    )))
}

impl Daemon {
    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Whether this node could take the role: its volumes are all up to date (a node without
    /// volumes always could).
    fn ready(&self) -> bool {
        self.volumes.as_ref().is_none_or(|v| v.ready())
    }

    /// DRBD's fence-peer call, through `pairos volume fence-peer`: the peer's side of
    /// `resource` is outdated (asked over the public network while the peer is heard there),
    /// or the peer is off (a fence confirmed it). Anything else is no answer, and DRBD keeps
    /// the writes frozen. The question to the peer is asked off the loop.
    fn fence_peer(&mut self, resource: String, now: u64, reply: control::Reply) {
        use crate::volumes::outdate::Outcome;
        match &self.outdater {
            Some(asker) if self.core.heard_on(Link::Public, now) => {
                let asker = asker.clone();
                std::thread::spawn(move || {
                    reply.send(match asker.ask(&resource) {
                        Ok(Outcome::Outdated) => Ok("outdated".into()),
                        Ok(Outcome::Inconsistent) => Ok("inconsistent".into()),
                        Ok(Outcome::Primary) => Ok("primary".into()),
                        Ok(Outcome::Failed(why)) => {
                            Err(format!("the peer could not outdate {resource}: {why}"))
                        }
                        Err(why) => Err(why),
                    })
                });
            }
            _ if self.core.peer_fenced() => reply.send(Ok("off".into())),
            _ => reply.send(Err(
                "the peer is not heard on the public network and no fence has confirmed it off".into(),
            )),
        }
    }

    /// Resets the peer through its BMC, on a thread of its own; never a peer that is heard.
    fn reset_peer(&self, now: u64) -> Result<String, String> {
        if self.core.heard_on(Link::Private, now) || self.core.heard_on(Link::Public, now) {
            return Err(format!("{} is heard: it is not reset", self.cfg.peer));
        }
        let fence =
            self.cfg.fence.clone().ok_or_else(|| format!("the pair has no BMC for {}", self.cfg.peer))?;
        let (peer, agent) = (self.cfg.peer.clone(), fence.describe());
        let answer = format!("resetting {peer} through {agent}");
        std::thread::spawn(move || match fence.reset() {
            Ok(()) => say(format_args!("{peer} reset through {agent}")),
            Err(e) => say(format_args!("resetting {peer}: {e}")),
        });
        Ok(answer)
    }

    /// Tells the core when the volumes' readiness changed, and the volumes whether the peer
    /// is heard acting.
    fn tell_readiness(&mut self) -> anyhow::Result<()> {
        if let Some(v) = &self.volumes {
            let now = self.now();
            let heard = self.core.heard_on(Link::Private, now) || self.core.heard_on(Link::Public, now);
            v.set_peer(heard, heard && self.core.peer().is_some_and(|p| p.acting.is_some()));
        }
        if let Some(w) = &self.workloads {
            let now = self.now();
            let heard = self.core.heard_on(Link::Private, now) || self.core.heard_on(Link::Public, now);
            w.set_peer_can_take(heard && self.core.peer().is_some_and(|p| p.ready));
        }
        let ready = self.ready();
        if ready != self.core.ready() {
            say(format_args!(
                "volumes: {}",
                if ready { "all up to date: this node could take the role" } else { "not all up to date" }
            ));
            let (now, score) = (self.now(), self.health());
            self.step(Input::Health { now, score, ready })?;
        }
        Ok(())
    }

    /// This node's health: its ports' score less what its sensors cost.
    fn health(&self) -> u32 {
        self.ports.health().saturating_sub(self.sensors.penalty())
    }

    fn wake(&mut self, w: Wake) -> anyhow::Result<()> {
        let now = self.now();
        match w {
            Wake::Packet(link, bytes) => {
                if let Ok(p) = self.receiver.take(&bytes, link) {
                    if matches!(p.msg, Msg::Heartbeat { .. }) {
                        self.peer_holder = p.holder;
                    }
                    self.step(Input::Received { now, link, msg: p.msg })?;
                }
            }
            Wake::FenceDone(result) => {
                let off = result.is_ok();
                match result {
                    Ok(()) => {
                        self.fence_error = None;
                        say(format_args!("fence: {} is confirmed powered off", self.cfg.peer));
                        self.event("fence", "the peer is confirmed powered off".into());
                        if let Some(v) = &self.volumes {
                            v.peer_is_off(say_line);
                        }
                    }
                    Err(e) => {
                        say(format_args!("fence failed: {e}"));
                        self.fence_error = Some(e);
                    }
                }
                self.step(Input::FenceDone { now, off })?;
            }
            Wake::Ports(p) => {
                let was = self.ports;
                self.ports = p;
                if was.public_ok() != p.public_ok() || was.private_carrier != p.private_carrier {
                    say(format_args!(
                        "ports: public {}, private {}; health {}",
                        if p.public_ok() { "up" } else { "LOST" },
                        if p.private_carrier { "up" } else { "NO CARRIER" },
                        p.health()
                    ));
                }
                let score = self.health();
                self.step(Input::Health { now, score, ready: self.ready() })?;
            }
            Wake::Sensors(s) => {
                match &s {
                    Sensors::Read { critical } if critical.is_empty() => {
                        say("sensors: all within their thresholds")
                    }
                    Sensors::Read { critical } => {
                        say(format_args!("sensors CRITICAL: {}", critical.join(", ")))
                    }
                    Sensors::Unreadable(why) => say(format_args!("sensors cannot be read: {why}")),
                }
                self.sensors = s;
                let score = self.health();
                self.step(Input::Health { now, score, ready: self.ready() })?;
            }
            Wake::Witness(bytes, from) => {
                let Some(m) = self.witness.as_mut().and_then(|c| c.take(&bytes, from)) else {
                    return Ok(());
                };
                let a = &m.answer;
                let said = if a.granted {
                    format!("granted for epoch {} ({} ms)", a.epoch, a.ms)
                } else {
                    format!("refused: {} holds it for epoch {} ({} ms left)", a.holder, a.epoch, a.ms)
                };
                if self.witness_answers[m.witness].as_ref().map(|s| s.split(' ').next())
                    != Some(said.split(' ').next())
                {
                    say(format_args!("witness {}: {said}", self.cfg.witnesses[m.witness]));
                }
                self.witness_answers[m.witness] = Some(said);
                self.step(Input::WitnessAnswer {
                    now,
                    witness: m.witness,
                    sent: m.sent,
                    granted: a.granted,
                })?;
            }
            Wake::MoveAway(why) => {
                say(format_args!("{why}: handing the pair over to {}", self.cfg.peer));
                self.event("workload", why.clone());
                let out = self.core.step(Input::Switchover { now });
                if let Some(refused) = out.iter().find_map(|a| match a {
                    Action::Alarm(why) => Some(*why),
                    _ => None,
                }) {
                    say(format_args!("the handover was refused: {refused}"));
                }
                self.carry_out(out)?;
            }
            Wake::Control(request, reply) => {
                let answer = match request {
                    Request::Switchover => {
                        let out = self.core.step(Input::Switchover { now });
                        let refused = out.iter().find_map(|a| match a {
                            Action::Alarm(why) => Some(*why),
                            _ => None,
                        });
                        self.carry_out(out)?;
                        match refused {
                            Some(why) => Err(why.to_owned()),
                            None => Ok(format!("handed over to {}", self.cfg.peer)),
                        }
                    }
                    Request::Maintenance(on) => {
                        self.roles.maintenance = on;
                        self.store.save(&self.roles)?;
                        self.step(Input::Maintenance { on })?;
                        self.event("maintenance", if on { "on" } else { "off" }.into());
                        Ok(format!("maintenance {}", if on { "on: no automatic moves" } else { "off" }))
                    }
                    Request::FencePeer(resource) => {
                        self.fence_peer(resource, now, reply);
                        return Ok(());
                    }
                    Request::ResetPeer => self.reset_peer(now),
                    Request::RestartWorkload(name) => match (&self.workloads, self.core.acting()) {
                        (Some(w), Some(_)) => {
                            w.restart(&name);
                            Ok(format!("{name} will be restarted"))
                        }
                        (None, _) => Err("this node runs no workloads (it has no volumes)".into()),
                        (_, None) => Err("this node is not the primary: workloads run on the primary".into()),
                    },
                    Request::MaySyncTarget(resource) => match self.core.acting() {
                        Some(epoch) => {
                            let why = format!(
                                "this node acts as primary (epoch {epoch}): its side of {resource} holds the acknowledged \
                                 writes and is not overwritten by the peer's; the resync is refused"
                            );
                            say(format_args!("volumes: {why}"));
                            self.event("resync refused", why.clone());
                            Err(why)
                        }
                        None => Ok("yes".into()),
                    },
                };
                reply.send(answer);
            }
        }
        Ok(())
    }

    fn step(&mut self, input: Input) -> anyhow::Result<()> {
        let out = self.core.step(input);
        self.carry_out(out)
    }

    /// Carries out the core's actions in order. A promise that cannot be persisted ends the
    /// daemon before anything after it happens.
    fn carry_out(&mut self, actions: Vec<Action>) -> anyhow::Result<()> {
        let mut changed = false;
        for a in actions {
            match a {
                Action::Send(msg) => self.send(msg),
                Action::Persist { promised } => {
                    self.roles.promised = promised;
                    self.store.save(&self.roles).context("persisting the promised epoch")?;
                }
                Action::Act { epoch, why } => {
                    changed = true;
                    say(format_args!("primary in epoch {epoch}: {why}"));
                    self.event("primary", why.into());
                    if let Some(v) = &self.volumes {
                        v.set_primary(true);
                    }
                    if let Some(w) = &self.workloads {
                        w.set_primary(true);
                    }
                    self.take_at = Some(Instant::now());
                    self.keep_address();
                }
                Action::StopActing { why } => {
                    changed = true;
                    self.take_at = None;
                    self.garp_again = None;
                    if let Some(a) = &self.address {
                        if let Err(e) = a.release() {
                            say(format_args!("cannot give up {}: {e}", a.address));
                        }
                    }
                    if let Some(v) = &self.volumes {
                        v.set_primary(false);
                    }
                    if let Some(w) = &self.workloads {
                        w.set_primary(false);
                    }
                    self.event("secondary", why.into());
                    say(format_args!("secondary: {why}"));
                }
                Action::Fence => {
                    let Some(fence) = self.cfg.fence.clone() else { continue };
                    say(format_args!("fencing {} ({})", self.cfg.peer, fence.describe()));
                    self.event("fencing", fence.describe());
                    let wake = self.wake.clone();
                    std::thread::spawn(move || {
                        let _ = wake.send(Wake::FenceDone(fence.fence()));
                    });
                }
                Action::Alarm(why) => {
                    say(format_args!("alarm: {why}"));
                    self.event("alarm", why.into());
                }
                Action::AskWitness { witness, epoch } => {
                    let now = self.now();
                    if let Some(c) = self.witness.as_mut() {
                        c.ask(witness, epoch, now);
                    }
                }
                Action::ReleaseWitness { epoch } => {
                    if let Some(c) = self.witness.as_mut() {
                        c.release(epoch);
                    }
                }
                Action::Elect(e) => {
                    self.roles.elected_seq = e.seq;
                    self.roles.elected_witness = e.witness;
                    self.store.save(&self.roles).context("persisting the elected witness")?;
                    let address = self.cfg.witnesses.get(e.witness).map_or("?".into(), |a| a.to_string());
                    say(format_args!("the pair uses witness {address}"));
                    self.event("witness", format!("the pair uses witness {address}"));
                }
            }
        }
        if changed {
            self.write_status(true);
        }
        Ok(())
    }

    /// Heartbeats go to the beats thread (which sends the latest one on its own clock); the
    /// rest leave now.
    fn send(&mut self, msg: Msg) {
        let holder = self.ports.holder.unwrap_or([0; 6]);
        match msg {
            Msg::Heartbeat { .. } => self.wire.publish(msg, holder),
            _ => self.wire.send(&msg, holder),
        }
    }

    /// Takes the pair's address when it is due (retrying after a conflict), and repeats the
    /// gratuitous ARPs once.
    fn keep_address(&mut self) {
        let Some(a) = self.address.clone() else { return };
        let now = Instant::now();
        if self.take_at.is_some_and(|t| now >= t) {
            match a.take() {
                Ok(()) => {
                    say(format_args!("took {}/{} on {}", a.address, a.prefix, a.interface));
                    self.take_at = None;
                    self.take_error = None;
                    self.garp_again = Some(now + GARP_REPEAT);
                }
                Err(e) => {
                    if self.take_error.as_deref() != Some(e.as_str()) {
                        say(format_args!("cannot take {}: {e}", a.address));
                        self.event("alarm", format!("cannot take the pair address: {e}"));
                    }
                    self.take_error = Some(e);
                    self.take_at = Some(now + TAKE_RETRY);
                }
            }
        }
        if self.garp_again.is_some_and(|t| now >= t) {
            self.garp_again = None;
            if let Err(e) = a.announce() {
                say(format_args!("{e}"));
            }
        }
    }

    fn pet_watchdog(&mut self) {
        if let Some(w) = self.watchdog.as_mut() {
            if let Err(e) = w.write_all(b"p").and_then(|()| w.flush()) {
                say(format_args!("cannot pet the watchdog: {e}"));
            }
        }
    }

    fn event(&mut self, what: &str, why: String) {
        let e = Event {
            time: unix_secs(),
            node: self.cfg.node.clone(),
            what: what.into(),
            why,
            epoch: self.core.acting().unwrap_or(self.roles.promised),
        };
        if let Err(err) = self.store.record(&e) {
            say(format_args!("cannot record an event: {err:#}"));
        }
        if self.recent.len() == EVENTS_SHOWN {
            self.recent.pop_front();
        }
        self.recent.push_back(e);
    }

    fn status(&self) -> PairStatus {
        let now = self.now();
        let role = |acting: Option<u64>| if acting.is_some() { "primary" } else { "secondary" }.to_owned();
        let peer = self.core.peer().map(|p| PeerView {
            role: role(p.acting),
            epoch: p.acting,
            health: p.health,
            ready: p.ready,
            live: self.core.heard_on(Link::Private, now) || self.core.heard_on(Link::Public, now),
        });
        let mut conditions: Vec<String> = self.core.conditions(now).into_iter().map(str::to_owned).collect();
        if !self.ports.public_ok() {
            conditions.push(format!("the public network is lost on {}", self.cfg.public.interface));
        }
        if !self.ports.private_carrier {
            conditions.push(format!("no carrier on the private link {}", self.cfg.private.interface));
        }
        match &self.sensors {
            Sensors::Read { critical } => {
                conditions.extend(critical.iter().map(|c| format!("sensor past its critical threshold: {c}")))
            }
            Sensors::Unreadable(why) => conditions.push(format!("the BMC's sensors cannot be read: {why}")),
        }
        if let Some(e) = &self.fence_error {
            conditions.push(format!("the last fence failed: {e}"));
        }
        if let Some(e) = &self.take_error {
            conditions.push(format!("cannot take the pair address: {e}"));
        }
        let elected = self.core.elected().witness;
        if self.core.acting().is_some()
            && !self.cfg.witnesses.is_empty()
            && !self.core.lease_held(elected, now)
        {
            conditions.push(format!(
                "no lease from the elected witness {}: cut off from the peer now, this node would stand down",
                self.cfg.witnesses[elected]
            ));
        }
        let witnesses = self
            .cfg
            .witnesses
            .iter()
            .enumerate()
            .map(|(i, a)| WitnessView {
                address: a.to_string(),
                elected: i == elected,
                lease_held: self.core.lease_held(i, now),
                last_answer: self.witness_answers[i].clone(),
            })
            .collect();
        let address = self.address.as_ref().map(|a| {
            let held = self.core.acting().is_some() && self.take_at.is_none();
            let peer_sees = (self.peer_holder != [0; 6]).then(|| show(&self.peer_holder));
            AddressView {
                address: format!("{}/{}", a.address, a.prefix),
                held,
                confirmed: held && self.own_mac.is_some_and(|m| m == self.peer_holder),
                peer_sees,
            }
        });
        PairStatus {
            node: self.cfg.node.clone(),
            peer_name: self.cfg.peer.clone(),
            role: role(self.core.acting()),
            epoch: self.core.acting(),
            promised: self.core.promised(),
            incarnation: self.roles.incarnation,
            health: self.health(),
            maintenance: self.roles.maintenance,
            links: Links {
                private: LinkView {
                    interface: self.cfg.private.interface.clone(),
                    carrier: self.ports.private_carrier,
                    peer_heard: self.core.heard_on(Link::Private, now),
                },
                public: LinkView {
                    interface: self.cfg.public.interface.clone(),
                    carrier: self.ports.public_carrier,
                    peer_heard: self.core.heard_on(Link::Public, now),
                },
            },
            peer,
            address,
            conditions,
            fence: self.cfg.fence.as_ref().map(|f| f.describe()),
            witnesses,
            claim: self.core.claim(),
            refused: self.receiver.refused,
            events: self.recent.iter().cloned().collect(),
            updated: 0,
        }
    }

    /// Writes the status when it changed, and at least once a second.
    fn write_status(&mut self, now_please: bool) {
        if !now_please && self.written.as_ref().is_some_and(|(_, at)| at.elapsed() < Duration::from_secs(1)) {
            return;
        }
        let s = self.status();
        if !now_please
            && self
                .written
                .as_ref()
                .is_some_and(|(old, at)| *old == s && at.elapsed() < Duration::from_secs(5))
        {
            return;
        }
        let mut stamped = s.clone();
        stamped.updated = unix_secs();
        if let Err(e) = status::write(&status::status_path(&self.cfg.run_dir), &stamped) {
            say(format_args!("cannot write the status: {e:#}"));
        }
        self.written = Some((s, Instant::now()));
    }
}
