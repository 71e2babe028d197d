//! What a recovering node and its peer say to each other on the private link, beside the
//! image itself: the newcomer's node configuration, and its reports (each step, the write's
//! progress, a refusal and why), which the peer logs and shows in `pairos status`.
//!
//! All of it is HTTP on the peer's image service ([`crate::image_service`]):
//! - `GET  /image/manifest.json`, `/image/manifest.sig`, `/image/disk.raw` (ranges);
//! - `GET  /node/config?mac=MAC` → [`NodeConfig`];
//! - `POST /node/report` ← [`Report`].

use std::io::Read;
use std::net::Ipv4Addr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::source::SourceError;

/// The image service's TCP port on the private link.
pub const PORT: u16 = 7467;

/// Who the newcomer becomes: its name in the pair, and the pair it joins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub pair_id: String,
    pub node_name: String,
    pub peer_name: String,
}

/// Where a recovery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Booted, link up, peer found.
    Started,
    /// The hardware is not a certified board: the recovery stops.
    Uncertified,
    /// The disk holds foreign data: the recovery stops, nothing was written.
    Refused,
    /// The image is being written.
    Writing,
    /// The image is on the disk and its identity written; the node reboots into it.
    Finished,
    /// Something else went wrong: the recovery stops.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// The newcomer's private-link MAC.
    pub mac: String,
    pub step: Step,
    /// In words, for the peer's log.
    pub message: String,
    #[serde(default)]
    pub written_bytes: u64,
    #[serde(default)]
    pub total_bytes: u64,
}

/// The newcomer's side.
#[derive(Debug, Clone)]
pub struct PeerClient {
    base: String,
    agent: ureq::Agent,
}

impl PeerClient {
    pub fn new(peer: Ipv4Addr, port: u16) -> PeerClient {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build();
        PeerClient { base: format!("http://{peer}:{port}"), agent: config.into() }
    }

    /// The image's URL, for [`crate::source::HttpSource`].
    pub fn image_url(&self) -> String {
        format!("{}/image", self.base)
    }

    pub fn node_config(&self, mac: &str) -> Result<NodeConfig, SourceError> {
        let url = format!("{}/node/config?mac={mac}", self.base);
        let err = |message: String| SourceError::Http { url: url.clone(), message };
        let mut resp = self.agent.get(&url).call().map_err(|e| err(e.to_string()))?;
        let status = resp.status().as_u16();
        let mut body = String::new();
        resp.body_mut()
            .as_reader()
            .take(64 << 10)
            .read_to_string(&mut body)
            .map_err(|e| err(format!("reading the body: {e}")))?;
        if status != 200 {
            return Err(err(format!("HTTP status {status}: {}", body.trim())));
        }
        serde_json::from_str(&body).map_err(|e| err(format!("expected a node configuration: {e}")))
    }

    /// Tells the peer; a peer that cannot be told does not stop the recovery.
    pub fn report(&self, report: &Report) -> Result<(), SourceError> {
        let url = format!("{}/node/report", self.base);
        let err = |message: String| SourceError::Http { url: url.clone(), message };
        let body = serde_json::to_vec(report).expect("a report always serialises");
        let resp = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(&body[..])
            .map_err(|e| err(e.to_string()))?;
        match resp.status().as_u16() {
            204 | 200 => Ok(()),
            s => Err(err(format!("HTTP status {s}"))),
        }
    }
}
