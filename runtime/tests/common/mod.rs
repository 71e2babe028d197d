//! What the `pairos volume` and `pairos workload` tests share: the real binary, its output,
//! and a pair daemon's status file that says this node's role.

use std::path::Path;
use std::process::{Command, Output};

pub fn pairos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pairos")).args(args).output().expect("run pairos")
}

pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A daemon status file saying that `node` (whose peer is `peer`) has `role`.
pub fn role(run: &Path, node: &str, peer: &str, role: &str) {
    let status = serde_json::json!({
        "node": node, "peer_name": peer, "role": role, "epoch": null, "promised": 3,
        "incarnation": 1, "health": 1000, "maintenance": false,
        "links": {"private": {"interface": "eth0", "carrier": true, "peer_heard": true},
                  "public": {"interface": "eth1", "carrier": true, "peer_heard": true}},
        "peer": null, "address": null, "conditions": [], "fence": null,
        "refused": {"malformed": 0, "forged": 0, "replayed": 0}, "events": [], "updated": 0
    });
    std::fs::write(run.join("pair.json"), status.to_string()).expect("status written");
}
