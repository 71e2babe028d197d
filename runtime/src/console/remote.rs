//! The `pairos` command against a pair's console from anywhere on the public network
//! (`pairos --pair https://ADDRESS pair status`): it logs in with the password and speaks the
//! same API as the page. The pair's certificate is the only one trusted: give it with
//! `--pair-cert` (from `pairos console fingerprint --pem` on a node, or `/api/v1/certificate`
//! checked against the fingerprint the installer showed).

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};

#[derive(Debug)]
pub struct Remote {
    agent: ureq::Agent,
    base: String,
    token: String,
}

fn answer(
    r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    what: &str,
) -> anyhow::Result<serde_json::Value> {
    let mut r = r.with_context(|| what.to_owned())?;
    let status = r.status();
    let text = r.body_mut().read_to_string().with_context(|| format!("{what}: the answer"))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{what}: not JSON: {text}"))?;
    if !status.is_success() {
        bail!("{what}: {} ({status})", v["error"].as_str().unwrap_or(&text));
    }
    Ok(v)
}

impl Remote {
    /// Logs in to the console at `base` (`https://ADDRESS`), trusting only `cert` (PEM or DER).
    pub fn login(base: &str, cert: &Path, password: &str) -> anyhow::Result<Remote> {
        let bytes = std::fs::read(cert)
            .with_context(|| format!("reading the pair's certificate {}", cert.display()))?;
        let cert = if bytes.starts_with(b"-----BEGIN") {
            ureq::tls::Certificate::from_pem(&bytes)
                .with_context(|| format!("{}: not a PEM certificate", cert.display()))?
        } else {
            ureq::tls::Certificate::from_der(&bytes).to_owned()
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(15)))
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&[cert]))
                    .build(),
            )
            .http_status_as_error(false)
            .build()
            .into();
        let base = base.trim_end_matches('/').to_owned();
        if !base.starts_with("https://") {
            bail!("--pair {base}: expected https://ADDRESS");
        }
        let body = serde_json::json!({ "password": password }).to_string();
        let v = answer(
            agent
                .post(&format!("{base}/api/v1/session"))
                .header("content-type", "application/json")
                .send(body.as_bytes()),
            &format!("logging in to {base}"),
        )?;
        let token = v["token"].as_str().context("the console's login answer has no token")?.to_owned();
        Ok(Remote { agent, base, token })
    }

    pub fn get(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        answer(
            self.agent
                .get(&format!("{}{path}", self.base))
                .header("authorization", &format!("Bearer {}", self.token))
                .call(),
            &format!("GET {}{path}", self.base),
        )
    }

    pub fn post(&self, path: &str, body: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
        answer(
            self.agent
                .post(&format!("{}{path}", self.base))
                .header("authorization", &format!("Bearer {}", self.token))
                .header("content-type", "application/json")
                .send(body.to_string().as_bytes()),
            &format!("POST {}{path}", self.base),
        )
    }
}

/// The password for a remote command: `$PAIROS_PASSWORD`, else one line of standard input.
pub fn password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("PAIROS_PASSWORD") {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).context("reading the console password from standard input")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}
