//! The peer's parts, as its own console reports them (`/api/v1/node`), fetched over the public
//! network every few seconds: the dashboard draws both nodes with their links, disks, volumes
//! and sensors. The request carries a session this console mints with the pair key, and the
//! peer must present the pair's certificate (the only root trusted), so neither side needs
//! anything the other does not already hold.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use super::session::Sessions;

/// How often the peer is asked (over one kept-alive connection: a TLS handshake costs a small
/// node's CPU).
const EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PeerParts {
    /// The peer's console answered the last time it was asked.
    pub reachable: bool,
    /// Why not, when it did not.
    pub error: Option<String>,
    /// Its last answer (kept while it is unreachable, for what it showed last).
    pub parts: Option<serde_json::Value>,
    /// When that answer came, in seconds since the Unix epoch.
    pub updated: u64,
}

/// Asks `peer` (`HOST:PORT`) forever, keeping the last answer in `into`.
pub fn watch(peer: String, cert_der: Vec<u8>, sessions: Sessions, into: Arc<Mutex<PeerParts>>) {
    let roots =
        ureq::tls::RootCerts::new_with_certs(&[ureq::tls::Certificate::from_der(&cert_der).to_owned()]);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(3)))
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
        .http_status_as_error(true)
        .build()
        .into();
    let url = format!("https://{peer}/api/v1/node");
    loop {
        let now = super::unix_secs();
        let answer = sessions
            .issue(now)
            .map_err(|e| e.to_string())
            .and_then(|token| {
                agent
                    .get(&url)
                    .header("authorization", &format!("Bearer {token}"))
                    .call()
                    .map_err(|e| format!("{url}: {e}"))
            })
            .and_then(|mut r| r.body_mut().read_to_string().map_err(|e| format!("{url}: {e}")))
            .and_then(|text| {
                serde_json::from_str::<serde_json::Value>(&text).map_err(|e| format!("{url}: {e}"))
            });
        {
            let mut p = into.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match answer {
                Ok(v) => *p = PeerParts { reachable: true, error: None, parts: Some(v), updated: now },
                Err(e) => {
                    p.reachable = false;
                    p.error = Some(e);
                }
            }
        }
        std::thread::sleep(EVERY);
    }
}
