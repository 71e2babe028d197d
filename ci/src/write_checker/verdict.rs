//! What a history proves: every acknowledged row is in the table once, with our value, and the
//! table holds no row the checker never sent. Rows sent but never answered may be there or not.
//! Pure: it reads events only, so a history can be checked again anywhere.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::history::Event;

/// A pause in acknowledgements longer than the threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// The last acknowledgement before the pause (ms since the Unix epoch).
    pub from_ms: u64,
    /// The first acknowledgement after it.
    pub to_ms: u64,
    pub length_ms: u64,
}

/// The checker's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub sent: usize,
    pub acknowledged: usize,
    /// Refused by the server: known not committed.
    pub refused: usize,
    /// Sent and never answered; of those, how many are in the table.
    pub in_doubt: usize,
    pub in_doubt_found: usize,
    /// Acknowledged after the read-back began (a load still writing beside the check): not
    /// judged by this read-back.
    pub acknowledged_later: usize,
    /// Acknowledged ids missing from the table (must be empty).
    pub lost: Vec<u64>,
    /// Ids found more than once (must be empty).
    pub duplicated: Vec<u64>,
    /// Ids in the table the checker never sent, or refused (must be empty).
    pub unknown: Vec<u64>,
    /// Ids whose value is not the one written (must be empty).
    pub wrong_values: Vec<u64>,
    /// Pauses in acknowledgements longer than the threshold, in order.
    pub gaps: Vec<Gap>,
    /// The longest pause between two acknowledgements.
    pub longest_gap_ms: u64,
    /// Whether the history holds a read-back (without one, nothing can be judged).
    pub read_back: bool,
}

impl Verdict {
    /// Whether the history proves that no acknowledged write was lost, duplicated or changed.
    pub fn ok(&self) -> bool {
        self.read_back
            && self.lost.is_empty()
            && self.duplicated.is_empty()
            && self.unknown.is_empty()
            && self.wrong_values.is_empty()
    }

    /// One line per finding, for people.
    pub fn summary(&self) -> String {
        let list = |ids: &[u64]| {
            let shown: Vec<String> = ids.iter().take(10).map(u64::to_string).collect();
            let more = if ids.len() > 10 { format!(" and {} more", ids.len() - 10) } else { String::new() };
            format!("{}{more}", shown.join(", "))
        };
        let mut out = vec![format!(
            "sent {}, acknowledged {}, refused {}, in doubt {} ({} of them committed)",
            self.sent, self.acknowledged, self.refused, self.in_doubt, self.in_doubt_found
        )];
        if self.acknowledged_later > 0 {
            out.push(format!(
                "acknowledged after the read-back began (judged by a later one): {}",
                self.acknowledged_later
            ));
        }
        if !self.read_back {
            out.push("no read-back in the history: run `check` against the database".into());
        }
        for (what, ids) in [
            ("lost (acknowledged, not in the table)", &self.lost),
            ("duplicated", &self.duplicated),
            ("unknown (in the table, never sent)", &self.unknown),
            ("wrong values", &self.wrong_values),
        ] {
            out.push(if ids.is_empty() {
                format!("{what}: 0")
            } else {
                format!("{what}: {}: {}", ids.len(), list(ids))
            });
        }
        out.push(format!("longest pause between acknowledgements: {} ms", self.longest_gap_ms));
        for g in &self.gaps {
            out.push(format!(
                "pause of {} ms from {} to {} (ms since the epoch)",
                g.length_ms, g.from_ms, g.to_ms
            ));
        }
        out.push(if self.ok() {
            "verdict: no acknowledged write lost".into()
        } else {
            "verdict: FAILED".into()
        });
        out.join("\n")
    }
}

