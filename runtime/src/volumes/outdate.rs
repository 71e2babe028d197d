//! Outdating the peer's side of a volume over the public network, for DRBD's fence-peer call:
//! when the replication link breaks, the primary's writes are frozen until the peer's side is
//! known to be outdated (or the peer is known to be off). The public network is the other path
//! to the peer.
//!
//! UDP port 7471 on the public port, one request and one answer, each with an HMAC under the
//! pair key. A request: `POQ1`, the pair id, the sender's name, its incarnation and a counter,
//! the resource. An answer: `POA1`, the same pair id, the answering node's name, the
//! request's incarnation and counter, and the outcome (1 outdated, 2 refused because the
//! answering side is primary, 3 failed, 4 inconsistent already) with a message.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pairos_mirror::drbd::Drbd;
use pairos_mirror::spec::VolumeName;
use pairos_recovery::trust::PairKey;

use crate::pair::heartbeat::push_field;
use crate::pair::sealed::{open, seal, Refusal};

pub const PORT: u16 = 7471;
const REQUEST: &[u8; 4] = b"POQ1";
const ANSWER: &[u8; 4] = b"POA1";
const PURPOSE: &str = "pairos outdate";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub pair_id: String,
    pub sender: String,
    pub incarnation: u64,
    pub counter: u64,
    pub resource: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The answering node's side is outdated now (or was already).
    Outdated,
    /// The answering node's side is inconsistent (a sync target): it has no data to serve.
    Inconsistent,
    /// The answering node's side is primary: it cannot be outdated.
    Primary,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub pair_id: String,
    pub sender: String,
    pub incarnation: u64,
    pub counter: u64,
    pub outcome: Outcome,
}

impl Request {
    pub fn encode(&self, key: &PairKey) -> Vec<u8> {
        let mut out = REQUEST.to_vec();
        push_field(&mut out, &self.pair_id);
        push_field(&mut out, &self.sender);
        out.extend_from_slice(&self.incarnation.to_le_bytes());
        out.extend_from_slice(&self.counter.to_le_bytes());
        push_field(&mut out, &self.resource);
        seal(out, key, PURPOSE)
    }

    /// The request, if it is one with a good tag; anything else is `None`.
    pub fn decode(packet: &[u8], key: &PairKey) -> Option<Request> {
        let read = || -> Result<Request, Refusal> {
            let mut r = open(packet, REQUEST, key, PURPOSE)?;
            let req = Request {
                pair_id: r.text()?,
                sender: r.text()?,
                incarnation: r.u64()?,
                counter: r.u64()?,
                resource: r.text()?,
            };
            r.end().map(|()| req)
        };
        read().ok()
    }
}

impl Answer {
    pub fn encode(&self, key: &PairKey) -> Vec<u8> {
        let mut out = ANSWER.to_vec();
        push_field(&mut out, &self.pair_id);
        push_field(&mut out, &self.sender);
        out.extend_from_slice(&self.incarnation.to_le_bytes());
        out.extend_from_slice(&self.counter.to_le_bytes());
        let (kind, message) = match &self.outcome {
            Outcome::Outdated => (1, ""),
            Outcome::Primary => (2, ""),
            Outcome::Failed(m) => (3, m.as_str()),
            Outcome::Inconsistent => (4, ""),
        };
        out.push(kind);
        push_field(&mut out, message);
        seal(out, key, PURPOSE)
    }

    pub fn decode(packet: &[u8], key: &PairKey) -> Option<Answer> {
        let read = || -> Result<Answer, Refusal> {
            let mut r = open(packet, ANSWER, key, PURPOSE)?;
            let (pair_id, sender, incarnation, counter) = (r.text()?, r.text()?, r.u64()?, r.u64()?);
            let kind = r.byte()?;
            let message = r.text()?;
            let outcome = match kind {
                1 => Outcome::Outdated,
                2 => Outcome::Primary,
                3 => Outcome::Failed(message),
                4 => Outcome::Inconsistent,
                _ => return Err(Refusal::Malformed),
            };
            r.end().map(|()| Answer { pair_id, sender, incarnation, counter, outcome })
        };
        read().ok()
    }
}

/// Who asks and who answers: the same on both sides.
#[derive(Debug, Clone)]
pub struct Parties {
    pub key: PairKey,
    pub pair_id: String,
    pub node: String,
    pub peer: String,
    pub incarnation: u64,
}

/// The daemon's side that asks the peer.
#[derive(Debug, Clone)]
pub struct Asker {
    pub parties: Parties,
    /// This node's public address (requests leave from it) and the peer's.
    pub own: std::net::Ipv4Addr,
    pub to: SocketAddr,
    counter: Arc<AtomicU64>,
}

