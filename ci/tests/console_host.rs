//! The console on a host pair (two pair daemons in network namespaces, each node serving
//! `pairos console serve` on its public port): the API's security (no session, wrong passwords
//! throttled, cross-site changes refused, nothing on the private link), `/metrics` as promtool
//! reads it, and the page in headless Chromium: used by keyboard alone (login, a switchover's
//! confirmation opened and cancelled), at a tablet's size, and kept open on the pair's address
//! while the primary's power is cut: it shows the failover and the alarm without a reload,
//! keeps its session, and acknowledges the alarm. Screenshots are kept in the lab's folder and checked
//! for the colours of the states they must show.

use std::time::Duration;

use pairos_host::Cmd;
use pairos_lab::browser::{LabBrowser, ENTER, ESCAPE};
use pairos_lab::console_lab::{self, metric, promtool_accepts, Answer, Receivers};
use pairos_lab::pair_host::{role, Fencing, HostPair, PAIR_ADDRESS};
use pairos_lab::{paths, LabError};

const TIMING: &str = "heartbeat_ms = 100\ndead_time_ms = 3000\nfence_delay_ms = 1000\nhold_ms = 1500\ncooldown_ms = 5000\nstartup_wait_ms = 0";
const SOON: Duration = Duration::from_secs(30);
const PASSWORD: &str = "pair console password";
/// A second address of the client's, whose failed logins are throttled.
const GUESSER: &str = "192.168.50.101";
const GREEN: [u8; 3] = [0x1a, 0x7f, 0x37];
const RED: [u8; 3] = [0xcf, 0x22, 0x2e];

/// `curl` from the client's namespace.
fn curl(p: &HostPair, method: &str, url: &str, extra: &[&str]) -> Result<Answer, LabError> {
    console_lab::curl(&p.client, method, url, extra)
}

fn at(path: &str) -> String {
    format!("https://{PAIR_ADDRESS}{path}")
}

fn json_body(v: serde_json::Value) -> String {
    v.to_string()
}

/// `pairos console fingerprint --json` for the host pair's key.
fn fingerprint(p: &HostPair) -> Result<serde_json::Value, LabError> {
    let text = Cmd::new(paths::pairos_bin()?)
        .args(["console", "fingerprint", "--pair-id", "hostpair", "--json", "--key-file"])
        .arg(p.nodes[0].dir.join("pair.key"))
        .args(["--name", PAIR_ADDRESS, "--name", "192.168.50.11", "--name", "192.168.50.12"])
        .run_text()?;
    Ok(serde_json::from_str(&text).expect("JSON"))
}

