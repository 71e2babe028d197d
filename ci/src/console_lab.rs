//! The console's lab tools: `curl` against it from a namespace, the alarm receivers (an SMTP
//! server with STARTTLS and AUTH, Net-SNMP's snmptrapd and an HTTP server, each writing what
//! arrives to a file), promtool's check of `/metrics`, and the key the console serves (which a
//! lab browser is told to trust).

use std::path::{Path, PathBuf};
use std::time::Duration;

use pairos_host::Cmd;

use crate::{LabError, Netns};

const SOON: Duration = Duration::from_secs(30);

/// An HTTP answer: status, headers (lower-case names) and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// `curl` from namespace `ns`; `extra` are curl's arguments before the URL.
pub fn curl(ns: &Netns, method: &str, url: &str, extra: &[&str]) -> Result<Answer, LabError> {
    let text = ns
        .cmd("curl")
        .args(["-sk", "--max-time", "10", "-i", "-X", method])
        .args(extra)
        .arg(url)
        .run_text()?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok(Answer { status, headers: head.to_ascii_lowercase(), body: body.to_owned() })
}

/// Panics unless `promtool check metrics` accepts the text (kept in `dir/metrics.txt`).
pub fn promtool_accepts(dir: &Path, text: &str) -> Result<(), LabError> {
    let file = dir.join("metrics.txt");
    std::fs::write(&file, text).expect("write");
    let out =
        Cmd::new("sh").arg("-c").arg(format!("promtool check metrics < {} 2>&1", file.display())).run_text();
    match out {
        Ok(_) => Ok(()),
        Err(e) => panic!("promtool refused /metrics: {e}\n{text}"),
    }
}

pub fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
}

/// A lab CA (`dir/ca.crt`) and a server certificate signed by it for the IP addresses given:
/// returns the paths of the CA, the certificate and its key (`dir/NAME.crt`, `dir/NAME.key`).
pub fn lab_certificate(
    dir: &Path,
    name: &str,
    addresses: &[&str],
) -> Result<(PathBuf, PathBuf, PathBuf), LabError> {
    let (ca, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    if !ca.exists() {
        Cmd::new("openssl")
            .args(["req", "-x509", "-days", "2", "-subj", "/CN=lab CA"])
            .args(ec)
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca)
            .run()?;
    }
    let (cert, key, csr) =
        (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")), dir.join(format!("{name}.csr")));
    Cmd::new("openssl")
        .args(["req", "-subj", &format!("/CN={}", addresses[0])])
        .args(ec)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr)
        .run()?;
    let ext = dir.join(format!("{name}.ext"));
    let sans: Vec<String> = addresses.iter().map(|a| format!("IP:{a}")).collect();
    std::fs::write(&ext, format!("subjectAltName={}\nbasicConstraints=CA:FALSE\n", sans.join(",")))
        .map_err(crate::error::io(&ext))?;
    Cmd::new("openssl")
        .args(["x509", "-req", "-days", "2", "-in"])
        .arg(&csr)
        .arg("-CA")
        .arg(&ca)
        .arg("-CAkey")
        .arg(&ca_key)
        .args(["-CAcreateserial", "-extfile"])
        .arg(&ext)
        .arg("-out")
        .arg(&cert)
        .run()?;
    Ok((ca, cert, key))
}

/// The SHA-256 of the public key (base64) that the console at `address` presents, as seen from
/// `ns`: what the lab browser trusts, so a node that answers later with another key fails.
pub fn served_spki(ns: &Netns, address: &str) -> Result<String, LabError> {
    let script = format!(
        "openssl s_client -connect {address}:443 </dev/null 2>/dev/null | openssl x509 -pubkey -noout \\
         | openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | base64"
    );
    Ok(ns.cmd("sh").args(["-c", &script]).run_text()?.trim().to_owned())
}

/// The alarm receivers in the client's namespace: `ci/scripts/alarm-receivers.py` (SMTP with
/// STARTTLS and AUTH, and HTTP) and Net-SNMP's snmptrapd, each writing what arrives to a file.
#[derive(Debug)]
pub struct Receivers {
    dir: PathBuf,
    cert: String,
    _children: Vec<pairos_host::Child>,
}

impl Receivers {
    pub const KINDS: [&'static str; 3] = ["mail", "snmp", "webhook"];
    pub const ADDRESS: &'static str = "192.168.50.100";

    /// Starts them in `ns`, which must hold [`Receivers::ADDRESS`]; files under `lab/receivers`.
    pub fn start(ns: &Netns, lab: &Path) -> Result<Receivers, LabError> {
        let dir = lab.join("receivers");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let (ca, cert, key) = lab_certificate(&dir, "smtp", &[Self::ADDRESS])?;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/alarm-receivers.py");
        let mail_http = ns
            .cmd("/usr/bin/python3")
            .arg(&script)
            .args([Self::ADDRESS, "2525", "8080"])
            .arg(&cert)
            .arg(&key)
            .args(["alarms", "receiver password"])
            .arg(&dir)
            .spawn(Some(&dir.join("receivers.log")))?;
        let conf = dir.join("snmptrapd.conf");
        std::fs::write(&conf, "authCommunity log lab-community\n").expect("write");
        let traps = ns
            .cmd("snmptrapd")
            .args(["-f", "-n", "-On", "-C", "-c"])
            .arg(&conf)
            .arg("-Lf")
            .arg(dir.join("snmp.log"))
            .arg(format!("udp:{}:1162", Self::ADDRESS))
            .spawn(Some(&dir.join("snmptrapd.out")))?;
        let start = std::time::Instant::now();
        while !std::fs::read_to_string(dir.join("receivers.log"))
            .unwrap_or_default()
            .contains("receivers ready")
        {
            assert!(start.elapsed() < SOON, "the receivers did not start: see {}", dir.display());
            std::thread::sleep(Duration::from_millis(100));
        }
        let cert = std::fs::read_to_string(&ca).expect("the CA certificate");
        Ok(Receivers { dir, cert, _children: vec![mail_http, traps] })
    }

    /// The destinations for `PUT /api/v1/alarm-destinations`.
    pub fn destinations(&self) -> serde_json::Value {
        serde_json::json!({
            "mail": {
                "server": Self::ADDRESS, "port": 2525, "starttls": true, "user": "alarms",
                "password": "receiver password", "from": "pair@lab.example", "to": ["operator@lab.example"],
                "ca_pem": self.cert,
            },
            "snmp": [{ "target": format!("{}:1162", Self::ADDRESS), "community": "lab-community" }],
            "webhooks": [{ "url": format!("http://{}:8080/alarms", Self::ADDRESS) }],
        })
    }

    /// What arrived of `kind`: JSON lines (mail, webhook) or snmptrapd's log as one string.
    pub fn lines(&self, kind: &str) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.dir.join(format!("{kind}.jsonl"))).unwrap_or_default();
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// How many of `kind` mention `text`.
    pub fn count(&self, kind: &str, text: &str) -> usize {
        match kind {
            "snmp" => {
                std::fs::read_to_string(self.dir.join("snmp.log")).unwrap_or_default().matches(text).count()
            }
            _ => self.lines(kind).iter().filter(|l| l.to_string().contains(text)).count(),
        }
    }

    /// Waits until at least `at_least` of `kind` mention `text`.
    pub fn wait_for(&self, kind: &str, text: &str, at_least: usize) -> Result<(), LabError> {
        let start = std::time::Instant::now();
        while self.count(kind, text) < at_least {
            if start.elapsed() > SOON {
                return Err(LabError::Setup(format!(
                    "{kind}: {text:?} did not arrive (see {})",
                    self.dir.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }
}