impl Asker {
    pub fn new(parties: Parties, own: std::net::Ipv4Addr, to: SocketAddr) -> Asker {
        Asker { parties, own, to, counter: Arc::new(AtomicU64::new(0)) }
    }

    /// Asks the peer to outdate its side of `resource`: three tries, two seconds each.
    pub fn ask(&self, resource: &str) -> Result<Outcome, String> {
        let socket = UdpSocket::bind((self.own, 0)).map_err(|e| format!("a socket on {}: {e}", self.own))?;
        socket.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| e.to_string())?;
        let p = &self.parties;
        for _ in 0..3 {
            let counter = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
            let q = Request {
                pair_id: p.pair_id.clone(),
                sender: p.node.clone(),
                incarnation: p.incarnation,
                counter,
                resource: resource.to_owned(),
            };
            socket.send_to(&q.encode(&p.key), self.to).map_err(|e| format!("sending to {}: {e}", self.to))?;
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                let Some(a) = Answer::decode(&buf[..n], &p.key) else { continue };
                if from == self.to && a.pair_id == p.pair_id && a.sender == p.peer && a.counter == counter {
                    return Ok(a.outcome);
                }
            }
        }
        Err(format!("no answer from {} on the public network", self.to))
    }
}

/// Answers the peer's requests on `socket` (bound to the public port) until the process ends:
/// a side that is primary is not outdated; anything else is, by `drbdadm outdate`.
pub fn serve(parties: Parties, socket: UdpSocket, drbd: Drbd, say: fn(String)) -> std::io::Result<()> {
    std::thread::Builder::new().name("pair-outdate".into()).spawn(move || {
        let p = parties;
        let mut newest: HashMap<u64, u64> = HashMap::new();
        let mut buf = [0u8; 512];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
            let Some(q) = Request::decode(&buf[..n], &p.key) else { continue };
            if q.pair_id != p.pair_id || q.sender != p.peer {
                continue;
            }
            // Newer than any before from that incarnation: a recording is not replayed.
            let last = newest.entry(q.incarnation).or_insert(0);
            if q.counter <= *last {
                continue;
            }
            *last = q.counter;
            let outcome = match q.resource.parse::<VolumeName>() {
                Err(e) => Outcome::Failed(e),
                Ok(name) => outdate(&drbd, name.as_str()),
            };
            say(format!("volumes: the peer asked to outdate {} here: {outcome:?}", q.resource));
            let a = Answer {
                pair_id: p.pair_id.clone(),
                sender: p.node.clone(),
                incarnation: q.incarnation,
                counter: q.counter,
                outcome,
            };
            let _ = socket.send_to(&a.encode(&p.key), from);
        }
    })?;
    Ok(())
}

fn outdate(drbd: &Drbd, name: &str) -> Outcome {
    match drbd.state() {
        Ok(s) if s.resources.get(name).is_some_and(|r| r.role == "Primary") => Outcome::Primary,
        Ok(s) if s.resources.get(name).is_some_and(|r| r.disk == "Outdated") => Outcome::Outdated,
        Ok(s) if s.resources.get(name).is_some_and(|r| r.disk == "Inconsistent") => Outcome::Inconsistent,
        Ok(_) => match drbd.outdate(name) {
            Ok(()) => Outcome::Outdated,
            Err(e) => Outcome::Failed(format!("{e:#}")),
        },
        Err(e) => Outcome::Failed(format!("{e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_round_trip_and_nothing_else_passes() {
        let key = PairKey::generate().expect("random");
        let q = Request {
            pair_id: "p".into(),
            sender: "node-1".into(),
            incarnation: 7,
            counter: 3,
            resource: "data".into(),
        };
        assert_eq!(Request::decode(&q.encode(&key), &key), Some(q.clone()));
        let a = Answer {
            pair_id: "p".into(),
            sender: "node-2".into(),
            incarnation: 7,
            counter: 3,
            outcome: Outcome::Failed("no such resource".into()),
        };
        assert_eq!(Answer::decode(&a.encode(&key), &key), Some(a.clone()));
        let other = PairKey::generate().expect("random");
        assert_eq!(Request::decode(&q.encode(&other), &key), None);
        assert_eq!(Answer::decode(&q.encode(&key), &key), None, "a request is no answer");
        let mut cut = q.encode(&key);
        cut.truncate(20);
        assert_eq!(Request::decode(&cut, &key), None);
        for len in 0..100 {
            assert_eq!(Request::decode(&vec![0x50; len], &key), None);
        }
    }
}