fn wait_answering(p: &HostPair) -> Result<(), LabError> {
    let start = std::time::Instant::now();
    loop {
        if curl(p, "GET", &at("/api/v1/session"), &[]).is_ok_and(|a| a.status == 200) {
            return Ok(());
        }
        if start.elapsed() > SOON {
            return Err(LabError::Setup("the console does not answer at the pair's address".into()));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn the_console_follows_the_primary_and_keeps_its_session() -> Result<(), LabError> {
    let mut p = HostPair::up_with_console("consolehost", Fencing::Command, TIMING)?;
    let dir = p.lab.dir().to_owned();
    p.wait_until("node a primary", SOON, |a, b| role(a) == "primary" && role(b) == "secondary")?;
    wait_answering(&p)?;
    let fp = fingerprint(&p)?;

    // No password yet: the page asks for one; nothing else answers without a session.
    let s = curl(&p, "GET", &at("/api/v1/session"), &[])?.json();
    assert_eq!(s["password_set"], false, "{s}");
    assert_eq!(s["fingerprint"], fp["sha256"], "the console presents the derived certificate");
    for (method, path) in
        [("GET", "/api/v1/state"), ("GET", "/api/v1/events"), ("POST", "/api/v1/switchover")]
    {
        let a = curl(&p, method, &at(path), &[])?;
        assert_eq!(a.status, 401, "{method} {path} without a session: {a:?}");
    }
    let header = ["-H", "content-type: application/json"];
    let short = json_body(serde_json::json!({ "password": "short" }));
    let a = curl(&p, "POST", &at("/api/v1/password"), &[&header[..], &["--data", &short]].concat())?;
    assert_eq!(a.status, 422, "{a:?}");
    let good = json_body(serde_json::json!({ "password": PASSWORD }));
    let a = curl(&p, "POST", &at("/api/v1/password"), &[&header[..], &["--data", &good]].concat())?;
    assert_eq!(a.status, 200, "the first password, on the primary: {a:?}");
    assert!(a.headers.contains("set-cookie: pairos_session="), "{a:?}");
    assert!(a.headers.contains("httponly") && a.headers.contains("samesite=strict"), "{a:?}");
    let a = curl(&p, "POST", &at("/api/v1/password"), &[&header[..], &["--data", &good]].concat())?;
    assert_eq!(a.status, 409, "a second first password: {a:?}");
    // Wrong passwords from one address are throttled from the fourth; another address is not.
    p.client.ip(&["addr", "add", &format!("{GUESSER}/24"), "dev", "eth0"])?;
    let wrong = json_body(serde_json::json!({ "password": "not the password" }));
    let from = ["--interface", GUESSER];
    for _ in 0..3 {
        let a =
            curl(&p, "POST", &at("/api/v1/session"), &[&header[..], &from, &["--data", &wrong]].concat())?;
        assert_eq!(a.status, 401, "{a:?}");
    }
    for body in [&wrong, &good] {
        let a = curl(&p, "POST", &at("/api/v1/session"), &[&header[..], &from, &["--data", body]].concat())?;
        assert_eq!(a.status, 429, "throttled, even the right password: {a:?}");
        assert!(a.headers.contains("retry-after: "), "{a:?}");
    }
    let cross = ["-H", "origin: https://evil.example"];
    let a = curl(&p, "POST", &at("/api/v1/session"), &[&header[..], &cross, &["--data", &good]].concat())?;
    assert_eq!(a.status, 403, "a cross-site login: {a:?}");
    let login = curl(&p, "POST", &at("/api/v1/session"), &[&header[..], &["--data", &good]].concat())?;
    assert_eq!(login.status, 200, "{login:?}");
    let session = login.json();
    let (token, csrf) = (session["token"].as_str().expect("token"), session["csrf"].as_str().expect("csrf"));

    // A change with the cookie needs the CSRF token and the console's own origin; a bearer
    // token (a script) needs neither.
    let cookie = format!("cookie: pairos_session={token}");
    let csrf_header = format!("x-pairos-csrf: {csrf}");
    let off = json_body(serde_json::json!({ "on": false }));
    let with_cookie = [&header[..], &["-H", &cookie, "--data", &off]].concat();
    let a = curl(&p, "POST", &at("/api/v1/maintenance"), &with_cookie)?;
    assert_eq!(a.status, 403, "no CSRF token: {a:?}");
    let a = curl(
        &p,
        "POST",
        &at("/api/v1/maintenance"),
        &[&with_cookie[..], &["-H", &csrf_header], &cross].concat(),
    )?;
    assert_eq!(a.status, 403, "another origin: {a:?}");
    let own = format!("origin: https://{PAIR_ADDRESS}");
    let a = curl(
        &p,
        "POST",
        &at("/api/v1/maintenance"),
        &[&with_cookie[..], &["-H", &csrf_header, "-H", &own]].concat(),
    )?;
    assert_eq!(a.status, 200, "{a:?}");
    let bearer = format!("authorization: Bearer {token}");
    let a = curl(
        &p,
        "POST",
        &at("/api/v1/maintenance"),
        &[&header[..], &["-H", &bearer, "--data", &off]].concat(),
    )?;
    assert_eq!(a.status, 200, "{a:?}");
    let state = curl(&p, "GET", &at("/api/v1/state"), &["-H", &bearer])?.json();
    assert_eq!(state["served_by"], "node-1");
    assert_eq!(state["pair"]["role"], "primary");

    // Alarm destinations: a mail server that requires STARTTLS and a login, snmptrapd, and an
    // HTTP receiver, all in the client's namespace; a test alarm reaches each.
    let receivers = Receivers::start(&p.client, &dir)?;
    let as_script = [&header[..], &["-H", &bearer]].concat();
    let bad = json_body(serde_json::json!({ "webhooks": [{ "url": "ftp://192.168.50.100/" }] }));
    let a =
        curl(&p, "PUT", &at("/api/v1/alarm-destinations"), &[&as_script[..], &["--data", &bad]].concat())?;
    assert_eq!(a.status, 422, "{a:?}");
    assert!(a.body.contains("not an http:// or https:// URL"), "{a:?}");
    let destinations = json_body(receivers.destinations());
    let a = curl(
        &p,
        "PUT",
        &at("/api/v1/alarm-destinations"),
        &[&as_script[..], &["--data", &destinations]].concat(),
    )?;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.json()["mail"]["password"], "(set)", "the mail password is never shown: {a:?}");
    let a = curl(&p, "POST", &at("/api/v1/alarm-destinations/test"), &as_script)?;
    let results = a.json()["results"].clone();
    assert_eq!(results.as_array().map(Vec::len), Some(3), "{a:?}");
    assert!(results.as_array().expect("array").iter().all(|r| r["sent"] == true), "{results}");
    for kind in Receivers::KINDS {
        receivers.wait_for(kind, "a test alarm from the pairos console", 1)?;
    }
    let mail = receivers.lines("mail");
    assert!(mail[0]["tls"] == true && mail[0]["login"] == true, "STARTTLS and a login: {}", mail[0]);
    // The page's other actions, through the API: what cannot be done changes nothing and says
    // why. (The host pair has no volume group and no volumes; lab_console makes them for real.)
    let doc_before = std::fs::read(p.nodes[0].dir.join("state/pair-config.json")).expect("the document");
    let volume = serde_json::json!({ "name": "data", "size": "256M" }).to_string();
    let a = curl(&p, "POST", &at("/api/v1/volumes"), &[&as_script[..], &["--data", &volume]].concat())?;
    assert_eq!(a.status, 422, "no volume group here: {a:?}");
    let bad = serde_json::json!({ "name": "Data!", "size": "256M" }).to_string();
    let a = curl(&p, "POST", &at("/api/v1/volumes"), &[&as_script[..], &["--data", &bad]].concat())?;
    assert!(a.status == 422 && a.body.contains("expected 1 to 32"), "{a:?}");
    let on_b = curl(
        &p,
        "POST",
        "https://192.168.50.12/api/v1/volumes",
        &[&as_script[..], &["--data", &volume]].concat(),
    )?;
    assert!(
        on_b.status == 422 && on_b.body.contains("run this on node-1"),
        "the secondary refuses: {on_b:?}"
    );
    let example = Cmd::new(paths::pairos_bin()?).args(["workload", "example"]).run_text()?;
    let workload = serde_json::json!({ "definition": example }).to_string();
    let a = curl(&p, "POST", &at("/api/v1/workloads"), &[&as_script[..], &["--data", &workload]].concat())?;
    assert!(a.status == 422 && a.body.contains("is refused (nothing was changed)"), "{a:?}");
    assert_eq!(
        std::fs::read(p.nodes[0].dir.join("state/pair-config.json")).expect("the document"),
        doc_before
    );
    let a = curl(&p, "GET", &at("/api/v1/workloads/postgres/log"), &["-H", &bearer])?;
    assert_eq!(a.status, 404, "{a:?}");
    let mac = serde_json::json!({ "mac": "52:54:00:AA:BB:CC" }).to_string();
    let a =
        curl(&p, "POST", &at("/api/v1/enrolment/approve"), &[&as_script[..], &["--data", &mac]].concat())?;
    assert_eq!(a.json()["approved"], "52:54:00:aa:bb:cc", "{a:?}");
    let approved = std::fs::read_to_string(p.nodes[0].dir.join("run/approved.json")).expect("approved");
    assert!(approved.contains("52:54:00:aa:bb:cc"), "{approved}");
    let nonsense = serde_json::json!({ "mac": "nonsense" }).to_string();
    let a = curl(
        &p,
        "POST",
        &at("/api/v1/enrolment/approve"),
        &[&as_script[..], &["--data", &nonsense]].concat(),
    )?;
    assert!(a.status == 422 && a.body.contains("expected a MAC address"), "{a:?}");

    // A real pair's volume managers carry the document to the peer; the host pair has none.
    std::fs::copy(
        p.nodes[0].dir.join("state/pair-config.json"),
        p.nodes[1].dir.join("state/pair-config.json"),
    )
    .expect("copy the document");

    // The command line, remotely: `pairos --pair https://ADDRESS pair status`, trusting only the
    // pair's certificate; with the wrong password it is refused.
    let pem = dir.join("pair.pem");
    let text = Cmd::new(paths::pairos_bin()?)
        .args(["console", "fingerprint", "--pair-id", "hostpair", "--pem", "--key-file"])
        .arg(p.nodes[0].dir.join("pair.key"))
        .args(["--name", PAIR_ADDRESS, "--name", "192.168.50.11", "--name", "192.168.50.12"])
        .run_text()?;
    std::fs::write(&pem, text).expect("write");
    let remote = |password: &str| {
        p.client
            .cmd(paths::pairos_bin().expect("built").to_str().expect("utf-8"))
            .args(["--pair", &at(""), "--pair-cert"])
            .arg(&pem)
            .args(["pair", "status"])
            .env("PAIROS_PASSWORD", password)
            .run_text()
    };
    let text = remote(PASSWORD)?;
    assert!(text.contains("node-1: primary (epoch") && text.contains("served by node-1"), "{text}");
    let refused = remote("not the password either");
    assert!(refused.as_ref().is_err_and(|e| e.to_string().contains("wrong password")), "{refused:?}");
    let local = p.pair_cmd(0, &["status"])?;
    assert!(local.contains(&format!("console: https://{PAIR_ADDRESS}/")), "{local}");
    assert!(local.contains(fp["sha256"].as_str().expect("sha256")), "{local}");

    // Nothing of the console on the private link: node b cannot reach a's console there.
    let private = p.nodes[1].ns.cmd("curl").args(["-sk", "--max-time", "5", "https://10.77.0.1/"]).run_text();
    assert!(private.is_err(), "the console answered on the private link: {private:?}");

    // /metrics: promtool accepts it; node-1 is primary and has not failed over.
    let m = curl(&p, "GET", &at("/metrics"), &[])?;
    assert_eq!(m.status, 200);
    promtool_accepts(&dir, &m.body)?;
    assert_eq!(metric(&m.body, "pairos_primary{node=\"node-1\"}"), Some(1.0), "{}", m.body);
    assert_eq!(metric(&m.body, "pairos_role_changes_total{node=\"node-1\",cause=\"failover\"}"), Some(0.0));

    // The operator's own certificate: refused unless it is a certificate and its key; then both
    // nodes present it (checked against its CA), the consoles still see each other (their own
    // port keeps the pair's certificate), and back to the pair's own.
    let (ca, cert, key) =
        console_lab::lab_certificate(&dir, "console", &[PAIR_ADDRESS, "192.168.50.11", "192.168.50.12"])?;
    let (cert, key) =
        (std::fs::read_to_string(cert).expect("cert"), std::fs::read_to_string(key).expect("key"));
    let upload = |cert_pem: &str, key_pem: &str| {
        let body = serde_json::json!({ "cert_pem": cert_pem, "key_pem": key_pem }).to_string();
        curl(&p, "PUT", &at("/api/v1/certificate/uploaded"), &[&as_script[..], &["--data", &body]].concat())
    };
    let a = upload(&cert, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")?;
    assert!(a.status == 422 && a.body.contains("key_pem"), "{a:?}");
    let a = upload(&cert, &key)?;
    assert_eq!(a.status, 200, "{a:?}");
    std::fs::copy(
        p.nodes[0].dir.join("state/pair-config.json"),
        p.nodes[1].dir.join("state/pair-config.json"),
    )
    .expect("copy the document");
    let trusted = ["--cacert", ca.to_str().expect("utf-8")];
    for url in [at("/api/v1/session"), "https://192.168.50.12/api/v1/session".to_owned()] {
        let start = std::time::Instant::now();
        // curl -k is not given here: the answer proves the uploaded certificate.
        while p.client.cmd("curl").args(["-s", "--max-time", "5"]).args(trusted).arg(&url).run().is_err() {
            assert!(start.elapsed() < SOON, "{url}: the uploaded certificate is not presented");
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    std::thread::sleep(Duration::from_secs(4));
    let state = curl(&p, "GET", &at("/api/v1/state"), &["-H", &bearer])?.json();
    assert_eq!(state["peer"]["reachable"], true, "console to console still: {}", state["peer"]);
    let a = curl(&p, "DELETE", &at("/api/v1/certificate/uploaded"), &as_script)?;
    assert_eq!(a.status, 200, "{a:?}");
    std::fs::copy(
        p.nodes[0].dir.join("state/pair-config.json"),
        p.nodes[1].dir.join("state/pair-config.json"),
    )
    .expect("copy the document");
    let start = std::time::Instant::now();
    while console_lab::served_spki(&p.client, PAIR_ADDRESS)? != fp["spki_sha256"].as_str().expect("spki") {
        assert!(start.elapsed() < SOON, "the pair's own certificate is not back");
        std::thread::sleep(Duration::from_millis(500));
    }

    // The page: log in, and see both nodes and the primary.
    let mut browser =
        LabBrowser::start(&p.client, &dir.join("browser"), fp["spki_sha256"].as_str().expect("spki"))?;
    browser.goto(&at("/"))?;
    // By keyboard alone: Tab reaches the password, Enter logs in.
    browser.wait_for("the login form", "!document.getElementById('login').hidden", SOON)?;
    browser.tab_to("password", 5)?;
    browser.press(&format!("{PASSWORD}{ENTER}"))?;
    browser.wait_for(
        "the dashboard with node-1 primary and node-2 secondary",
        "document.body.dataset.primary === 'node-1' && document.querySelector('[data-node=\"node-2\"]')?.dataset.role === 'secondary'",
        SOON,
    )?;
    browser.wait_for(
        "node-2's own parts, from its console",
        "!!document.querySelector('[data-node=\"node-2\"] [data-part=\"public link\"]')",
        SOON,
    )?;
    let shot = browser.screenshot("dashboard")?;
    assert!(shot.count(GREEN, 24) > 200, "the primary's green frame is drawn: {}", shot.path.display());
    assert!(shot.count(RED, 24) < 50, "nothing red while all is well: {}", shot.path.display());

    // By keyboard: Tab reaches "Switch over…" (its outline shows where the focus is), Enter asks
    // first with the focus on the answer, Escape cancels and gives the focus back; nothing moves.
    browser.tab_to("switchover", 40)?;
    assert_eq!(
        browser.eval("getComputedStyle(document.activeElement).outlineStyle")?,
        "solid",
        "the focused button is outlined"
    );
    browser.press(ENTER)?;
    browser.wait_for(
        "the switchover's confirmation, with the focus on its answer",
        "!document.getElementById('confirm').hidden && document.activeElement.id === 'confirm-yes' && document.getElementById('confirm-text').textContent.startsWith('Switch over')",
        SOON,
    )?;
    browser.press(ESCAPE)?;
    browser.wait_for(
        "the confirmation gone and the focus back on Switch over",
        "document.getElementById('confirm').hidden && document.activeElement.id === 'switchover'",
        SOON,
    )?;
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(role(&p.status(0)?), "primary", "a cancelled switchover changes nothing");
    assert_eq!(browser.eval("document.body.dataset.primary")?, "node-1");

    // On a tablet (768 by 1024): nothing wider than the screen, both nodes within it, and no
    // part's text (a long fence command) running out of its node's frame.
    browser.resize(768, 1024)?;
    browser.wait_for(
        "the tablet layout",
        "document.documentElement.scrollWidth <= window.innerWidth && [...document.querySelectorAll('[data-node]')].every(n => n.getBoundingClientRect().right <= window.innerWidth && n.scrollWidth <= n.clientWidth)",
        SOON,
    )?;
    let shot = browser.screenshot("tablet")?;
    assert!(shot.count(GREEN, 24) > 200, "the primary's green frame on a tablet: {}", shot.path.display());
    browser.resize(1280, 1024)?;

    // "Send a test alarm" on the page: each destination says it was sent, and it arrives.
    browser.click("#destinations-test")?;
    browser.wait_for(
        "three destinations sent",
        "[...document.querySelectorAll('#destinations-result li')].filter(l => l.textContent.endsWith(': sent')).length === 3",
        SOON,
    )?;
    for kind in Receivers::KINDS {
        receivers.wait_for(kind, "a test alarm from the pairos console", 2)?;
    }

    // The primary's power is cut; the page, kept open, shows the failover and the alarm.
    p.kill(0)?;
    p.wait_until("node b primary", SOON, |_, b| role(b) == "primary" && b["address"]["held"] == true)?;
    browser.wait_for(
        "node-2 primary, node-1 silent and an alarm, without a reload",
        "document.body.dataset.primary === 'node-2' && document.querySelector('[data-node=\"node-1\"]')?.dataset.role === 'silent' && document.querySelectorAll('[data-alarm]').length > 0",
        SOON,
    )?;
    assert_eq!(browser.eval("document.getElementById('dashboard').hidden")?, false, "the session was kept");
    assert_eq!(browser.eval("document.getElementById('login').hidden")?, true, "no login asked again");
    let shot = browser.screenshot("failover")?;
    assert!(shot.count(RED, 24) > 200, "the silent node and the alarm are red: {}", shot.path.display());

    // Each receiver hears of the failover once.
    let failover = "node-2 took over as primary";
    for kind in Receivers::KINDS {
        receivers.wait_for(kind, failover, 1)?;
    }
    std::thread::sleep(Duration::from_secs(4));
    for kind in Receivers::KINDS {
        receivers.wait_for(kind, failover, 1)?;
        assert_eq!(receivers.count(kind, failover), 1, "{kind}: the failover alarm once");
    }

    // The counter moved, on the node that now serves the pair's address.
    let m = curl(&p, "GET", &at("/metrics"), &[])?;
    promtool_accepts(&dir, &m.body)?;
    assert_eq!(metric(&m.body, "pairos_primary{node=\"node-2\"}"), Some(1.0), "{}", m.body);
    assert_eq!(
        metric(&m.body, "pairos_role_changes_total{node=\"node-2\",cause=\"failover\"}"),
        Some(1.0),
        "{}",
        m.body
    );

    // Acknowledge the alarm on the page.
    browser.click("[data-ack]")?;
    browser.wait_for(
        "every alarm acknowledged",
        "[...document.querySelectorAll('[data-alarm]')].every(a => a.dataset.acknowledged === 'true')",
        SOON,
    )?;
    browser.screenshot("acknowledged")?;

    // a comes back: the page shows it as the secondary.
    p.power_on(0)?;
    browser.wait_for(
        "node-1 back as the secondary",
        "document.querySelector('[data-node=\"node-1\"]')?.dataset.role === 'secondary'",
        SOON,
    )?;
    browser.screenshot("back")?;
    Ok(())
}