/// Judges a history; gaps longer than `gap_threshold_ms` are listed. The last read-back counts.
pub fn judge(events: &[Event], gap_threshold_ms: u64) -> Verdict {
    let mut sent = BTreeSet::new();
    let mut acked = BTreeMap::new();
    let mut refused = BTreeSet::new();
    let mut unanswered = BTreeSet::new();
    let mut ack_times = Vec::new();
    let mut read_back: Option<(&[u64], &[u64], u64)> = None;
    for e in events {
        match e {
            Event::Sent { id, .. } => {
                sent.insert(*id);
            }
            Event::Acked { id, at_ms } => {
                acked.insert(*id, *at_ms);
                ack_times.push(*at_ms);
            }
            Event::Refused { id, .. } => {
                refused.insert(*id);
            }
            Event::Unanswered { id, .. } => {
                unanswered.insert(*id);
            }
            Event::ReadBack { at_ms, began_ms, ids, wrong_values } => {
                read_back = Some((ids, wrong_values, began_ms.unwrap_or(*at_ms)))
            }
            Event::Started { .. } | Event::Unreachable { .. } => {}
        }
    }
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for id in read_back.map(|r| r.0).unwrap_or_default() {
        *counts.entry(*id).or_default() += 1;
    }
    let found = |id: &u64| counts.contains_key(id);
    // A row acknowledged after the read-back's query began may or may not be in what it saw.
    let began = read_back.map_or(u64::MAX, |r| r.2);
    let judged = || acked.iter().filter(|(_, at)| **at < began).map(|(id, _)| *id);
    let lost = if read_back.is_some() { judged().filter(|id| !found(id)).collect() } else { vec![] };
    let duplicated = counts.iter().filter(|(_, n)| **n > 1).map(|(id, _)| *id).collect();
    let unknown = counts.keys().copied().filter(|id| !sent.contains(id) || refused.contains(id)).collect();
    ack_times.sort_unstable();
    let gaps: Vec<Gap> =
        ack_times.windows(2).map(|w| Gap { from_ms: w[0], to_ms: w[1], length_ms: w[1] - w[0] }).collect();
    Verdict {
        sent: sent.len(),
        acknowledged: acked.len(),
        acknowledged_later: acked.values().filter(|at| **at >= began).count(),
        refused: refused.len(),
        in_doubt: unanswered.len(),
        in_doubt_found: unanswered.iter().filter(|id| found(id)).count(),
        lost,
        duplicated,
        unknown,
        wrong_values: read_back.map(|r| r.1.to_vec()).unwrap_or_default(),
        longest_gap_ms: gaps.iter().map(|g| g.length_ms).max().unwrap_or(0),
        gaps: gaps.into_iter().filter(|g| g.length_ms > gap_threshold_ms).collect(),
        read_back: read_back.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(acked: &[u64], unanswered: &[u64], refused: &[u64]) -> Vec<Event> {
        let mut events = vec![Event::Started { at_ms: 0, target: "t".into(), rate: 10 }];
        for id in acked.iter().chain(unanswered).chain(refused) {
            events.push(Event::Sent { at_ms: id * 100, id: *id });
        }
        for id in acked {
            events.push(Event::Acked { at_ms: id * 100 + 5, id: *id });
        }
        for id in unanswered {
            events.push(Event::Unanswered { at_ms: id * 100 + 5, id: *id, error: "closed".into() });
        }
        for id in refused {
            events.push(Event::Refused { at_ms: id * 100 + 5, id: *id, error: "read-only".into() });
        }
        events
    }

    fn read_back(mut events: Vec<Event>, ids: &[u64], wrong: &[u64]) -> Vec<Event> {
        events.push(Event::ReadBack {
            at_ms: 99_999,
            began_ms: None,
            ids: ids.to_vec(),
            wrong_values: wrong.to_vec(),
        });
        events
    }

    #[test]
    fn a_clean_run_passes_and_in_doubt_rows_may_go_either_way() {
        let v = judge(&read_back(run(&[1, 2, 3, 7], &[4, 5], &[6]), &[1, 2, 3, 4, 7], &[]), 250);
        assert!(v.ok(), "{}", v.summary());
        assert_eq!((v.sent, v.acknowledged, v.refused, v.in_doubt, v.in_doubt_found), (7, 4, 1, 2, 1));
        // Acks at 105, 205, 305, 705: one pause of 400 ms over the threshold.
        assert_eq!(v.gaps, vec![Gap { from_ms: 305, to_ms: 705, length_ms: 400 }]);
        assert_eq!(v.longest_gap_ms, 400);
        assert!(v.summary().contains("verdict: no acknowledged write lost"));
    }

    #[test]
    fn lost_duplicated_unknown_and_changed_rows_fail_it() {
        let events = run(&[1, 2, 3], &[], &[4]);
        let lost = judge(&read_back(events.clone(), &[1, 3], &[]), 1000);
        assert_eq!(lost.lost, vec![2]);
        assert!(!lost.ok() && lost.summary().contains("lost (acknowledged, not in the table): 1: 2"));
        let dup = judge(&read_back(events.clone(), &[1, 2, 2, 3], &[]), 1000);
        assert_eq!((dup.duplicated.clone(), dup.ok()), (vec![2], false));
        // 9 was never sent; 4 was refused, so it must not be there either.
        let unknown = judge(&read_back(events.clone(), &[1, 2, 3, 4, 9], &[]), 1000);
        assert_eq!((unknown.unknown.clone(), unknown.ok()), (vec![4, 9], false));
        let wrong = judge(&read_back(events.clone(), &[1, 2, 3], &[3]), 1000);
        assert!(!wrong.ok());
        let unread = judge(&events, 1000);
        assert!(!unread.ok() && unread.summary().contains("no read-back"));
    }

    #[test]
    fn rows_acknowledged_after_the_read_back_began_wait_for_a_later_one() {
        // A load still writing beside the check: 3 was acknowledged at 305, after the query
        // began at 250, and is not in what it saw. Not lost; a later read-back must find it.
        let mut events = run(&[1, 2, 3], &[], &[]);
        let beside =
            |began_ms| Event::ReadBack { at_ms: 400, began_ms, ids: vec![1, 2], wrong_values: vec![] };
        events.push(beside(Some(250)));
        let v = judge(&events, 1000);
        assert!(v.ok() && v.lost.is_empty() && v.acknowledged_later == 1, "{}", v.summary());
        events.push(beside(None));
        assert_eq!(judge(&events, 1000).lost, vec![3], "without a start, everything acknowledged counts");
    }
}
