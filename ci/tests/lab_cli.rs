//! The `ci/lab` command, driven as scripts and newcomers drive it (its binary, `pairos-lab`),
//! on a pair made without BMCs: scenario 8 of the one-primary issue. With no BMC and no
//! witness, the secondary whose primary died does not promote, and says why.
//!
//! Then a pair without BMCs but with a witness (`up --no-bmc --witness`): the witness is its
//! only authority. The primary's daemon hangs: its watchdog resets it, and the secondary takes
//! over through the witness once the hung node's lease ran out. The new primary loses both
//! cables: it stands down, and its peer takes over. The primary is killed: the survivor takes
//! over.
//!
//! Also its contract: `up` returns with the pair formed; `status --json` names roles, MACs,
//! the address and the client namespace; `exec` returns the node's exit code; `client` runs in
//! the client namespace; a BMC command on a node without one is refused; a second `up` is
//! refused; `down` removes the namespaces.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_pairos-lab");

/// Runs `ci/lab ARGS`: its exit code, stdout and stderr.
fn lab(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().expect("ci/lab runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

fn ok(args: &[&str]) -> String {
    let (code, out, err) = lab(args);
    assert_eq!(code, 0, "ci/lab {args:?}: {out}{err}");
    out
}

fn status() -> Value {
    serde_json::from_str(&ok(&["status", "--json"])).expect("status --json is JSON")
}

fn namespaces() -> String {
    String::from_utf8_lossy(&Command::new("ip").args(["netns", "list"]).output().expect("ip runs").stdout)
        .into_owned()
}

/// Stops the lab pair whatever happens to the test.
struct Down;

impl Drop for Down {
    fn drop(&mut self) {
        lab(&["down"]);
    }
}

/// Waits until `ci/lab status --json` satisfies `ok`, for at most `within`.
fn wait_status(what: &str, within: Duration, ok: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let s = status();
        if ok(&s) {
            eprintln!("lab_cli: {what} after {:?}", start.elapsed());
            return s;
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}: {s}");
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn roles(s: &Value) -> (String, String) {
    let role = |n: &str| s["nodes"][n]["role"].as_str().unwrap_or("?").to_owned();
    (role("a"), role("b"))
}

fn primary_and(s: &Value, primary: &str, other: &str) -> bool {
    let (a, b) = roles(s);
    let (p, o) = if primary == "a" { (a, b) } else { (b, a) };
    p == "primary" && o == other
}

/// The events node `n` reports (`pairos pair status --json`).
fn events(n: &str) -> String {
    let (_, out, _) = lab(&["exec", n, "--", "pairos", "pair", "status", "--json"]);
    out
}

#[test]
fn a_pair_without_bmcs_does_not_promote_on_silence() {
    lab(&["down"]);
    let _down = Down;
    let out = ok(&["up", "--no-bmc"]);
    assert!(out.contains("node a (node-1): running, primary"), "{out}");
    let (code, _, err) = lab(&["up", "--no-bmc"]);
    assert_eq!(code, 1);
    assert!(err.contains("already up"), "{err}");

    let s = status();
    assert_eq!(s["nodes"]["a"]["role"], "primary", "{s}");
    assert_eq!(s["nodes"]["b"]["role"], "secondary", "{s}");
    assert_eq!(s["nodes"]["b"]["bmc"], Value::Null, "{s}");
    let mac_a = s["nodes"]["a"]["macs"]["public"].as_str().expect("a MAC").to_owned();
    assert_eq!(s["address_answered_by"], serde_json::json!([mac_a]), "{s}");
    assert_eq!(s["client_namespace"], "plab-cli-client");

    let (code, out, _) = lab(&["exec", "b", "--", "pairos", "pair", "status"]);
    assert_eq!(code, 0);
    assert!(out.contains("node-1: primary"), "{out}");
    assert!(!out.contains("fence:"), "no fence is configured: {out}");
    assert_eq!(lab(&["exec", "a", "--", "false"]).0, 1, "the node command's exit code");
    ok(&["client", "--", "ping", "-c", "1", "-W", "5", "192.168.50.10"]);

    let (code, _, err) = lab(&["power", "a", "off"]);
    assert_eq!(code, 1);
    assert!(err.contains("no BMC"), "{err}");
    let (code, _, err) = lab(&["sensor", "a", "cpu-temp", "90"]);
    assert_eq!(code, 1);
    assert!(err.contains("no BMC"), "{err}");

    // Scenario 8: the primary dies; with nothing to fence it, b stays secondary and says why.
    ok(&["kill", "a"]);
    let start = Instant::now();
    let why = "the peer is silent on both links and no fence is configured: not promoting";
    loop {
        let (_, out, _) = lab(&["exec", "b", "--", "pairos", "pair", "status"]);
        if out.contains(why) {
            assert!(out.contains("node-2: secondary"), "{out}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "b never said why it waits:\n{out}");
        std::thread::sleep(Duration::from_secs(2));
    }
    // Well past the dead time and any fence delay: still secondary, and nobody answers.
    std::thread::sleep(Duration::from_secs(10));
    let s = status();
    assert_eq!(s["nodes"]["a"]["state"], "off", "{s}");
    assert_eq!(s["nodes"]["b"]["role"], "secondary", "{s}");
    assert_eq!(s["address_answered_by"], serde_json::json!([]), "{s}");

    ok(&["cut", "public", "b"]);
    ok(&["heal"]);
    ok(&["down"]);
    let left = namespaces();
    assert!(!left.contains("plab-cli"), "namespaces left after down: {left}");
    let (code, _, err) = lab(&["status"]);
    assert_eq!(code, 1);
    assert!(err.contains("no lab pair is up"), "{err}");

    // With a witness and no BMC.
    let out = ok(&["up", "--no-bmc", "--witness"]);
    assert!(out.contains("witness 192.168.50.30:7470"), "{out}");
    let within = Duration::from_secs(240);
    wait_status("a holds the witness's lease", within, |s| {
        s["witness"]["kept"]["pairs"]["pair-lab"]["holder"] == "node-1"
    });
    let (_, text, _) = lab(&["exec", "a", "--", "pairos", "pair", "status"]);
    assert!(text.contains("witness 192.168.50.30:7470 (elected): lease held here"), "{text}");

    // a's daemon hangs: the watchdog resets a; b claims, and once a's lease ran out at the
    // witness, it is granted and b takes over. a comes back as the secondary. (A node claims
    // nothing in the first minute after it started, as it fences nobody: b must be past it.)
    std::thread::sleep(Duration::from_secs(60));
    ok(&["hang", "a"]);
    wait_status("b primary through the witness", within, |s| s["nodes"]["b"]["role"] == "primary");
    assert!(events("b").contains("a witness granted its lease"), "{}", events("b"));
    wait_status("a back as the secondary", within, |s| primary_and(s, "b", "secondary"));
    let (_, log, _) = lab(&["exec", "a", "--", "cat", "/state/pairos/events.jsonl"]);
    assert!(!log.is_empty(), "a kept its events across the reset");

    // b loses both cables: it stands down, and a takes over through the witness.
    ok(&["cut", "private", "b"]);
    ok(&["cut", "public", "b"]);
    wait_status("a primary, b stood down", within, |s| primary_and(s, "a", "secondary"));
    assert!(events("a").contains("a witness granted its lease"), "{}", events("a"));
    ok(&["heal"]);
    let s = wait_status("b heard again", within, |s| primary_and(s, "a", "secondary"));
    let mac_a = s["nodes"]["a"]["macs"]["public"].as_str().expect("a MAC").to_owned();
    wait_status("the address answered by a alone", within, |s| {
        s["address_answered_by"] == serde_json::json!([mac_a])
    });

    // a is killed: b takes over through the witness.
    ok(&["kill", "a"]);
    let s = wait_status("b primary after a died", within, |s| s["nodes"]["b"]["role"] == "primary");
    let mac_b = s["nodes"]["b"]["macs"]["public"].as_str().expect("b MAC").to_owned();
    wait_status("the address answered by b", within, |s| {
        s["address_answered_by"] == serde_json::json!([mac_b])
    });
    ok(&["down"]);
    assert!(!namespaces().contains("plab-cli"), "namespaces left after down");
}
