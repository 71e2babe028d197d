//! The services a node offers its peer on the private link: heartbeats, network boot
//! (`pxe-server`) and the image service (`recovery::image_service`) with enrolment, the node
//! configuration and the newcomer's reports.
//!
//! Network boot goes by membership, not history ([`boot_policy`]). The image itself is open to
//! anyone on the cable (every byte is checked against the signed manifest); everything else is
//! believed only from the enrolled newcomer ([`super::enrolment`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pairos_pxe::service::{AddressMode, PxeService};
use pairos_recovery::image_service::{self, PeerHooks};
use pairos_recovery::own_image::OwnImage;
use pairos_recovery::peer::{self, Denied, EnrolAnswer, NewcomerConfig, NodeConfig, Report, Step};
use pairos_recovery::trust::PairKey;

use super::boot_policy::{BootMemory, PairPolicy};
use super::enrolment::{self, Context, Enrolments, Mode};
use super::heartbeat::{self, Heartbeat, Liveness};
use super::identity;
use super::status::{self, PeerRecovery, Status};
use crate::run::say;

#[derive(Debug)]
pub struct PairServices {
    pub interface: String,
    /// The private-link port's MAC, which heartbeats carry.
    pub mac: String,
    pub me: NodeConfig,
    pub key: PairKey,
    /// The PXE set, in the ESP.
    pub pxe_root: PathBuf,
    pub image: OwnImage,
    pub state_dir: PathBuf,
    pub status: Arc<Mutex<Status>>,
    /// How long a peer told to boot its disk may take to join before it is reset
    /// (`timing.rejoin_wait_ms` of the pair's settings).
    pub rejoin_wait: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The pair's enrolment setting, in the state folder (`pairos pair enrolment`).
pub const MODE_FILE: &str = "enrolment.json";
/// MACs the operator approved (`pairos pair approve`); gone at reboot.
pub const APPROVED_FILE: &str = "/run/pairos/approved.json";

pub fn mode(state_dir: &Path) -> Mode {
    std::fs::read(state_dir.join(MODE_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Mode::Auto)
}

pub fn approved(file: &Path) -> Vec<String> {
    std::fs::read(file).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// Approves the newcomer with private-link MAC `mac` (normalised): it enrols the next time it
/// asks. `pairos pair approve` and the console both come here.
pub fn approve(file: &Path, mac: &str) -> anyhow::Result<String> {
    use anyhow::Context;
    let mac = super::enrolment::normal_mac(mac)
        .with_context(|| format!("{mac:?}: expected a MAC address like 52:54:00:12:34:56"))?;
    let mut list = approved(file);
    if !list.contains(&mac) {
        list.push(mac.clone());
    }
    super::identity::write_atomically(file, &serde_json::to_vec_pretty(&list).expect("serialises"))?;
    Ok(mac)
}

struct Hooks {
    me: NodeConfig,
    key: PairKey,
    state_dir: PathBuf,
    liveness: Arc<Mutex<Liveness>>,
    enrolments: Mutex<Enrolments>,
    /// Told when a recovery finishes, so that the newcomer's next boot goes to its new disk.
    boots: BootMemory,
    /// Holds a node imaged too often.
    policy: PairPolicy,
    status: Arc<Mutex<Status>>,
    /// The last step and tenth of the write that was logged, so the log shows each step and
    /// every 10 %, not every report.
    logged: Mutex<Option<(Step, u64)>>,
}

fn ipv4(from: SocketAddr) -> Ipv4Addr {
    match from.ip() {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(ip) => ip.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
    }
}

impl PeerHooks for Hooks {
    fn enrol(&self, from: SocketAddr, mac: &str) -> Result<EnrolAnswer, Denied> {
        let now = Instant::now();
        let approved = approved(Path::new(APPROVED_FILE));
        let cx = Context {
            now,
            peer_live: lock(&self.liveness).live(now),
            mode: mode(&self.state_dir),
            approved: &approved,
        };
        let mut e = lock(&self.enrolments);
        let answer = e.request(cx, &self.me.pair_id, mac, ipv4(from));
        let shown = enrolment::printable(mac);
        let line = match &answer {
            Ok(EnrolAnswer::Enrolled { .. }) => format!("{shown} ({}) enrolled", from.ip()),
            Ok(EnrolAnswer::Waiting { message }) => message.clone(),
            Err(d) => format!("{shown} ({}) refused: {}", from.ip(), d.message),
        };
        drop(e);
        say(format_args!("enrolment: {line}"));
        // A refusal is said on the console only: a stranger cannot change what the status says.
        if answer.is_ok() {
            status::update(&self.status, |s| s.enrolment = Some(line));
        }
        answer
    }

    fn node_config(
        &self,
        from: SocketAddr,
        token: Option<&str>,
        mac: &str,
    ) -> Result<NewcomerConfig, Denied> {
        lock(&self.enrolments).authorise(Instant::now(), token, mac, ipv4(from))?;
        super::handover::for_newcomer(&self.me, &self.key, &self.state_dir)
            .map_err(|e| Denied::new(500, format!("{e:#}")))
    }

    fn pair_config(&self) -> Result<(Vec<u8>, String), Denied> {
        let doc = pairos_mirror::document::PairConfig::load(&self.state_dir)
            .map_err(|e| Denied::new(500, format!("{e:#}")))?;
        let body = serde_json::to_vec_pretty(&doc).expect("serialises");
        let tag = crate::volumes::manager::sign(&self.key, &body);
        Ok((body, tag))
    }

    fn pair_workloads(&self) -> Result<(Vec<u8>, String), Denied> {
        use crate::workloads::runner;
        let path = Path::new(super::daemon::config::RUN_DIR).join(runner::VIEW_FILE);
        let body = std::fs::read(&path).map_err(|e| Denied::new(404, format!("{}: {e}", path.display())))?;
        let tag = runner::sign_view(&self.key, &body);
        Ok((body, tag))
    }

    fn report(&self, from: SocketAddr, token: Option<&str>, r: Report) -> Result<(), Denied> {
        let r = lock(&self.enrolments).report(Instant::now(), token, ipv4(from), r)?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let progress = PeerRecovery::from_report(&r, from.ip().to_string(), now);
        let tenth = progress.percent / 10;
        {
            let mut logged = lock(&self.logged);
            if *logged != Some((r.step, tenth)) {
                *logged = Some((r.step, tenth));
                let pct = if r.total_bytes > 0 { format!(" ({}%)", progress.percent) } else { String::new() };
                say(format_args!("peer {} ({}): {:?}{pct}: {}", r.mac, from.ip(), r.step, r.message));
            }
        }
        // Only a finished recovery changes the remembered peers: read them again then only.
        let mut known = None;
        if r.step == Step::Finished {
            let times = self.boots.recovered(&r.mac, Instant::now());
            say(format_args!("peer {}: imaged {times} time(s) within the hour", r.mac));
            self.policy.update_holds();
            if let Err(e) = identity::remember_peer(&self.state_dir, &r.mac) {
                say(format_args!("cannot remember peer {}: {e:#}", r.mac));
            }
            known = Some(identity::known_peers(&self.state_dir).into_iter().collect());
        }
        status::update(&self.status, |s| {
            s.peer_recovery = Some(progress);
            if let Some(known) = known {
                s.known_peers = known;
            }
            if matches!(r.step, Step::Finished | Step::Uncertified | Step::Refused | Step::Failed) {
                s.enrolment = Some(format!("{} ended: {:?}", r.mac, r.step));
            }
        });
        Ok(())
    }
}

/// Starts the services on threads of their own; a service that cannot start or stops says why
/// on the console, and the status lists only the services that run.
pub fn start(svc: PairServices, address: Ipv4Addr) {
    let liveness = Arc::new(Mutex::new(Liveness::default()));
    let peer_address = super::private_link::address(&svc.me.peer_name);
    let disk_first = firmware_boots_disk_first();
    let beat = Heartbeat {
        pair_id: svc.me.pair_id.clone(),
        node_name: svc.me.node_name.clone(),
        mac: svc.mac.clone(),
        seq: 0,
        disk_first,
    };
    let started = pairos_pxe::sockets::udp_socket(&svc.interface, heartbeat::PORT)
        .map_err(|e| e.to_string())
        .and_then(|socket| {
            let peer_name = svc.me.peer_name.clone();
            heartbeat::run(socket, peer_address, beat, svc.key.clone(), peer_name, liveness.clone())
                .map_err(|e| e.to_string())
        });
    match started {
        Ok(()) => running(&svc.status, format!("heartbeats to {peer_address}:{}", heartbeat::PORT)),
        Err(e) => say(format_args!("heartbeats not started: {e}")),
    }
    watch_peer(svc.status.clone(), liveness.clone());

    let (first, last) = super::private_link::pool(&svc.me.node_name);
    let pxe = PxeService {
        interface: svc.interface.clone(),
        root: svc.pxe_root.clone(),
        addresses: AddressMode::Pool {
            first,
            last,
            lease_file: svc.state_dir.join("leases.json"),
            lease_secs: 3600,
        },
        tftp_port: 69,
        http_port: 80,
    };
    let boots = BootMemory::default();
    let policy = PairPolicy::new(
        svc.state_dir.clone(),
        PathBuf::from(APPROVED_FILE),
        liveness.clone(),
        svc.status.clone(),
        boots.clone(),
    );
    reset_peers_that_do_not_boot(
        svc.me.clone(),
        liveness.clone(),
        policy.clone(),
        boots.clone(),
        svc.rejoin_wait,
    );
    let held = policy.clone();
    let status = svc.status.clone();
    running(&svc.status, "DHCP, TFTP and HTTP network boot".into());
    let stop_boot = Arc::new(AtomicBool::new(false));
    let stop = stop_boot.clone();
    spawn_service("network boot", status.clone(), move || {
        pairos_pxe::service::serve(&pxe, policy, stop).map_err(|e| e.to_string())
    });
    guard_port(svc.interface.clone(), address, stop_boot);

    let size = svc.image.verified().manifest.disk.layout.size;
    let hooks = Hooks {
        me: svc.me.clone(),
        key: svc.key.clone(),
        state_dir: svc.state_dir.clone(),
        liveness,
        enrolments: Mutex::new(Enrolments::new((first, last))),
        boots,
        policy: held,
        status: svc.status.clone(),
        logged: Mutex::new(None),
    };
    let router = image_service::router(Arc::new(svc.image), size, Arc::new(hooks));
    // Bound here, so that the line below (or the failure) comes before the runtime says ready.
    let listener = match pairos_pxe::sockets::tcp_listener(&svc.interface, peer::PORT) {
        Ok(l) => l,
        Err(e) => {
            say(format_args!("image service not started: {e}"));
            return;
        }
    };
    say(format_args!("image service on {address}:{} ({})", peer::PORT, svc.interface));
    running(&svc.status, format!("image service on port {}", peer::PORT));
    spawn_service("image service", status, move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .and_then(|rt| {
                rt.block_on(image_service::serve(listener, router, Arc::new(AtomicBool::new(false))))
            })
            .map_err(|e| e.to_string())
    });
}

/// Has the pair daemon reset, through the peer's BMC, a known peer that was told to boot its
/// disk and whose disk did not start within `wait` of its last network-boot ask (the pair's
/// `timing.rejoin_wait_ms`, [`super::boot_policy::REJOIN_WAIT`] by default): firmware whose
/// every boot option failed may wait in its shell for ever. Its next network boot is then
/// offered recovery, and a swapped blank disk heals with nobody at the console. A held peer
/// the operator released is reset at once. (The daemon holds the fence, and never resets a
/// peer it hears.) Without a pair daemon or a BMC, it is said, and the peer waits for someone
/// to power it on again.
fn reset_peers_that_do_not_boot(
    me: NodeConfig,
    liveness: Arc<Mutex<Liveness>>,
    policy: PairPolicy,
    boots: BootMemory,
    wait: Duration,
) {
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_secs(5));
        policy.update_holds();
        let now = Instant::now();
        let heard = {
            let l = lock(&liveness);
            if l.live(now) {
                continue;
            }
            l.last_heard()
        };
        for mac in boots.due_for_reset(now, heard, wait) {
            say(format_args!(
                "peer {mac} was told to boot its disk and its disk has not started {}s after its last \
                 network-boot ask (or the operator released it): resetting it so that its next \
                 network boot is offered recovery",
                wait.as_secs(),
            ));
            let run_dir = Path::new(super::daemon::config::RUN_DIR);
            match super::daemon::control::ask(run_dir, super::daemon::control::Request::ResetPeer) {
                Ok(Ok(said)) => say(format_args!("pair daemon: {said}")),
                Ok(Err(why)) => say(format_args!("{} is not reset: {why}", me.peer_name)),
                Err(e) => say(format_args!(
                    "{} is not reset: {e:#}; power it on again to offer it recovery",
                    me.peer_name
                )),
            }
        }
    });
}

