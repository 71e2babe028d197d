//! Lab: the console in headless Chromium against a pair of QEMU nodes booted from our image,
//! with BMCs. The operator's first login sets the password on the page; the dashboard shows
//! both nodes and the primary; a volume is added on the page and syncs. Alarms go to real
//! receivers in the client's namespace (an SMTP server with STARTTLS and a login, snmptrapd, an
//! HTTP endpoint). Then the primary's VM is killed: the page, kept open on the pair's address,
//! shows the failover and the alarm without a reload and keeps its session, the alarm is
//! acknowledged there, and each receiver gets the failover alarm once. The dead node's disk is
//! swapped for a blank one: it boots from its peer, images itself, rejoins and syncs the
//! volume, and the page shows each step. `/metrics` passes `promtool check metrics` and its
//! failover counter moved. Screenshots of each step are kept in the lab's `browser/` folder and
//! checked for the colours of the states they must show.

use std::time::Duration;

use pairos_lab::browser::LabBrowser;
use pairos_lab::console_lab::{curl, metric, promtool_accepts, served_spki, Receivers};
use pairos_lab::pair_lab::{PairLab, PairLabOptions, BOOT, PAIR_ADDRESS};
use pairos_lab::{image, LabError};

const MINUTE: Duration = Duration::from_secs(60);
const PASSWORD: &str = "the lab pair's console";
const GREEN: [u8; 3] = [0x1a, 0x7f, 0x37];
const RED: [u8; 3] = [0xcf, 0x22, 0x2e];
/// The page shows volume `data` up to date here and on the peer.
const IN_SYNC: &str = "(r => !!r && r.cells[2].textContent.includes('UpToDate') && r.cells[3].textContent === 'UpToDate')(document.querySelector('[data-volume=\"data\"]'))";

fn at(path: &str) -> String {
    format!("https://{PAIR_ADDRESS}{path}")
}

/// The page's state as one expression: who is primary, and node `n`'s role on the dashboard.
fn role_of(n: &str) -> String {
    format!("document.querySelector('[data-node=\"{n}\"]')?.dataset.role")
}

