//! `pairos workload …` as an operator runs it: the real binary, on state and run folders of
//! its own. A definition with mistakes is refused whole, every mistake named, and the pair's
//! configuration is not touched; a good one makes a new version, the peer's to adopt.

use std::path::Path;

mod common;

use common::{pairos, text};

/// A daemon status file saying this node's role.
fn role(run: &Path, role: &str) {
    common::role(run, "node-1", "node-2", role);
}

#[test]
fn a_definition_is_checked_whole_before_the_pair_takes_it() {
    let t = tempfile::tempdir().expect("tempdir");
    let (state, run) = (t.path().join("state"), t.path().join("run"));
    std::fs::create_dir_all(&state).expect("mkdir");
    std::fs::create_dir_all(&run).expect("mkdir");
    let (s, r) = (state.to_str().expect("utf8"), run.to_str().expect("utf8"));
    let mut doc = pairos_mirror::document::PairConfig::default();
    doc.add("db".parse().expect("a name"), 256 << 20, "node-1").expect("added");
    doc.save(&state).expect("saved");
    let before = std::fs::read(state.join("pair-config.json")).expect("saved");

    // The example parses; with a program that is not there, that is named.
    let example = pairos(&["workload", "example"]);
    assert!(example.status.success(), "{}", text(&example));
    let file = t.path().join("pg.toml");
    let example = String::from_utf8_lossy(&example.stdout).replace("/usr/lib/postgresql/15/bin", "/opt/none");
    std::fs::write(&file, example).expect("written");
    let f = file.to_str().expect("utf8");
    role(&run, "primary");
    let o = pairos(&["workload", "add", f, "--state", s, "--run-dir", r]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    for says in ["is refused (nothing was changed)", "/opt/none/postgres\": no such program"] {
        assert!(text(&o).contains(says), "{says:?}: {}", text(&o));
    }

    let bad = [
        ("name = \"web\"\ncommand = [\"/bin/sh\"]\nhealth = { tcp = 80 }\nreplicas = 2\n", "unknown field `replicas`"),
        ("name = \"web\"\ncommand = [\"/bin/sh\"]\n", "missing field `health`"),
        (
            "name = \"web\"\ncommand = [\"/bin/sh\"]\nuser = \"nobody-here\"\nhealth = { tcp = 80 }\nvolumes = [{ volume = \"logs\", mount = \"/var/www\" }]\n",
            "user \"nobody-here\": no such user",
        ),
        (
            "name = \"web\"\ncommand = [\"/bin/sh\"]\nhealth = { tcp = 80 }\nvolumes = [{ volume = \"logs\", mount = \"/srv/www\" }]\n",
            "\"logs\": the pair has no such volume",
        ),
    ];
    for (definition, says) in bad {
        std::fs::write(&file, definition).expect("written");
        let o = pairos(&["workload", "add", f, "--state", s, "--run-dir", r]);
        assert_eq!(o.status.code(), Some(2), "{definition}: {}", text(&o));
        assert!(text(&o).contains(says) && text(&o).contains("pg.toml"), "{says:?}: {}", text(&o));
    }
    assert_eq!(std::fs::read(state.join("pair-config.json")).expect("kept"), before, "nothing changed");

    // On a secondary, even a good definition is not taken.
    let good = "name = \"web\"\ncommand = [\"/bin/sh\", \"-c\", \"sleep 1000\"]\naddress = true\n\
                health = { tcp = 80 }\nvolumes = [{ volume = \"db\", mount = \"/srv/www\" }]\n";
    std::fs::write(&file, good).expect("written");
    role(&run, "secondary");
    let o = pairos(&["workload", "add", f, "--state", s, "--run-dir", r]);
    assert!(text(&o).contains("run this on node-2"), "{}", text(&o));
    assert_eq!(std::fs::read(state.join("pair-config.json")).expect("kept"), before, "nothing changed");

    // On the primary it is added as a new version, listed, not added twice, and removed.
    role(&run, "primary");
    let o = pairos(&["workload", "add", f, "--json", "--state", s, "--run-dir", r]);
    assert!(o.status.success(), "{}", text(&o));
    let said: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!((said["name"].as_str(), said["version"].as_u64()), (Some("web"), Some(2)));
    let o = pairos(&["workload", "list", "--json", "--state", s, "--run-dir", r]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(list["workloads"][0]["volumes"][0]["mount"], "/srv/www", "{list}");
    let o = pairos(&["workload", "list", "--state", s, "--run-dir", r]);
    assert!(
        text(&o).contains("web (order 0): /bin/sh -c sleep 1000 as root; volumes: db on /srv/www"),
        "{}",
        text(&o)
    );
    let o = pairos(&["workload", "add", f, "--state", s, "--run-dir", r]);
    assert!(text(&o).contains("exists already (--replace to change it)"), "{}", text(&o));
    let o = pairos(&["volume", "remove", "db", "--discard-data", "--state", s, "--run-dir", r]);
    assert!(text(&o).contains("mounted by workload web"), "{}", text(&o));
    // Its log, as the node keeps it (the last lines, across rotated files).
    let o = pairos(&["workload", "logs", "web", "--state", s]);
    assert!(o.status.success() && text(&o).contains("has printed nothing on this node"), "{}", text(&o));
    let logs = state.join("workload-logs");
    std::fs::create_dir_all(&logs).expect("mkdir");
    std::fs::write(logs.join("web.log.1"), "one\ntwo\n").expect("written");
    std::fs::write(logs.join("web.log"), "three\n").expect("written");
    let o = pairos(&["workload", "logs", "web", "-n", "2", "--state", s]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "two\nthree\n", "{}", text(&o));
    let o = pairos(&["workload", "logs", "nothing", "--state", s]);
    assert!(text(&o).contains("there is no workload nothing"), "{}", text(&o));
    // A restart names what it cannot restart, and without a pair daemon nothing answers.
    let o = pairos(&["workload", "restart", "nothing", "--state", s, "--run-dir", r]);
    assert!(!o.status.success() && text(&o).contains("there is no workload nothing"), "{}", text(&o));
    let o = pairos(&["workload", "restart", "web", "--state", s, "--run-dir", r]);
    assert!(!o.status.success() && text(&o).contains("is the pair daemon running?"), "{}", text(&o));
    let o = pairos(&["workload", "remove", "web", "--state", s, "--run-dir", r]);
    assert!(o.status.success() && text(&o).contains("version 3"), "{}", text(&o));
}
