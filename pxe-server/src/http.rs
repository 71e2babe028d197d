//! HTTP on one interface: the boot folder (kernel, initramfs, iPXE scripts, the recovery UKI) with
//! range requests, and the generated scripts that boot a client's local disk.
//!
//! Files go through tower-http's `ServeFile`, which handles Range, HEAD, conditional requests and
//! content types; names are resolved by the [`Jail`] first, so HTTP is jailed exactly as TFTP is.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::bootfile::{local_boot_failed_script, localboot_script, LOCAL_BOOT_FAILED};
use crate::jail::Jail;
use crate::policy::Policy;
use crate::ratelimit::RateLimit;
use crate::sockets::{socket_error, tcp_listener, ServeError};

#[derive(Debug, Clone)]
pub struct HttpService {
    pub interface: String,
    pub root: PathBuf,
    pub port: u16,
}

#[derive(Clone)]
struct Shared {
    jail: Jail,
    log: Arc<Mutex<RateLimit>>,
    policy: Arc<dyn Policy>,
}

impl Shared {
    fn log(&self, from: SocketAddr, method: &str, path: &str, status: StatusCode) {
        let (allow, dropped) = self.log.lock().map_or((false, 0), |mut l| l.allow(Instant::now()));
        if allow {
            tracing::info!(%from, method, path, status = status.as_u16(), suppressed = dropped, "HTTP");
        }
    }
}

fn generated(name: &str) -> Option<&'static str> {
    match name {
        "localboot-bios.ipxe" => Some(localboot_script(false)),
        "localboot-uefi.ipxe" => Some(localboot_script(true)),
        _ => None,
    }
}

async fn file(
    State(shared): State<Shared>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let method = req.method().as_str().to_owned();
    let raw = req.uri().path().to_owned();
    let name = match percent_decode(&raw) {
        Some(n) => n,
        None => return plain(StatusCode::BAD_REQUEST, "the path is not UTF-8 once percent-decoded\n"),
    };
    let name = name.trim_start_matches('/');
    let response = if let Some(script) = generated(name) {
        ([(header::CONTENT_TYPE, "text/plain")], script).into_response()
    } else if let Some(word) = name.strip_prefix(LOCAL_BOOT_FAILED) {
        local_boot_failed(&*shared.policy, word)
    } else {
        match shared.jail.resolve(name) {
            Ok(path) => match ServeFile::new(path).oneshot(req).await {
                Ok(r) => r.into_response(),
                Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e}\n")),
            },
            Err(refusal) if refusal.is_violation() => plain(StatusCode::FORBIDDEN, &format!("{refusal}\n")),
            Err(refusal) => plain(StatusCode::NOT_FOUND, &format!("{refusal}\n")),
        }
    };
    shared.log(from, &method, &raw, response.status());
    response
}

/// `FIRMWARE/MAC` after [`LOCAL_BOOT_FAILED`]: the client's local disk did not boot.
fn local_boot_failed(policy: &dyn Policy, word: &str) -> Response {
    let parsed = word.split_once('/').filter(|(fw, mac)| {
        matches!(*fw, "bios" | "uefi")
            && mac.len() == 17
            && mac.split('-').all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()))
    });
    let Some((firmware, mac)) = parsed else {
        return plain(
            StatusCode::BAD_REQUEST,
            "expected /local-boot-failed/bios/MAC (MAC as 52-54-00-12-34-56)\n",
        );
    };
    let mac = mac.to_ascii_lowercase().replace('-', ":");
    let (decision, why) = policy.local_boot_failed(&mac);
    tracing::info!(%mac, ?decision, why, "local boot failed");
    ([(header::CONTENT_TYPE, "text/plain")], local_boot_failed_script(decision, firmware, &why))
        .into_response()
}

fn plain(status: StatusCode, text: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain")], text.to_owned()).into_response()
}

/// The path, percent-decoded; `None` when the result is not UTF-8.
fn percent_decode(path: &str) -> Option<String> {
    percent_encoding::percent_decode_str(path).decode_utf8().ok().map(|c| c.into_owned())
}

/// Serves HTTP on the interface until `stop` is set; `policy` hears of clients whose local
/// disk did not boot.
pub async fn serve_http(
    svc: &HttpService,
    policy: Arc<dyn Policy>,
    stop: Arc<AtomicBool>,
) -> Result<(), ServeError> {
    let err = |what| socket_error(&svc.interface, what);
    let jail = Jail::new(&svc.root).map_err(|source| ServeError::Root { path: svc.root.clone(), source })?;
    let listener = tcp_listener(&svc.interface, svc.port)?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(err("registering with tokio"))?;
    tracing::info!(interface = %svc.interface, root = %jail.root().display(), port = svc.port, "HTTP serving");
    let shared = Shared { jail, log: Arc::new(Mutex::new(RateLimit::new(20))), policy };
    let app = Router::new().fallback(file).with_state(shared);
    let stopped = async move {
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(stopped)
        .await
        .map_err(err("serving"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recovers only the MAC it is told about.
    struct OneMac;

    impl Policy for OneMac {
        fn decide(&self, _: &crate::client::ClientInfo) -> (crate::policy::Decision, String) {
            (crate::policy::Decision::Ignore, String::new())
        }

        fn local_boot_failed(&self, mac: &str) -> (crate::policy::Decision, String) {
            if mac == "52:54:00:12:04:00" {
                (crate::policy::Decision::Recover, "its disk does not boot".into())
            } else {
                (crate::policy::Decision::Ignore, "not ours".into())
            }
        }
    }

    async fn body(r: Response) -> (StatusCode, String) {
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.expect("a body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn a_failed_local_boot_goes_on_to_recovery_only_when_the_policy_says_so() {
        let (status, script) = body(local_boot_failed(&OneMac, "bios/52-54-00-12-04-00")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(script.starts_with("#!ipxe\n"), "{script}");
        assert!(script.contains("chain /recover-bios.ipxe"), "{script}");
        let (_, script) = body(local_boot_failed(&OneMac, "bios/52-54-00-12-05-00")).await;
        assert!(script.contains("exit 1") && !script.contains("recover"), "{script}");
        for bad in [
            "bios/",
            "bios/52-54-00-12-04",
            "efi/52-54-00-12-04-00",
            "bios/52-54-00-12-04-0g",
            "bios/52:54:00:12:04:00",
            "x",
        ] {
            let (status, text) = body(local_boot_failed(&OneMac, bad)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
            assert!(
                text.contains("expected /local-boot-failed/bios/MAC (MAC as 52-54-00-12-34-56)"),
                "{text}"
            );
        }
    }

    #[test]
    fn the_bios_local_boot_script_says_when_the_disk_does_not_boot() {
        let script = localboot_script(false);
        assert!(
            script.contains(
                "sanboot --no-describe --drive 0x80 || chain /local-boot-failed/bios/${netX/mac:hexhyp} || exit"
            ),
            "{script}"
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/a%20b").as_deref(), Some("/a b"));
        assert_eq!(percent_decode("/%2e%2e/x").as_deref(), Some("/../x"));
        assert_eq!(percent_decode("/%ff"), None);
    }
}