#[test]
fn the_console_shows_a_failover_and_a_heal_in_a_browser() -> Result<(), LabError> {
    let opts =
        PairLabOptions { name: "console".into(), image: image::default_image()?, bmcs: true, witness: false };
    let mut pair = PairLab::up(&opts, &mut |line| eprintln!("lab_console: {line}"))?;
    let dir = pair.lab().dir().to_owned();
    let client = &pair.client().ns;

    // The console answers at the pair's address; the browser trusts only the key it serves.
    let start = std::time::Instant::now();
    while !curl(client, "GET", &at("/api/v1/session"), &[]).is_ok_and(|a| a.status == 200) {
        assert!(start.elapsed() < 2 * MINUTE, "no console at {PAIR_ADDRESS}");
        std::thread::sleep(Duration::from_secs(1));
    }
    let spki = served_spki(client, PAIR_ADDRESS)?;
    let mut browser = LabBrowser::start(client, &dir.join("browser"), &spki)?;
    browser.goto(&at("/"))?;
    browser.fill("#new-password", PASSWORD)?;
    browser.click("#setup-form button[type=submit]")?;
    browser.wait_for(
        "both nodes, node-1 primary, each with its own parts",
        &format!(
            "document.body.dataset.primary === 'node-1' && {} === 'secondary' && !!document.querySelector('[data-node=\"node-2\"] [data-part=\"public link\"]')",
            role_of("node-2")
        ),
        2 * MINUTE,
    )?;
    let shot = browser.screenshot("dashboard")?;
    assert!(shot.count(GREEN, 24) > 200, "the primary's green frame: {}", shot.path.display());

    // A volume added on the page: the confirmation says what will happen; then it is made on
    // both nodes and in sync.
    browser.fill("#volume-name", "data")?;
    browser.fill("#volume-size", "64M")?;
    browser.click("#volume-form button[type=submit]")?;
    browser.wait_for(
        "a confirmation that says what will happen",
        "!document.getElementById('confirm').hidden && document.getElementById('confirm-text').textContent.includes('made on both nodes')",
        MINUTE,
    )?;
    browser.click("#confirm-yes")?;
    browser.wait_for("volume data up to date on both nodes", IN_SYNC, 3 * MINUTE)?;
    browser.screenshot("volume")?;

    // Alarm destinations, through the API as a script sets them, and a test alarm.
    let receivers = Receivers::start(client, &dir)?;
    let json = ["-H", "content-type: application/json"];
    let login = serde_json::json!({ "password": PASSWORD }).to_string();
    let token = curl(client, "POST", &at("/api/v1/session"), &[&json[..], &["--data", &login]].concat())?
        .json()["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let bearer = format!("authorization: Bearer {token}");
    let destinations = receivers.destinations().to_string();
    let a = curl(
        client,
        "PUT",
        &at("/api/v1/alarm-destinations"),
        &[&json[..], &["-H", &bearer, "--data", &destinations]].concat(),
    )?;
    assert_eq!(a.status, 200, "{a:?}");
    // The volume managers carry the document to node-2 within seconds; it sends the failover
    // alarm later, so it must have the destinations by then (asked at its management address,
    // with the same session: both nodes believe it).
    let start = std::time::Instant::now();
    while !curl(client, "GET", "https://192.168.50.12/api/v1/alarm-destinations", &["-H", &bearer])
        .is_ok_and(|a| a.body.contains("/alarms"))
    {
        assert!(start.elapsed() < 2 * MINUTE, "node-2 never got the alarm destinations");
        std::thread::sleep(Duration::from_secs(2));
    }
    let a = curl(client, "POST", &at("/api/v1/alarm-destinations/test"), &["-H", &bearer])?;
    assert!(a.body.matches("\"sent\":true").count() == 3, "{a:?}");
    for kind in Receivers::KINDS {
        receivers.wait_for(kind, "a test alarm from the pairos console", 1)?;
    }
    let m = curl(client, "GET", &at("/metrics"), &[])?;
    promtool_accepts(&dir, &m.body)?;
    assert_eq!(metric(&m.body, "pairos_primary{node=\"node-1\"}"), Some(1.0), "{}", m.body);

    // The primary's VM dies: the page shows node-2 taking over, node-1 silent, and the alarm.
    let from_b = pair.console_len('b')?;
    pair.kill('a')?;
    browser.wait_for(
        "node-2 primary, node-1 silent, an alarm, without a reload",
        &format!(
            "document.body.dataset.primary === 'node-2' && {} === 'silent' && document.querySelectorAll('[data-alarm]').length > 0",
            role_of("node-1")
        ),
        3 * MINUTE,
    )?;
    assert_eq!(browser.eval("document.getElementById('dashboard').hidden")?, false, "the session was kept");
    let shot = browser.screenshot("failover")?;
    assert!(shot.count(RED, 24) > 200, "the silent node and the alarm are red: {}", shot.path.display());
    browser.click("[data-ack]")?;
    browser.wait_for(
        "the alarm acknowledged",
        "[...document.querySelectorAll('[data-alarm]')].some(a => a.dataset.acknowledged === 'true')",
        MINUTE,
    )?;
    browser.screenshot("acknowledged")?;
    let failover = "node-2 took over as primary";
    for kind in Receivers::KINDS {
        receivers.wait_for(kind, failover, 1)?;
    }
    let m = curl(&pair.client().ns, "GET", &at("/metrics"), &[])?;
    promtool_accepts(&dir, &m.body)?;
    assert_eq!(
        metric(&m.body, "pairos_role_changes_total{node=\"node-2\",cause=\"failover\"}"),
        Some(1.0),
        "{}",
        m.body
    );

    // node-1's disk is swapped for a blank one once node-2's fence confirmed it off: it boots
    // from node-2, images itself and rejoins; the page shows each step.
    pair.wait_console('b', from_b, "pair: fence: node-1 is confirmed powered off", 2 * MINUTE)?;
    pair.swap_disk('a')?;
    let from_a = pair.console_len('a')?;
    let heal_b = pair.console_len('b')?;
    pair.power('a', true)?;
    browser.wait_for(
        "node-1 imaging itself, with its progress",
        "/writing: [0-9]+%/i.test(document.querySelector('[data-step=\"imaging\"]')?.textContent || '')",
        5 * MINUTE,
    )?;
    let shot = browser.screenshot("imaging")?;
    // How it got there, from node-2's console: node-1's firmware boots its disk first (its
    // heartbeats said so), so its first network boot, the blank disk having failed, was
    // offered recovery at once, with no wait and no reset. Nobody typed a command on node-1.
    let line = "Recover (a known peer whose disk does not boot (its firmware boots its disk first";
    pair.wait_console('b', heal_b, line, MINUTE)?;
    let b_log = pair.node('b')?.vm.console().text();
    assert!(!b_log[heal_b..].contains("LocalBoot (a known peer"), "node-1 was never sent to its dead disk");
    assert!(!b_log[heal_b..].contains("reset through IPMI"), "node-1 was not reset to get there");
    assert!(
        shot.count(RED, 24) > 200,
        "node-1 is still silent while it images itself: {}",
        shot.path.display()
    );
    pair.wait_console('a', from_a, "pairos-recover: identity written: node-1", 15 * MINUTE)?;
    browser.wait_for(
        "imaging finished",
        "document.querySelector('[data-step=\"imaging\"]')?.dataset.done === 'true'",
        2 * MINUTE,
    )?;
    browser.screenshot("imaged")?;
    browser.wait_for(
        "node-1 back in the pair as the secondary",
        &format!("{} === 'secondary' && document.body.dataset.primary === 'node-2'", role_of("node-1")),
        BOOT + 2 * MINUTE,
    )?;
    browser.screenshot("rejoined")?;
    browser.wait_for(
        "node-1's side of data synced in full",
        &format!("{IN_SYNC} && document.querySelector('[data-step=\"sync\"]')?.dataset.done === 'true'"),
        5 * MINUTE,
    )?;
    browser.screenshot("in-sync")?;

    // The failover alarm reached each receiver once.
    for kind in Receivers::KINDS {
        assert_eq!(receivers.count(kind, failover), 1, "{kind}: the failover alarm once");
    }
    Ok(())
}
