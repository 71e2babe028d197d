//! The console's listener: TLS (rustls) on the public port alone, each connection served by
//! the router through hyper, as axum's own TLS example does.

use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio_rustls::TlsAcceptor;

use super::auth::{require_session, security_headers, Peer};
use super::{actions, api, certificate, destinations, page, Console, ConsoleConfig, Shared};

pub(crate) fn router(console: Shared) -> Router {
    let private = Router::new()
        .route("/api/v1/state", get(api::state))
        .route("/api/v1/events", get(api::events))
        .route("/api/v1/alarms/{id}/acknowledge", post(api::acknowledge))
        .route("/api/v1/switchover", post(api::switchover))
        .route("/api/v1/maintenance", post(api::maintenance))
        .route(
            "/api/v1/certificate/uploaded",
            axum::routing::put(api::upload_certificate).delete(api::own_certificate),
        )
        .route("/api/v1/volumes", post(actions::add_volume))
        .route("/api/v1/workloads", post(actions::add_workload))
        .route("/api/v1/workloads/{name}/log", get(actions::workload_log))
        .route("/api/v1/enrolment/approve", post(actions::approve))
        .route("/api/v1/alarm-destinations", get(destinations::get).put(destinations::put))
        .route("/api/v1/alarm-destinations/test", post(destinations::test))
        .route_layer(axum::middleware::from_fn_with_state(console.clone(), require_session));
    Router::new()
        .route("/", get(page::index))
        .route("/app.js", get(page::script))
        .route("/style.css", get(page::style))
        .route("/metrics", get(api::metrics))
        .route("/api/openapi.json", get(api::openapi))
        .route("/api/v1/certificate", get(api::certificate))
        .route("/api/v1/session", get(api::session_get).post(api::login).delete(api::logout))
        .route("/api/v1/password", post(api::first_password))
        .merge(private)
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(console)
}

/// Console to console: the node's own parts, on a port of its own with the derived
/// certificate (which the peer pins), whatever certificate the operator gave the console.
fn peer_router(console: Shared) -> Router {
    Router::new()
        .route("/api/v1/node", get(api::node))
        .route_layer(axum::middleware::from_fn_with_state(console.clone(), require_session))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(console)
}

fn listener(cfg: &ConsoleConfig, at: std::net::SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(at), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if let Some(interface) = &cfg.interface {
        // Only the public port: nothing of the console is reachable on the private link.
        socket
            .bind_device(Some(interface.as_bytes()))
            .with_context(|| format!("binding the console to {interface}"))?;
    }
    socket.bind(&at.into()).with_context(|| format!("listening on {at}"))?;
    socket.listen(128)?;
    socket.set_nonblocking(true)?;
    Ok(tokio::net::TcpListener::from_std(socket.into())?)
}

fn tls_config(
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}

/// Accepts TLS connections on `listener` and serves `app` on each, forever.
async fn accept(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    say: fn(String),
) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                say(format!("console: accept: {e}"));
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            // A client that never finishes its handshake is dropped.
            let tls = tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream)).await;
            let Ok(Ok(tls)) = tls else { return };
            let service = TowerToHyperService::new(app.layer(axum::Extension(Peer(peer))));
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(20))
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

/// Serves the console until the process ends.
pub fn serve(cfg: ConsoleConfig, say: fn(String)) -> anyhow::Result<()> {
    let key_text = std::fs::read_to_string(&cfg.key_file)
        .with_context(|| format!("reading the pair key {}", cfg.key_file.display()))?;
    let key = pairos_recovery::trust::PairKey::from_hex(&key_text)
        .with_context(|| format!("{}: expected 64 hexadecimal digits", cfg.key_file.display()))?;
    let cert = certificate::derive(&key, &cfg.pair_id, &cfg.names)?;
    let cert_der = cert.cert_der.clone();
    let fingerprint = certificate::fingerprint(&cert.cert_der);
    let derived = super::tls::derived(&cert).context("the console certificate")?;
    let resolver = Arc::new(super::tls::Resolver::new(derived.clone(), cfg.state_dir.clone(), say));
    let console = Arc::new(Console {
        sources: super::snapshot::Sources::new(cfg.run_dir.clone(), cfg.state_dir.clone()),
        sessions: super::session::Sessions::new(key),
        throttle: Mutex::new(super::throttle::Throttle::default()),
        acks: super::acks::Acks::load(&cfg.state_dir),
        tls: resolver.clone(),
        pair_id: cfg.pair_id.clone(),
        peer: Arc::default(),
    });
    if let Some(peer) = cfg.peer.clone() {
        let (sessions, into) = (console.sessions.clone(), console.peer.clone());
        std::thread::spawn(move || super::peer::watch(peer, cert_der, sessions, into));
    }
    let (app, peers) = (router(console.clone()), peer_router(console.clone()));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let main = listener(&cfg, cfg.listen)?;
        let mut peer_at = cfg.listen;
        peer_at.set_port(super::PEER_PORT);
        let peer_listener = listener(&cfg, peer_at)?;
        say(format!(
            "console: https://{} on {} (certificate SHA-256 {fingerprint})",
            cfg.listen,
            cfg.interface.as_deref().unwrap_or("every interface")
        ));
        // For `pairos pair status`: where the console is and its certificate's fingerprint.
        let urls: Vec<String> =
            cfg.names.iter().filter(|n| *n != "localhost").map(|n| format!("https://{n}/")).collect();
        let shown = serde_json::json!({ "urls": urls, "sha256": fingerprint });
        let _ =
            pairos_host::write_atomically(&cfg.run_dir.join(super::INFO_FILE), shown.to_string().as_bytes());
        // Alarms are sent by the console that serves: a second one (which cannot listen) says
        // nothing twice.
        std::thread::spawn(move || super::alarms::dispatch::watch(&console, say));
        tokio::spawn(accept(peer_listener, tls_config(Arc::new(Fixed(derived)))?, peers, say));
        accept(main, tls_config(resolver)?, app, say).await;
        Ok(())
    })
}

/// Always the same certificate (the derived one, console to console).
#[derive(Debug)]
struct Fixed(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}
