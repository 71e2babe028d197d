//! The services a node offers its peer on the private link: network boot (`pxe-server`) and the
//! image service (`recovery::image_service`) with the node configuration and the peer's
//! reports. The policy for network boot: a peer this node has installed is told to boot its
//! disk; any other machine on the link is a node the pair is missing, and is offered recovery.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use pairos_pxe::client::ClientInfo;
use pairos_pxe::policy::{Decision, Policy};
use pairos_pxe::service::{AddressMode, PxeService};
use pairos_recovery::image_service::{self, PeerHooks};
use pairos_recovery::own_image::OwnImage;
use pairos_recovery::peer::{self, NodeConfig, Report, Step};

use super::identity;
use super::status::{self, PeerRecovery, Status};
use crate::run::say;

#[derive(Debug)]
pub struct PairServices {
    pub interface: String,
    pub me: NodeConfig,
    /// The PXE set, in the ESP.
    pub pxe_root: PathBuf,
    pub image: OwnImage,
    pub state_dir: PathBuf,
    pub status: Arc<Mutex<Status>>,
}

struct PairPolicy {
    installed: Arc<Mutex<BTreeSet<String>>>,
}

impl Policy for PairPolicy {
    fn decide(&self, client: &ClientInfo) -> (Decision, String) {
        let mac = client.mac_string();
        if self.installed.lock().expect("not poisoned").contains(&mac) {
            (Decision::LocalBoot, "a peer this node installed: boot from its disk".into())
        } else {
            (Decision::Recover, "not a node of this pair: offered recovery from this node".into())
        }
    }
}

struct Hooks {
    me: NodeConfig,
    state_dir: PathBuf,
    installed: Arc<Mutex<BTreeSet<String>>>,
    status: Arc<Mutex<Status>>,
    /// The last step and tenth of the write that was logged, so the log shows each step and
    /// every 10 %, not every report.
    logged: Mutex<Option<(Step, u64)>>,
}

impl PeerHooks for Hooks {
    fn node_config(&self, _mac: &str) -> Option<NodeConfig> {
        Some(identity::for_peer(&self.me))
    }

    fn report(&self, from: SocketAddr, r: Report) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let progress = PeerRecovery::from_report(&r, from.ip().to_string(), now);
        let tenth = progress.percent / 10;
        {
            let mut logged = self.logged.lock().expect("not poisoned");
            if *logged != Some((r.step, tenth)) {
                *logged = Some((r.step, tenth));
                let pct = if r.total_bytes > 0 { format!(" ({}%)", progress.percent) } else { String::new() };
                say(format_args!("peer {} ({}): {:?}{pct}: {}", r.mac, from.ip(), r.step, r.message));
            }
        }
        if r.step == Step::Finished {
            let mac = r.mac.to_ascii_lowercase();
            self.installed.lock().expect("not poisoned").insert(mac.clone());
            if let Err(e) = identity::remember_peer(&self.state_dir, &mac) {
                say(format_args!("cannot remember peer {mac}: {e:#}"));
            }
        }
        let mut s = self.status.lock().expect("not poisoned");
        s.peer_recovery = Some(progress);
        s.known_peers = self.installed.lock().expect("not poisoned").iter().cloned().collect();
        if let Err(e) = status::write(std::path::Path::new(status::STATUS_FILE), &s) {
            say(format_args!("cannot write the status: {e:#}"));
        }
    }
}

/// Starts both services on their own threads; a service that stops says why on the console.
pub fn start(svc: PairServices, address: Ipv4Addr) {
    let installed = Arc::new(Mutex::new(identity::known_peers(&svc.state_dir)));
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
    let policy = PairPolicy { installed: installed.clone() };
    std::thread::spawn(move || {
        if let Err(e) = pairos_pxe::service::serve(&pxe, policy, Arc::new(AtomicBool::new(false))) {
            say(format_args!("network boot service stopped: {e}"));
        }
    });

    let size = svc.image.verified().manifest.disk.layout.size;
    let hooks = Hooks {
        me: svc.me.clone(),
        state_dir: svc.state_dir.clone(),
        installed,
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
    std::thread::spawn(move || {
        let result =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().and_then(
                |rt| rt.block_on(image_service::serve(listener, router, Arc::new(AtomicBool::new(false)))),
            );
        if let Err(e) = result {
            say(format_args!("image service stopped: {e}"));
        }
    });
}
