//! `pairos pair …` as an operator runs it on a node: the real binary, on a state folder of its
//! own. What these write is what the running node reads on its next decision.

use std::process::{Command, Output};

fn pairos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pairos")).args(args).output().expect("run pairos")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn the_operator_approves_forgets_and_sets_the_enrolment_mode() {
    let t = tempfile::tempdir().expect("tempdir");
    let state = t.path().join("state");
    std::fs::create_dir(&state).expect("mkdir");
    let s = state.to_str().expect("utf8");
    let approved = t.path().join("approved.json");
    let a = approved.to_str().expect("utf8");

    let o = pairos(&["pair", "enrolment", "approve", "--state", s]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(state.join("enrolment.json")).expect("mode"), "\"approve\"");

    let o = pairos(&["pair", "approve", "52:54:00:AB:CD:EF", "--state", s, "--approved", a]);
    assert!(o.status.success(), "{}", text(&o));
    let list: Vec<String> = serde_json::from_slice(&std::fs::read(&approved).expect("read")).expect("json");
    assert_eq!(list, ["52:54:00:ab:cd:ef"]);

    std::fs::write(state.join("peers.json"), r#"["52:54:00:12:04:00"]"#).expect("peers");
    let o = pairos(&["pair", "forget-peer", "52:54:00:12:04:00", "--state", s]);
    assert!(o.status.success() && text(&o).contains("forgot 52:54:00:12:04:00"), "{}", text(&o));
    let peers: Vec<String> =
        serde_json::from_slice(&std::fs::read(state.join("peers.json")).expect("read")).expect("json");
    assert!(peers.is_empty());
    let o = pairos(&["pair", "forget-peer", "52:54:00:12:04:00", "--state", s]);
    assert!(o.status.success() && text(&o).contains("nothing changed"), "{}", text(&o));

    // Bad input is named and changes nothing.
    let o = pairos(&["pair", "approve", "not-a-mac", "--state", s, "--approved", a]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("expected a MAC address"), "{}", text(&o));
    let list: Vec<String> = serde_json::from_slice(&std::fs::read(&approved).expect("read")).expect("json");
    assert_eq!(list.len(), 1);
    let o = pairos(&["pair", "enrolment", "sometimes", "--state", s]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = pairos(&["pair", "forget-peer", "52:54:00:12:04:00", "--state", "/nonexistent/state"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no such state folder"), "{}", text(&o));
}

/// Without a running daemon, the operator's pair commands say so and fail; a bad daemon
/// configuration names the file and the field, and nothing starts.
#[test]
fn pair_commands_without_a_daemon_and_with_a_bad_configuration_say_why() {
    let t = tempfile::tempdir().expect("tempdir");
    let run = t.path().to_str().expect("utf8");
    let o = pairos(&["pair", "status", "--run-dir", run]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("is the pair daemon running?"), "{}", text(&o));
    let o = pairos(&["pair", "switchover", "--run-dir", run]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("pair.sock"), "{}", text(&o));

    let config = t.path().join("pair.toml");
    std::fs::write(&config, "node = \"node-1\"\npeer = \"node-1\"\n").expect("write");
    let o = pairos(&["pair", "run", "--config", config.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("pair.toml") && text(&o).contains("missing field"), "{}", text(&o));
}
