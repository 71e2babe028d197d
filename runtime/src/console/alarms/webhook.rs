//! A webhook: the notice as a JSON POST.

use std::time::Duration;

use pairos_mirror::document::WebhookDestination;

use super::Notice;

pub fn send(w: &WebhookDestination, n: &Notice) -> Result<(), String> {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(10))).build().into();
    let body = serde_json::to_string(n).expect("serialises");
    agent
        .post(&w.url)
        .header("content-type", "application/json")
        .header("user-agent", "pairos-console")
        .send(body.as_bytes())
        .map(|_| ())
        .map_err(|e| format!("POST {}: {e}", w.url))
}
