//! The whole network boot service on one interface: DHCP (or proxyDHCP), TFTP and HTTP, run
//! together until stopped or until one of them fails. `pairos pxe` runs it alone; the pair
//! runtime runs it beside its other services.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::dhcp_service::{serve_dhcp, serve_proxy, DhcpService};
use crate::http::{serve_http, HttpService};
use crate::policy::Policy;
use crate::sockets::{socket_error, ServeError};
use crate::tftp::{serve_tftp, TftpService};

/// How addresses are handed out.
#[derive(Debug, Clone)]
pub enum AddressMode {
    /// We are the link's DHCP server.
    Pool { first: Ipv4Addr, last: Ipv4Addr, lease_file: PathBuf, lease_secs: u32 },
    /// Another server gives addresses; we only add the boot information (proxyDHCP).
    Proxy,
}

#[derive(Debug, Clone)]
pub struct PxeService {
    pub interface: String,
    /// The PXE set: the `pxe/` folder of a build.
    pub root: PathBuf,
    pub addresses: AddressMode,
    pub tftp_port: u16,
    pub http_port: u16,
}

/// Runs DHCP, TFTP and HTTP until `stop` is set or one of them fails; then stops the others
/// and returns the first failure.
pub fn serve<P: Policy + 'static>(
    svc: &PxeService,
    policy: P,
    stop: Arc<AtomicBool>,
) -> Result<(), ServeError> {
    let stop_all = |r: Result<(), ServeError>, stop: &AtomicBool| {
        stop.store(true, Ordering::Relaxed);
        r
    };
    let policy = Arc::new(policy);
    let for_http: Arc<dyn Policy> = policy.clone();
    std::thread::scope(|scope| {
        let dhcp = scope.spawn(|| {
            let r = match &svc.addresses {
                AddressMode::Pool { first, last, lease_file, lease_secs } => {
                    let d = DhcpService {
                        interface: svc.interface.clone(),
                        pool: (*first, *last),
                        lease_file: lease_file.clone(),
                        lease_secs: *lease_secs,
                        http_port: svc.http_port,
                    };
                    serve_dhcp(&d, policy, stop.clone())
                }
                AddressMode::Proxy => serve_proxy(&svc.interface, svc.http_port, policy, stop.clone()),
            };
            stop_all(r, &stop)
        });
        let tftp = scope.spawn(|| {
            let t =
                TftpService { interface: svc.interface.clone(), root: svc.root.clone(), port: svc.tftp_port };
            stop_all(serve_tftp(&t, stop.clone()), &stop)
        });
        let http =
            HttpService { interface: svc.interface.clone(), root: svc.root.clone(), port: svc.http_port };
        let http = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(socket_error(&svc.interface, "starting the HTTP runtime"))
            .and_then(|rt| rt.block_on(serve_http(&http, for_http, stop.clone())));
        let http = stop_all(http, &stop);
        let joined =
            |h: std::thread::ScopedJoinHandle<'_, Result<(), ServeError>>| h.join().unwrap_or(Ok(()));
        let (dhcp, tftp) = (joined(dhcp), joined(tftp));
        dhcp.and(tftp).and(http)
    })
}
