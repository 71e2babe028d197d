//! `/metrics`: the node's state in the Prometheus text format (version 0.0.4), one `# HELP`
//! and `# TYPE` per family, labels escaped as the format asks.

use std::fmt::Write;

use super::snapshot::Snapshot;

/// Writes families one at a time.
struct Out {
    text: String,
}

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
        let labels = if labels.is_empty() { String::new() } else { format!("{{{}}}", labels.join(",")) };
        let _ = writeln!(self.text, "{name}{labels} {value}");
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.family(name, kind, help);
        self.sample(name, labels, value);
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// The states a volume's disk can be in, as DRBD names them.
const DISK_STATES: [&str; 8] =
    ["UpToDate", "Inconsistent", "Outdated", "Consistent", "DUnknown", "Diskless", "Attaching", "Failed"];
/// The states of a workload.
const WORKLOAD_STATES: [&str; 5] = ["starting", "healthy", "unhealthy", "stopped", "failed"];

pub fn render(s: &Snapshot) -> String {
    let mut o = Out { text: String::new() };
    let node = s.served_by.as_str();
    let n = [("node", node)];
    if let Some(p) = &s.pair {
        o.one(
            "pairos_primary",
            "gauge",
            "1 if this node acts as the pair's primary.",
            &n,
            flag(p.role == "primary"),
        );
        o.one(
            "pairos_epoch",
            "gauge",
            "The epoch this node promised (it acts in it when primary).",
            &n,
            p.promised as f64,
        );
        o.one(
            "pairos_health_score",
            "gauge",
            "This node's health score (ports, sensors).",
            &n,
            f64::from(p.health),
        );
        o.one("pairos_maintenance", "gauge", "1 while maintenance mode is on.", &n, flag(p.maintenance));
        o.one(
            "pairos_peer_live",
            "gauge",
            "1 while the peer's heartbeats arrive on some link.",
            &n,
            flag(p.peer.as_ref().is_some_and(|x| x.live)),
        );
        o.one(
            "pairos_peer_health_score",
            "gauge",
            "The peer's health score as it last said it.",
            &n,
            p.peer.as_ref().map_or(0.0, |x| f64::from(x.health)),
        );
        o.family("pairos_link_carrier", "gauge", "1 while the link's port has carrier.");
        o.sample(
            "pairos_link_carrier",
            &[("node", node), ("link", "private")],
            flag(p.links.private.carrier),
        );
        o.sample("pairos_link_carrier", &[("node", node), ("link", "public")], flag(p.links.public.carrier));
        o.family("pairos_link_peer_heard", "gauge", "1 while the peer's heartbeats arrive on the link.");
        o.sample(
            "pairos_link_peer_heard",
            &[("node", node), ("link", "private")],
            flag(p.links.private.peer_heard),
        );
        o.sample(
            "pairos_link_peer_heard",
            &[("node", node), ("link", "public")],
            flag(p.links.public.peer_heard),
        );
        o.one(
            "pairos_address_held",
            "gauge",
            "1 while this node holds the pair's address.",
            &n,
            flag(p.address.as_ref().is_some_and(|a| a.held)),
        );
        o.family(
            "pairos_refused_packets_total",
            "counter",
            "Heartbeats not believed since the daemon started.",
        );
        for (kind, count) in [
            ("forged", p.refused.forged),
            ("replayed", p.refused.replayed),
            ("malformed", p.refused.malformed),
        ] {
            o.sample("pairos_refused_packets_total", &[("node", node), ("kind", kind)], count as f64);
        }
    }
    o.family("pairos_alarms", "gauge", "Alarms now, by severity.");
    for sev in ["critical", "major", "minor"] {
        let count = s.alarms.iter().filter(|a| a.severity == sev).count();
        o.sample("pairos_alarms", &[("node", node), ("severity", sev)], count as f64);
    }
    o.family("pairos_role_changes_total", "counter", "Times this node became primary, by cause.");
    let r = s.role_changes;
    for (cause, count) in [("failover", r.failover), ("switchover", r.switchover), ("other", r.other)] {
        o.sample("pairos_role_changes_total", &[("node", node), ("cause", cause)], count as f64);
    }
    if let Some(w) = &s.workloads {
        if let Some((_, ms)) = w.last_change.last() {
            o.one(
                "pairos_last_role_change_seconds",
                "gauge",
                "How long this node's last role change took, from the decision to its workloads ready.",
                &n,
                *ms as f64 / 1000.0,
            );
        }
        o.family("pairos_workload_state", "gauge", "1 for the state each workload is in.");
        for wl in &w.workloads {
            for state in WORKLOAD_STATES {
                o.sample(
                    "pairos_workload_state",
                    &[("node", node), ("workload", &wl.name), ("state", state)],
                    flag(wl.state == state),
                );
            }
        }
        o.family("pairos_workload_restarts_left", "gauge", "Restarts a workload has left on this node.");
        for wl in &w.workloads {
            o.sample(
                "pairos_workload_restarts_left",
                &[("node", node), ("workload", &wl.name)],
                f64::from(wl.restarts_left),
            );
        }
    }
    if let Some(v) = &s.volumes {
        o.family("pairos_volume_disk_state", "gauge", "1 for the disk state of each side of each volume.");
        for vol in &v.volumes {
            for (side, disk) in [("local", &vol.disk), ("peer", &vol.peer_disk)] {
                for state in DISK_STATES {
                    o.sample(
                        "pairos_volume_disk_state",
                        &[("node", node), ("volume", &vol.name), ("side", side), ("state", state)],
                        flag(disk == state),
                    );
                }
            }
        }
        o.family("pairos_volume_connected", "gauge", "1 while the volume's replication link is connected.");
        for vol in &v.volumes {
            o.sample(
                "pairos_volume_connected",
                &[("node", node), ("volume", &vol.name)],
                flag(vol.connection == "Connected"),
            );
        }
        o.family("pairos_volume_size_bytes", "gauge", "The volume's size.");
        for vol in &v.volumes {
            o.sample("pairos_volume_size_bytes", &[("node", node), ("volume", &vol.name)], vol.size as f64);
        }
        o.family("pairos_volume_out_of_sync_bytes", "gauge", "Bytes that differ from the peer's side.");
        for vol in &v.volumes {
            o.sample(
                "pairos_volume_out_of_sync_bytes",
                &[("node", node), ("volume", &vol.name)],
                vol.out_of_sync as f64,
            );
        }
        o.family(
            "pairos_volume_sync_rate_bytes_per_second",
            "gauge",
            "A running resync's rate (0 when none runs).",
        );
        for vol in &v.volumes {
            o.sample(
                "pairos_volume_sync_rate_bytes_per_second",
                &[("node", node), ("volume", &vol.name)],
                vol.rate.unwrap_or(0) as f64,
            );
        }
        if let Some(h) = v.last_heal {
            o.one(
                "pairos_last_heal_seconds",
                "gauge",
                "How long the last heal took to bring every volume up to date on both nodes.",
                &n,
                h.seconds as f64,
            );
        }
    }
    o.text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pair::daemon::status::PairStatus;

    #[test]
    fn labels_are_escaped_and_families_are_declared_once() {
        let s = Snapshot {
            served_by: "node-\"1\"".into(),
            pair: Some(PairStatus { role: "primary".into(), promised: 7, ..PairStatus::default() }),
            ..Snapshot::default()
        };
        let text = render(&s);
        assert!(text.contains("pairos_primary{node=\"node-\\\"1\\\"\"} 1\n"), "{text}");
        assert!(text.contains("pairos_epoch{node=\"node-\\\"1\\\"\"} 7\n"), "{text}");
        let types = text.lines().filter(|l| l.starts_with("# TYPE pairos_link_carrier ")).count();
        assert_eq!(types, 1);
    }
}
