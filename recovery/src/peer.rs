//! What a recovering node and its peer say to each other on the private link, beside the
//! image itself: the newcomer's node configuration, and its reports (each step, the write's
//! progress, a refusal and why), which the peer logs and shows in `pairos status`.
//!
//! All of it is HTTP on the peer's image service ([`crate::image_service`]):
//! - `GET  /image/manifest.json`, `/image/manifest.sig`, `/image/disk.raw` (ranges): open to
//!   anyone on the link, since every byte is checked against the signed manifest;
//! - `POST /enrol` ← [`EnrolRequest`] → [`EnrolAnswer`]: the newcomer asks to join; only while
//!   the pair is missing a node, one at a time;
//! - `GET  /node/config?mac=MAC` → [`NewcomerConfig`] and `POST /node/report` ← [`Report`]:
//!   only with the enrolment's token (`Authorization: Bearer TOKEN`), from the enrolled MAC
//!   and address;
//! - `GET  /pair/config` → the pair's configuration document as this node holds it, with its
//!   tag under the pair key in [`TAG_HEADER`]: the peer believes it only if the tag checks;
//! - `GET  /pair/workloads` → how this node's workloads run (its runner's view), tagged the
//!   same way: a node whose workload spent its restarts asks whether the peer spent them too.

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

/// What the newcomer needs to become a node of the pair: its identity and the pair key, and
/// what else the peer holds of the pair's settings, so that the newcomer runs the pair daemon
/// with nobody at its console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewcomerConfig {
    pub node: NodeConfig,
    /// 64 hex digits ([`crate::trust::PairKey`]).
    pub pair_key: String,
    /// The pair's settings (`pair.json`) and the newcomer's own management address, as
    /// documents: the runtime that gives and takes them checks them; this crate only carries
    /// them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management: Option<serde_json::Value>,
    /// The BMC password and the witness key, as the peer keeps them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bmc_password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    /// The private-link MAC the newcomer booted from.
    pub mac: String,
}

/// The peer's answer to an enrolment request that it did not refuse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case", deny_unknown_fields)]
pub enum EnrolAnswer {
    /// Enrolled: the token authenticates this newcomer's reports and its configuration. The
    /// pair's id tells the newcomer whether its disk is of this pair.
    Enrolled { token: String, expires_secs: u64, pair_id: String },
    /// The pair asks its operator first: ask again later.
    Waiting { message: String },
}

/// A refusal, with the HTTP status it is sent with and why, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub status: u16,
    pub message: String,
}

impl Denied {
    pub fn new(status: u16, message: impl Into<String>) -> Denied {
        Denied { status, message: message.into() }
    }
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

/// A response's status and (at most 64 KiB of) its body.
fn answer(
    url: &str,
    resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<(u16, String), SourceError> {
    let err = |message: String| SourceError::Http { url: url.to_owned(), message };
    let mut resp = resp.map_err(|e| err(e.to_string()))?;
    let mut body = String::new();
    resp.body_mut()
        .as_reader()
        .take(64 << 10)
        .read_to_string(&mut body)
        .map_err(|e| err(format!("reading the body: {e}")))?;
    Ok((resp.status().as_u16(), body))
}

/// The header that carries the pair configuration's tag under the pair key.
pub const TAG_HEADER: &str = "x-pairos-tag";

/// The newcomer's side (and a node's, for its peer's pair configuration).
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

    /// Asks to join the pair. `Ok(Err(_))` is the peer's refusal, with its reason.
    pub fn enrol(&self, mac: &str) -> Result<Result<EnrolAnswer, Denied>, SourceError> {
        let url = format!("{}/enrol", self.base);
        let body = serde_json::to_vec(&EnrolRequest { mac: mac.to_owned() }).expect("serialises");
        let req = self.agent.post(&url).header("Content-Type", "application/json");
        let (status, text) = answer(&url, req.send(&body[..]))?;
        if status != 200 {
            return Ok(Err(Denied::new(status, text.trim())));
        }
        serde_json::from_str(&text)
            .map(Ok)
            .map_err(|e| SourceError::Http { url, message: format!("expected an enrolment answer: {e}") })
    }

    /// This node's identity and the pair key, with the enrolment's token.
    pub fn node_config(&self, mac: &str, token: &str) -> Result<NewcomerConfig, SourceError> {
        let url = format!("{}/node/config?mac={mac}", self.base);
        let req = self.agent.get(&url).header("Authorization", &format!("Bearer {token}"));
        let (status, body) = answer(&url, req.call())?;
        let err = |message: String| SourceError::Http { url: url.clone(), message };
        if status != 200 {
            return Err(err(format!("HTTP status {status}: {}", body.trim())));
        }
        serde_json::from_str(&body).map_err(|e| err(format!("expected a node configuration: {e}")))
    }

    /// The peer's pair configuration document and its tag (hex), as it serves them.
    pub fn pair_config(&self) -> Result<(Vec<u8>, String), SourceError> {
        self.tagged("/pair/config")
    }

    /// How the peer's workloads run (its runner's view) and its tag (hex).
    pub fn pair_workloads(&self) -> Result<(Vec<u8>, String), SourceError> {
        self.tagged("/pair/workloads")
    }

    /// A tagged document the peer serves at `path`: its bytes (at most 1 MiB) and its tag.
    fn tagged(&self, path: &str) -> Result<(Vec<u8>, String), SourceError> {
        let url = format!("{}{path}", self.base);
        let err = |message: String| SourceError::Http { url: url.clone(), message };
        let mut resp = self.agent.get(&url).call().map_err(|e| err(e.to_string()))?;
        if resp.status() != 200 {
            return Err(err(format!("HTTP status {}", resp.status())));
        }
        let tag = resp
            .headers()
            .get(TAG_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| err(format!("no {TAG_HEADER} header")))?;
        let mut body = Vec::new();
        resp.body_mut()
            .as_reader()
            .take(1 << 20)
            .read_to_end(&mut body)
            .map_err(|e| err(format!("reading the body: {e}")))?;
        Ok((body, tag))
    }

    /// Tells the peer; a peer that cannot be told does not stop the recovery.
    pub fn report(&self, report: &Report, token: &str) -> Result<(), SourceError> {
        let url = format!("{}/node/report", self.base);
        let body = serde_json::to_vec(report).expect("a report always serialises");
        let req = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .header("Authorization", &format!("Bearer {token}"));
        match answer(&url, req.send(&body[..]))? {
            (204 | 200, _) => Ok(()),
            (s, text) => Err(SourceError::Http { url, message: format!("HTTP status {s}: {}", text.trim()) }),
        }
    }
}
