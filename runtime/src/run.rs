//! `pairos run`: the node's first process after early boot.
//!
//! It identifies the node (image version, board verdict, its name in the pair), brings up the
//! private link and offers its peer network boot and its own image there
//! ([`crate::pair::services`]), starts the pair daemon and keeps it running
//! ([`crate::pair::daemon`], [`crate::pair::supervise`]), writes its status for `pairos
//! status`, says it is ready, keeps a root shell on the console for the operator, and reaps
//! orphaned processes as PID 1 must. Mirrors grow here.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use nix::mount::MsFlags;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use pairos_boards::verdict::Verdict;
use pairos_boards::{probe, profiles, verdict};
use pairos_host::Cmd;
use pairos_recovery::own_image::OwnImage;

use crate::pair::daemon::settings::PairSettings;
use crate::pair::management::Management;
use crate::pair::services::{self, PairServices};
use crate::pair::status::Status;
use crate::pair::{self, identity, ports, private_link};

use crate::cli::RunArgs;
use crate::Exit;

const BUSYBOX: &str = "/usr/bin/busybox";

pub(crate) fn say(msg: impl std::fmt::Display) {
    println!("pairos run: {msg}");
}

pub fn run(args: &RunArgs) -> anyhow::Result<Exit> {
    std::env::set_var("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let version = crate::os_release_field(&os, "IMAGE_VERSION").unwrap_or_else(|| "unknown".into());
    say(format_args!("pairos {version} starting"));
    let mut status = Status { version, ..Status::default() };
    let verdict = match probe::probe(Path::new("/")) {
        Ok(inv) => {
            let v = verdict::check(&profiles::builtin()?, &inv);
            match (&v.profile, v.certified) {
                (Some(p), true) => say(format_args!("board {p}, certified")),
                _ => say(format_args!("board not certified: {}", v.reasons.join("; "))),
            }
            status.board = match (&v.profile, v.certified) {
                (Some(p), true) => format!("{p}, certified"),
                _ => format!("not certified: {}", v.reasons.join("; ")),
            };
            Some(v)
        }
        Err(e) => {
            say(format_args!("board probe failed: {e}"));
            None
        }
    };
    let status = Arc::new(Mutex::new(status));
    if !args.no_services {
        if let Err(e) = start_pair(verdict.as_ref(), &status) {
            say(format_args!("the private-link services are not running: {e:#}"));
        }
    }
    if let Err(e) =
        pair::status::write(Path::new(pair::status::STATUS_FILE), &status.lock().expect("not poisoned"))
    {
        say(format_args!("cannot write the status: {e:#}"));
    }
    say("ready");
    if args.no_console {
        return Ok(Exit::Success);
    }
    console_forever(BUSYBOX)
}

/// Who this node is, its private link, and the services it offers its peer there.
fn start_pair(verdict: Option<&Verdict>, status: &Arc<Mutex<Status>>) -> anyhow::Result<()> {
    let state_dir = PathBuf::from(identity::STATE_DIR);
    let (me, made) = identity::load_or_create(&state_dir)?;
    if made {
        say(format_args!("first run: {} of a new pair {}", me.node_name, me.pair_id));
    } else {
        say(format_args!("{} of pair {}", me.node_name, me.pair_id));
    }
    let (pair_key, made) = identity::load_or_create_key(&state_dir)?;
    if made {
        say(format_args!("made the pair key ({}, mode 0600)", state_dir.join(identity::KEY_FILE).display()));
    }
    {
        let mut s = status.lock().expect("not poisoned");
        s.node_name = me.node_name.clone();
        s.pair_id = me.pair_id.clone();
    }
    // The loopback interface: without it, nothing on this node reaches its own addresses (a
    // workload's health check through the pair's address among them).
    if let Err(e) = Cmd::new("ip").args(["link", "set", "dev", "lo", "up"]).run() {
        say(format_args!("cannot bring lo up: {e}"));
    }
    // The node's name is its host name: DRBD's configuration names the nodes so.
    if let Err(e) = nix::unistd::sethostname(&me.node_name) {
        say(format_args!("cannot set the host name {}: {e}", me.node_name));
    }
    let volumes = prepare_volumes(&state_dir);
    let management = Management::load(&state_dir)?;
    // An uncertified board (or one whose ports were not identified) offers its peer nothing.
    let (profile_private, profile_public) = match verdict {
        Some(v) if v.certified => match (v.private_nic.clone(), v.public_nic.clone()) {
            (Some(private), Some(public)) => (private, public),
            _ => anyhow::bail!("the board verdict names no private and public port"),
        },
        _ => {
            if let (Some(m), Some(public)) = (&management, verdict.and_then(|v| v.public_nic.clone())) {
                apply_management(m, &public, status);
            }
            anyhow::bail!("this board is not certified (see above): no private-link services run on it");
        }
    };
    // Which port is the private link: the profile's, unless what the ports show says the
    // cables are swapped. Both are looked at together.
    let gateway = management.as_ref().and_then(|m| m.gateway);
    let looks = [profile_private.clone(), profile_public.clone()]
        .map(|port| std::thread::spawn(move || ports::look(&port, gateway, &|line| say(line))));
    let [seen_private, seen_public] = looks.map(|h| h.join().unwrap_or_default());
    let roles = ports::decide((&profile_private, &profile_public), (&seen_private, &seen_public));
    let roles = match roles {
        Ok(r) => r,
        Err(why) => {
            if let Some(m) = &management {
                apply_management(m, &profile_public, status);
            }
            status.lock().expect("not poisoned").private_link = Some(format!("not served: {why}"));
            anyhow::bail!("{why}");
        }
    };
    say(format_args!("private link on {}: {}", roles.private, roles.why));
    if let Some(m) = &management {
        apply_management(m, &roles.public, status);
    } else {
        say("no management address configured (the installer sets one)");
    }
    let public = roles.public.clone();
    let interface = roles.private;
    let address = private_link::address(&me.node_name);
    private_link::bring_up(&["ip"], &interface, address, private_link::PREFIX)?;
    say(format_args!("private link {interface}: {address}/{}", private_link::PREFIX));

    let args = crate::boot::cmdline::read()?;
    let root_hash = args.root_hash.context("no roothash= on the kernel command line")?;
    let disk = crate::boot::disks::find_root(&root_hash, Duration::from_secs(10))?;
    let esp = crate::boot::disks::esp_of(&disk.disk)?;
    let esp_dir = Path::new("/run/pairos/esp");
    std::fs::create_dir_all(esp_dir).with_context(|| format!("making {}", esp_dir.display()))?;
    // The ESP is FAT; mounting it needs its code page and character set tables too.
    let _ = Cmd::new("modprobe").args(["-a", "vfat", "nls_cp437", "nls_ascii", "nls_utf8"]).run();
    nix::mount::mount(
        Some(&esp),
        esp_dir,
        Some("vfat"),
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .with_context(|| format!("mounting the ESP {} read-only", esp.display()))?;
    let pxe_root = esp_dir.join(pairos_image::stages::pxe::ESP_DIR);

    let key = crate::signing_key::public_key(None)?;
    let image = OwnImage::open(&disk.disk, &key)?;
    say(format_args!(
        "serving image {} from {} to the peer",
        image.verified().manifest.version,
        disk.disk.display()
    ));
    {
        let mut s = status.lock().expect("not poisoned");
        s.private_link = Some(format!("{interface} {address}/{}", private_link::PREFIX));
        s.known_peers = identity::known_peers(&state_dir).into_iter().collect();
    }
    let mac = std::fs::read_to_string(format!("/sys/class/net/{interface}/address"))
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let ports = (interface.clone(), public);
    services::start(
        PairServices {
            interface,
            mac,
            me: me.clone(),
            key: pair_key,
            pxe_root,
            image,
            state_dir: state_dir.clone(),
            status: status.clone(),
            rejoin_wait: rejoin_wait(&state_dir),
        },
        address,
    );
    start_daemon(&me, &state_dir, (&ports.0, &ports.1), management.as_ref(), volumes)
}

/// The pair daemon, kept running as this process's child, when the pair's settings are in the
/// state partition; the hardware watchdog is armed for it when the board has one.
fn start_daemon(
    me: &pairos_recovery::peer::NodeConfig,
    state_dir: &Path,
    ports: (&str, &str),
    management: Option<&Management>,
    volumes: bool,
) -> anyhow::Result<()> {
    let Some(settings) = PairSettings::load(state_dir)? else {
        say(format_args!(
            "no pair settings ({}): the pair daemon does not run, and this node never acts as primary",
            state_dir.join(pair::daemon::settings::FILE).display()
        ));
        return Ok(());
    };
    // A watchdog that resets the node 10 s after the daemon last petted it.
    let _ = Cmd::new("modprobe").args(["i6300esb", "heartbeat=10"]).run();
    let watchdog = Some(PathBuf::from("/dev/watchdog")).filter(|p| p.exists());
    if watchdog.is_none() {
        say("no hardware watchdog: a hung pair daemon is left to the peer's fence");
    }
    let mut cfg = settings.daemon_config(me, state_dir, ports, management, watchdog)?;
    cfg.volumes = volumes;
    // The board's BMC, in-band (KCS): its sensors count in the node's health.
    // ipmi_si refuses to load when it finds no system interface: then there is nothing to wait
    // for. Otherwise the interface registers once the driver has found the BMC, which can take
    // a moment.
    let found = Cmd::new("modprobe").arg("ipmi_si").run().is_ok();
    let _ = Cmd::new("modprobe").arg("ipmi_devintf").run();
    for _ in 0..if found { 50 } else { 0 } {
        if Path::new("/dev/ipmi0").exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    if Path::new("/dev/ipmi0").exists() {
        cfg.sensors = Some(["ipmitool", "sdr", "list"].map(String::from).to_vec());
    } else {
        say("no local IPMI interface (/dev/ipmi0): the BMC's sensors do not count in the health");
    }
    let path = Path::new(DAEMON_CONFIG);
    let text = toml::to_string(&cfg).context("writing the pair daemon's configuration")?;
    identity::write_atomically(path, text.as_bytes())?;
    pair::supervise::keep_running(
        "pair daemon",
        PathBuf::from("/usr/bin/pairos"),
        ["pair", "run", "--config", DAEMON_CONFIG].map(String::from).to_vec(),
    );
    start_console(me, ports.1, &settings);
    Ok(())
}

/// The pair's web console on the public port (never the private link), kept running like the
/// daemon; its certificate covers the pair's address and both management addresses.
fn start_console(me: &pairos_recovery::peer::NodeConfig, public: &str, settings: &PairSettings) {
    // At a lower priority than the pair daemon: the console never competes with the core (on a
    // small node at boot, it would delay the daemon's readiness).
    let mut args: Vec<String> =
        ["-n", "10", "/usr/bin/pairos", "console", "serve", "--pair-id", &me.pair_id, "--interface", public]
            .map(String::from)
            .to_vec();
    let pair_address = settings.address.split('/').next().unwrap_or_default().to_owned();
    for name in std::iter::once(pair_address).chain(settings.management.values().map(ToString::to_string)) {
        args.extend(["--name".to_owned(), name]);
    }
    if let Some(peer) = settings.management.iter().find(|(n, _)| **n != me.node_name).map(|(_, a)| *a) {
        args.extend(["--peer".to_owned(), format!("{peer}:{}", crate::console::PEER_PORT)]);
    }
    pair::supervise::keep_running("console", PathBuf::from("/usr/bin/nice"), args);
}

/// The volume group on the data partition: found, or made on a blank one; a partition that
/// holds anything else is left alone. Said either way; a node without it has no volumes.
fn prepare_volumes(state_dir: &Path) -> bool {
    use pairos_mirror::lvm::{self, DataState};
    // drbdadm's state directory (/var/lib/drbd in the image points here).
    let _ = std::fs::create_dir_all("/run/drbd");
    let Some(partition) = lvm::data_partition(Path::new("/state")) else {
        say("no data partition: this node has no volumes");
        return false;
    };
    match lvm::ensure_vg(&partition, &state_dir.join("lvm")) {
        Ok(DataState::Ready { free, made }) => {
            say(format_args!(
                "volume group {} on {} ({}; {} free)",
                pairos_mirror::drbd_conf::VG,
                partition.display(),
                if made { "made now" } else { "found" },
                pairos_mirror::spec::show_size(free)
            ));
            return true;
        }
        Ok(DataState::Foreign(what)) => say(format_args!(
            "the data partition {} holds {what}: left alone; this node has no volumes",
            partition.display()
        )),
        Err(e) => say(format_args!("cannot prepare the volume group on {}: {e:#}", partition.display())),
    }
    false
}

/// Where `pairos run` writes the pair daemon's configuration.
const DAEMON_CONFIG: &str = "/run/pairos/pair.toml";

/// Puts the management address on `public`; one that cannot be set is said, and the private
/// link still comes up.
fn apply_management(m: &Management, public: &str, status: &Arc<Mutex<Status>>) {
    match m.apply(public) {
        Ok(()) => {
            say(format_args!("management address {m} on {public}"));
            status.lock().expect("not poisoned").management = Some(format!("{public} {m}"));
        }
        Err(e) => say(format_args!("cannot set the management address {m} on {public}: {e:#}")),
    }
}

/// Keeps a shell on the console and reaps every child; never returns while it can spawn one.
pub fn console_forever(busybox: &str) -> ! {
    loop {
        let shell = Cmd::new(busybox)
            .args(["setsid", "cttyhack", busybox, "sh", "-l"])
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", "/root")
            .spawn_attached();
        let pid = match shell {
            Ok(pid) => Pid::from_raw(pid as i32),
            Err(e) => {
                say(format_args!("cannot start the console shell: {e}"));
                std::thread::sleep(Duration::from_secs(10));
                continue;
            }
        };
        // As PID 1 we inherit every orphan: reap until the shell itself ends, then start another.
        loop {
            match waitpid(None, None) {
                Ok(WaitStatus::Exited(p, _) | WaitStatus::Signaled(p, _, _)) if p == pid => break,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// How long a peer told to boot its disk may take to join: the pair's `timing.rejoin_wait_ms`,
/// or the default when the pair has no settings yet (or they do not load: said where the
/// daemon starts).
fn rejoin_wait(state_dir: &Path) -> Duration {
    PairSettings::load(state_dir)
        .ok()
        .flatten()
        .and_then(|s| s.timing)
        .map_or(pair::boot_policy::REJOIN_WAIT, |t| Duration::from_millis(t.rejoin_wait_ms))
}