/// Whether this node booted from the first entry of its firmware's boot order (read through
/// efivarfs, mounted read-only for it): then its firmware boots its disk first, and its peer
/// takes a network boot of it as its disk not booting. Said on the console either way.
fn firmware_boots_disk_first() -> bool {
    use pairos_recovery::efi_boot::{booted_first, EFIVARFS};
    if let Err(e) = crate::boot::mount_efivarfs(true) {
        say(format_args!("{e:#}"));
    }
    let vars = Path::new(EFIVARFS);
    let first = booted_first(vars);
    say(format_args!(
        "boot order: {}",
        match first {
            Some(true) => "booted the firmware's first boot option, this disk: the peer takes a network boot of this node as its disk not booting",
            Some(false) => "booted by BootNext or a later boot option: the firmware tries something else first",
            None => "no UEFI boot variables (BIOS): the peer's iPXE boots this disk",
        }
    ));
    first == Some(true)
}

fn running(status: &Mutex<Status>, service: String) {
    lock(status).services.push(service);
}

/// Runs a service on a thread of its own. Its end, by an error or a panic, is never a clean
/// stop: it is said on the console and the service leaves the status.
fn spawn_service(
    name: &'static str,
    status: Arc<Mutex<Status>>,
    serve: impl FnOnce() -> Result<(), String> + Send + 'static,
) {
    std::thread::spawn(move || {
        let why = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(serve)) {
            Ok(Ok(())) => "it stopped".to_owned(),
            Ok(Err(e)) => e,
            Err(panic) => {
                let text = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                format!("it failed: {text}")
            }
        };
        say(format_args!("{name} stopped: {why}"));
        let key = name.split(' ').next().unwrap_or(name).to_ascii_lowercase();
        status::update(&status, |s| {
            s.services.retain(|line| !line.to_ascii_lowercase().contains(&key));
            s.services.push(format!("{name}: STOPPED ({why})"));
        });
    });
}

