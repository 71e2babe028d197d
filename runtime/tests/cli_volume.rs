//! `pairos volume …` as an operator runs it, with bad input: the real binary, on state and run
//! folders of its own. Every refusal names what is wrong, and the pair's configuration is not
//! touched. (Volumes that are really made and synced are proven in the lab:
//! `ci/tests/lab_volumes.rs`.)

use std::path::Path;

mod common;

use common::{pairos, text};

/// A daemon status file saying this node's role.
fn role(run: &Path, role: &str) {
    common::role(run, "node-2", "node-1", role);
}

#[test]
fn bad_names_sizes_and_a_secondary_are_refused_and_change_nothing() {
    let t = tempfile::tempdir().expect("tempdir");
    let (state, run) = (t.path().join("state"), t.path().join("run"));
    std::fs::create_dir_all(&state).expect("mkdir");
    std::fs::create_dir_all(&run).expect("mkdir");
    let (s, r) = (state.to_str().expect("utf8"), run.to_str().expect("utf8"));
    role(&run, "secondary");
    for (name, size, says) in [
        ("Data", "256M", "expected 1 to 32 of a-z"),
        ("all", "256M", "every resource"),
        ("data", "256 parsecs", "K, M, G or T"),
        ("data", "1M", "at least 16 MiB"),
        ("data", "256M", "made on the primary, and this node (node-2) is secondary: run this on node-1"),
    ] {
        let o = pairos(&["volume", "create", name, size, "--state", s, "--run-dir", r]);
        assert_eq!(o.status.code(), Some(2), "{name} {size}: {}", text(&o));
        assert!(text(&o).contains(says), "{name} {size}: {}", text(&o));
    }
    assert!(!state.join("pair-config.json").exists(), "nothing was written");
    // Without a daemon at all, it says so.
    let o = pairos(&["volume", "create", "data", "256M", "--state", s, "--run-dir", "/nonexistent"]);
    assert!(text(&o).contains("is the pair daemon running?"), "{}", text(&o));

    // A damaged configuration is named, and left as it is.
    std::fs::write(state.join("pair-config.json"), "{\"version\": 1, \"volumes\": [").expect("written");
    let o = pairos(&["volume", "list", "--state", s, "--run-dir", r]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("pair-config.json"), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(state.join("pair-config.json")).expect("kept"),
        "{\"version\": 1, \"volumes\": ["
    );

    // Grow and remove: on the primary only, an existing volume, only larger, and a removal
    // only when the data is said to go.
    role(&run, "primary");
    let mut doc = pairos_mirror::document::PairConfig::default();
    doc.add("data".parse().expect("a name"), 256 << 20, "node-1").expect("added");
    std::fs::remove_file(state.join("pair-config.json")).expect("removed");
    doc.save(&state).expect("saved");
    let before = std::fs::read(state.join("pair-config.json")).expect("saved");
    for (args, says) in [
        (&["grow", "data", "128M"][..], "it can only grow"),
        (&["grow", "logs", "1G"][..], "there is no volume logs"),
        (&["grow", "data", "lots"][..], "K, M, G or T"),
        (&["remove", "data"][..], "say so with --discard-data (nothing was changed)"),
        (&["remove", "logs", "--discard-data"][..], "there is no volume logs"),
    ] {
        let o = pairos(&[&["volume"][..], args, &["--state", s, "--run-dir", r]].concat());
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
    }
    role(&run, "secondary");
    let o = pairos(&["volume", "remove", "data", "--discard-data", "--state", s, "--run-dir", r]);
    assert!(text(&o).contains("removed on the primary"), "{}", text(&o));
    assert_eq!(std::fs::read(state.join("pair-config.json")).expect("kept"), before, "nothing changed");

    // No volumes yet, and no manager: the list says both.
    std::fs::remove_file(state.join("pair-config.json")).expect("removed");
    let o = pairos(&["volume", "list", "--state", s, "--run-dir", r, "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["volumes"], serde_json::json!([]));
    assert!(v["alarms"][0].as_str().is_some_and(|a| a.contains("not running")), "{v}");
}
