//! What is new to tell: from one look at the node's state to the next, the alarms that appeared
//! (raised) and ended (cleared), and this node's failovers and alarm events. What was told is
//! kept in the run folder (`console-alarms.json`), so a restarted console repeats nothing.
//!
//! Conditions are seen by both nodes, so only one speaks of them: the primary, or a node whose
//! peer is silent (nobody else can). Events are each node's own: its failover is told even
//! before its status says primary (the event is written first).

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Notice;
use crate::console::snapshot::{cause, Snapshot};
use crate::pair::daemon::persisted::Event;

pub const FILE: &str = "console-alarms.json";
/// How many handled events are remembered (more than a snapshot holds).
const HANDLED_KEPT: usize = 400;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Told {
    /// The alarms raised and not yet cleared: id to (severity, text).
    pub raised: BTreeMap<String, (String, String)>,
    /// The events already looked at, by digest.
    pub handled: VecDeque<String>,
}

fn event_digest(e: &Event) -> String {
    let d = Sha256::digest(format!("{}\n{}\n{}\n{}\n{}", e.time, e.node, e.what, e.why, e.epoch).as_bytes());
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether this node speaks for the pair's conditions.
pub fn speaks(s: &Snapshot) -> bool {
    match &s.pair {
        Some(p) => p.role == "primary" || !p.peer.as_ref().is_some_and(|x| x.live),
        None => true,
    }
}

impl Told {
    /// The first look after the console started with nothing kept: the events so far are
    /// history, not news.
    pub fn starting(s: &Snapshot) -> Told {
        Told { raised: BTreeMap::new(), handled: s.events.iter().map(event_digest).collect() }
    }

    /// The notices this look brings, in order; `self` remembers them.
    pub fn next(&mut self, s: &Snapshot, pair: &str, now: u64) -> Vec<Notice> {
        let mut out = Vec::new();
        let node = s.served_by.clone();
        let notice = |id: String, severity: &str, text: String| Notice {
            id,
            severity: severity.into(),
            pair: pair.into(),
            node: node.clone(),
            text,
            time: now,
        };
        let speaking = speaks(s);
        for e in &s.events {
            let d = event_digest(e);
            if self.handled.contains(&d) {
                continue;
            }
            self.handled.push_back(d.clone());
            if e.node != s.served_by {
                continue;
            }
            if e.what == "primary" && cause(&e.why) == "failover" {
                out.push(notice(
                    d,
                    "critical",
                    format!("{} took over as primary (epoch {}): {}", e.node, e.epoch, e.why),
                ));
            } else if e.what == "alarm" && speaking {
                out.push(notice(d, "major", e.why.clone()));
            }
        }
        let excess = self.handled.len().saturating_sub(HANDLED_KEPT);
        self.handled.drain(..excess);
        for a in &s.alarms {
            if speaking && !self.raised.contains_key(&a.id) {
                self.raised.insert(a.id.clone(), (a.severity.clone(), a.text.clone()));
                out.push(notice(a.id.clone(), &a.severity, a.text.clone()));
            }
        }
        let gone: Vec<String> =
            self.raised.keys().filter(|id| !s.alarms.iter().any(|a| &a.id == *id)).cloned().collect();
        for id in gone {
            if let Some((_, text)) = self.raised.remove(&id) {
                out.push(notice(id, "clear", format!("cleared: {text}")));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::snapshot::Alarm;
    use crate::pair::daemon::status::{PairStatus, PeerView};

    fn snap(role: &str, peer_live: bool, alarms: &[&str], events: Vec<Event>) -> Snapshot {
        Snapshot {
            served_by: "node-2".into(),
            pair: Some(PairStatus {
                node: "node-2".into(),
                role: role.into(),
                peer: Some(PeerView { live: peer_live, ..PeerView::default() }),
                ..PairStatus::default()
            }),
            alarms: alarms
                .iter()
                .map(|t| Alarm {
                    id: crate::console::snapshot::alarm_id("pair", "node-2", t),
                    severity: "critical".into(),
                    source: "pair".into(),
                    node: "node-2".into(),
                    text: (*t).into(),
                    acknowledged: false,
                })
                .collect(),
            events,
            ..Snapshot::default()
        }
    }

    fn event(time: u64, what: &str, why: &str) -> Event {
        Event { time, node: "node-2".into(), what: what.into(), why: why.into(), epoch: 2 }
    }

    #[test]
    fn a_failover_is_told_once_and_an_alarm_is_raised_once_and_cleared() {
        let old = event(1, "primary", "the peer was silent and its fence confirmed it off");
        let mut told = Told::starting(&snap("secondary", true, &[], vec![old.clone()]));
        assert!(
            told.next(&snap("secondary", true, &["x"], vec![old.clone()]), "p", 10).is_empty(),
            "history, and the secondary does not speak while the peer lives"
        );
        // The failover event comes before the status says primary; the peer is silent.
        let fo = event(11, "primary", "the peer was silent and its fence confirmed it off");
        let s =
            snap("secondary", false, &["the peer is silent on both links"], vec![old.clone(), fo.clone()]);
        let n = told.next(&s, "p", 11);
        assert_eq!(n.len(), 2, "{n:?}");
        assert!(n[0].text.starts_with("node-2 took over as primary (epoch 2)"), "{n:?}");
        assert_eq!(n[1].text, "the peer is silent on both links");
        let s = snap("primary", false, &["the peer is silent on both links"], vec![old.clone(), fo.clone()]);
        assert!(told.next(&s, "p", 12).is_empty(), "nothing twice");
        let n = told.next(&snap("primary", true, &[], vec![old, fo]), "p", 13);
        assert_eq!(n.len(), 1);
        assert_eq!(
            (n[0].severity.as_str(), n[0].text.as_str()),
            ("clear", "cleared: the peer is silent on both links")
        );
    }
}
