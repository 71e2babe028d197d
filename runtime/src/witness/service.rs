//! `pairos witness run`: the witness a customer runs on any third Linux box. It answers the
//! pairs that know its key, one lease per pair ([`pairos_pair::witness::Witness`]), and keeps
//! each pair's last grant in `witness.json` (written and fsynced before it answers a grant
//! that changes the holder or the epoch), so that a restart never hands the lease to the other
//! node early.
//!
//! Requests are believed only with the witness key's tag and newer (incarnation, counter)
//! than any before from that node; what it refuses it counts and says, and it answers nothing
//! to them.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use pairos_pair::witness::{Answer as Rule, Witness};
use pairos_recovery::trust::PairKey;
use serde::{Deserialize, Serialize};

use super::protocol::{Answer, Kind, Request};
use crate::pair::identity::write_atomically;

pub const STATE_FILE: &str = "witness.json";
/// The shortest and longest lease a pair may ask for.
pub const LEASE_RANGE_MS: std::ops::RangeInclusive<u64> = 1_000..=600_000;
/// How many pairs one witness serves at most.
const MAX_PAIRS: usize = 1_000;

/// What is kept of one pair, in `witness.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptPair {
    /// Who holds (or last held) the lease, for which epoch, and whether it still holds it.
    pub holder: Option<String>,
    pub epoch: u64,
    pub held: bool,
    pub lease_ms: u64,
    /// The newest (incarnation, counter) believed from each node.
    pub newest: BTreeMap<String, (u64, u64)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    pub pairs: BTreeMap<String, KeptPair>,
}