/// While network boot is served, asks every minute whether another DHCP server answers on the
/// port; if one does, the port is not the crossover to the peer (someone re-cabled it), and
/// network boot stops for good, rather than compete with that server.
fn guard_port(interface: String, own: Ipv4Addr, stop: Arc<std::sync::atomic::AtomicBool>) {
    std::thread::spawn(move || {
        let Some(mac) = pairos_pxe::sockets::interface_mac(&interface) else { return };
        loop {
            std::thread::sleep(GUARD_EVERY);
            let Ok(found) = pairos_pxe::probe::dhcp_servers(&interface, mac, Duration::from_secs(3)) else {
                continue;
            };
            let others: Vec<String> =
                found.iter().filter(|r| r.server != own).map(|r| r.server.to_string()).collect();
            if !others.is_empty() {
                say(format_args!(
                    "another DHCP server ({}) answers on {interface}: it is not the crossover to the peer; network boot stops",
                    others.join(", ")
                ));
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                return;
            }
        }
    });
}

/// How often the private port is checked for other DHCP servers while it is served.
const GUARD_EVERY: Duration = Duration::from_secs(60);

/// Keeps the status's line about the peer current, and says on the console when it changes.
fn watch_peer(status: Arc<Mutex<Status>>, liveness: Arc<Mutex<Liveness>>) {
    std::thread::spawn(move || {
        let mut shown: Option<bool> = None;
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let (live, mac) = {
                let l = lock(&liveness);
                (l.live(Instant::now()), l.peer_mac.clone())
            };
            let heard = mac.is_some();
            if shown == Some(live) || (!heard && shown.is_none()) {
                continue;
            }
            shown = Some(live);
            let mac = mac.unwrap_or_default();
            let line = if live {
                format!("live ({mac})")
            } else {
                format!("silent for {:?} ({mac})", heartbeat::DEAD_TIME)
            };
            say(format_args!("peer {line}"));
            status::update(&status, |s| s.peer = Some(line));
        }
    });
}