impl Kept {
    pub fn load(dir: &Path) -> anyhow::Result<Kept> {
        let path = dir.join(STATE_FILE);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).with_context(|| {
                format!(
                    "{}: expected {{\"pairs\": {{PAIR: {{holder, epoch, held, lease_ms, newest}}}}}}",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Kept::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    fn save(&self, dir: &Path) -> anyhow::Result<()> {
        write_atomically(&dir.join(STATE_FILE), &serde_json::to_vec_pretty(self).expect("serialises"))
    }
}

/// What the witness counts, for its log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub granted: u64,
    pub refused: u64,
    pub released: u64,
    /// Packets not believed: malformed, forged, replayed or out of range.
    pub ignored: u64,
}

/// The witness: every pair's lease, and what it keeps of them.
#[derive(Debug)]
pub struct Service {
    dir: PathBuf,
    kept: Kept,
    rules: BTreeMap<String, Witness>,
    start: Instant,
    pub counts: Counts,
}

impl Service {
    /// Starts from what `dir` kept: each pair's last holder keeps its lease for a whole lease
    /// from now.
    pub fn open(dir: &Path) -> anyhow::Result<Service> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let kept = Kept::load(dir)?;
        let rules = kept
            .pairs
            .iter()
            .map(|(id, p)| {
                let last = p.holder.clone().filter(|_| p.held).map(|h| (h, p.epoch));
                (id.clone(), Witness::restarted(last, 0, p.lease_ms))
            })
            .collect();
        Ok(Service { dir: dir.to_owned(), kept, rules, start: Instant::now(), counts: Counts::default() })
    }

    pub fn kept(&self) -> &Kept {
        &self.kept
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Takes one believed request; returns the answer to send (none for a release or a
    /// request refused as a replay), and what changed, to say.
    pub fn handle(&mut self, r: &Request) -> anyhow::Result<(Option<Answer>, Option<String>)> {
        if !LEASE_RANGE_MS.contains(&r.lease_ms) && r.kind == Kind::Ask
            || (!self.kept.pairs.contains_key(&r.pair_id) && self.kept.pairs.len() >= MAX_PAIRS)
        {
            self.counts.ignored += 1;
            return Ok((None, None));
        }
        let now = self.now();
        let pair = self.kept.pairs.entry(r.pair_id.clone()).or_default();
        let stamp = (r.incarnation, r.counter);
        if pair.newest.get(&r.node).is_some_and(|n| stamp <= *n) {
            self.counts.ignored += 1;
            return Ok((None, None));
        }
        pair.newest.insert(r.node.clone(), stamp);
        let rule = self.rules.entry(r.pair_id.clone()).or_default();
        let before = (pair.holder.clone(), pair.epoch, pair.held);
        let answer = match r.kind {
            Kind::Release => {
                if rule.release(&r.node, r.epoch) {
                    self.counts.released += 1;
                }
                None
            }
            Kind::Ask => Some(rule.ask(now, &r.node, r.epoch, r.lease_ms)),
        };
        if let Some(l) = rule.lease() {
            pair.holder = Some(l.holder.clone());
            pair.epoch = l.epoch;
            pair.held = l.until.is_some();
        }
        if let Some(Rule::Granted { lease_ms, .. }) = answer {
            pair.lease_ms = pair.lease_ms.max(lease_ms);
        }
        let changed = before != (pair.holder.clone(), pair.epoch, pair.held);
        let said = changed.then(|| match (&pair.holder, pair.held) {
            (Some(h), true) => format!("pair {}: {h} holds the lease for epoch {}", r.pair_id, pair.epoch),
            (Some(h), false) => {
                format!("pair {}: {h} gave back the lease for epoch {}", r.pair_id, pair.epoch)
            }
            (None, _) => format!("pair {}: nobody holds the lease", r.pair_id),
        });
        if changed {
            // Kept before the answer leaves: a restart must not forget this grant.
            self.kept.save(&self.dir).context("keeping the witness's grants")?;
        }
        let answer = answer.map(|a| {
            let (granted, epoch, ms, holder) = match a {
                Rule::Granted { epoch, lease_ms } => {
                    self.counts.granted += 1;
                    (true, epoch, lease_ms, r.node.clone())
                }
                Rule::Refused { holder, epoch, remaining_ms } => {
                    self.counts.refused += 1;
                    (false, epoch, remaining_ms, holder)
                }
            };
            Answer {
                pair_id: r.pair_id.clone(),
                node: r.node.clone(),
                incarnation: r.incarnation,
                counter: r.counter,
                granted,
                epoch,
                ms,
                holder,
            }
        });
        Ok((answer, said))
    }
}

/// Serves on `listen` until the process ends, saying every change of holder through `say`.
pub fn serve(listen: SocketAddr, key: &PairKey, dir: &Path, say: &mut dyn FnMut(&str)) -> anyhow::Result<()> {
    let mut service = Service::open(dir)?;
    let socket = UdpSocket::bind(listen).with_context(|| format!("listening on {listen}"))?;
    say(&format!(
        "witness on {listen}, keeping its grants in {} ({} pair(s) kept)",
        dir.join(STATE_FILE).display(),
        service.kept().pairs.len()
    ));
    let mut buf = [0u8; 1024];
    loop {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) => {
                say(&format!("receiving: {e}"));
                std::thread::sleep(std::time::Duration::from_millis(100));
                continue;
            }
        };
        let request = match Request::decode(&buf[..n], key) {
            Ok(r) => r,
            Err(why) => {
                service.counts.ignored += 1;
                say(&format!(
                    "ignored a packet from {from}: {why} ({} ignored so far)",
                    service.counts.ignored
                ));
                continue;
            }
        };
        let (answer, said) = service.handle(&request)?;
        if let Some(s) = said {
            say(&s);
        }
        if let Some(a) = answer {
            if let Err(e) = socket.send_to(&a.encode(key), from) {
                say(&format!("answering {from}: {e}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(node: &str, counter: u64, epoch: u64) -> Request {
        Request {
            pair_id: "p1".into(),
            node: node.into(),
            incarnation: 1,
            counter,
            kind: Kind::Ask,
            epoch,
            lease_ms: 60_000,
        }
    }

    #[test]
    fn a_grant_is_kept_before_it_is_answered_and_survives_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = Service::open(dir.path()).expect("opens");
        let (a, said) = w.handle(&ask("node-1", 1, 3)).expect("handled");
        assert!(a.expect("an answer").granted);
        assert_eq!(said.as_deref(), Some("pair p1: node-1 holds the lease for epoch 3"));
        let kept = Kept::load(dir.path()).expect("kept");
        assert_eq!(kept.pairs["p1"].holder.as_deref(), Some("node-1"));
        // node-2 is refused, by the witness and by the same witness started again.
        let (a, _) = w.handle(&ask("node-2", 1, 4)).expect("handled");
        let a = a.expect("an answer");
        assert!(!a.granted && a.holder == "node-1" && a.epoch == 3, "{a:?}");
        let mut again = Service::open(dir.path()).expect("opens");
        let (a, _) = again.handle(&ask("node-2", 2, 4)).expect("handled");
        assert!(!a.expect("an answer").granted, "a restart does not free the lease");
    }

    #[test]
    fn replays_and_odd_leases_get_no_answer_and_change_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = Service::open(dir.path()).expect("opens");
        w.handle(&ask("node-1", 5, 1)).expect("handled");
        assert_eq!(w.handle(&ask("node-1", 5, 1)).expect("handled"), (None, None), "a replay");
        assert_eq!(w.handle(&ask("node-1", 4, 1)).expect("handled"), (None, None), "an older one");
        let huge = Request { lease_ms: 86_400_000, counter: 9, ..ask("node-2", 9, 2) };
        assert_eq!(w.handle(&huge).expect("handled"), (None, None));
        assert_eq!(w.counts.ignored, 3);
        // A release by the holder frees it for the other node.
        let release = Request { kind: Kind::Release, ..ask("node-1", 6, 1) };
        let (_, said) = w.handle(&release).expect("handled");
        assert_eq!(said.as_deref(), Some("pair p1: node-1 gave back the lease for epoch 1"));
        assert!(w.handle(&ask("node-2", 10, 2)).expect("handled").0.expect("an answer").granted);
    }
}
