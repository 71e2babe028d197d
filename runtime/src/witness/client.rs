//! The pair daemon's side of the witnesses: it sends what the decision core asks for (a lease
//! for an epoch, or giving it back) and matches each answer to its request, so the core learns
//! when the request it answers was sent.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};

use pairos_recovery::trust::PairKey;

use super::protocol::{Answer, Kind, Request};

/// Requests older than this many newer ones are forgotten (their answers are then ignored).
const REMEMBERED: u64 = 64;

#[derive(Debug)]
pub struct Client {
    socket: UdpSocket,
    key: PairKey,
    pair_id: String,
    node: String,
    incarnation: u64,
    counter: u64,
    lease_ms: u64,
    witnesses: Vec<SocketAddr>,
    /// Requests awaiting an answer, by counter: which witness, and when (the core's clock).
    asked: HashMap<u64, (usize, u64)>,
}

/// An answer matched to its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub witness: usize,
    pub sent: u64,
    pub answer: Answer,
}

impl Client {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        socket: UdpSocket,
        key: PairKey,
        pair_id: &str,
        node: &str,
        incarnation: u64,
        lease_ms: u64,
        witnesses: Vec<SocketAddr>,
    ) -> Client {
        Client {
            socket,
            key,
            pair_id: pair_id.to_owned(),
            node: node.to_owned(),
            incarnation,
            counter: 0,
            lease_ms,
            witnesses,
            asked: HashMap::new(),
        }
    }

    pub fn witnesses(&self) -> &[SocketAddr] {
        &self.witnesses
    }

    fn send(&mut self, witness: usize, kind: Kind, epoch: u64) -> u64 {
        self.counter += 1;
        let r = Request {
            pair_id: self.pair_id.clone(),
            node: self.node.clone(),
            incarnation: self.incarnation,
            counter: self.counter,
            kind,
            epoch,
            lease_ms: self.lease_ms,
        };
        // A witness that cannot be reached answers nothing; the core counts on that.
        let _ = self.socket.send_to(&r.encode(&self.key), self.witnesses[witness]);
        self.counter
    }

    /// Asks witness `witness` for the lease for `epoch`, at `now` (the core's clock).
    pub fn ask(&mut self, witness: usize, epoch: u64, now: u64) {
        if witness >= self.witnesses.len() {
            return;
        }
        let counter = self.send(witness, Kind::Ask, epoch);
        self.asked.insert(counter, (witness, now));
        let oldest = self.counter.saturating_sub(REMEMBERED);
        self.asked.retain(|c, _| *c > oldest);
    }

    /// Gives back the lease for `epoch` on every witness; answers to earlier requests are
    /// void from now on.
    pub fn release(&mut self, epoch: u64) {
        for w in 0..self.witnesses.len() {
            self.send(w, Kind::Release, epoch);
        }
        self.asked.clear();
    }

    /// The answer in `bytes` from `from`, if it is a witness's answer to a request of ours.
    pub fn take(&mut self, bytes: &[u8], from: SocketAddr) -> Option<Matched> {
        let answer = Answer::decode(bytes, &self.key).ok()?;
        if answer.pair_id != self.pair_id
            || answer.node != self.node
            || answer.incarnation != self.incarnation
        {
            return None;
        }
        let (witness, sent) = *self.asked.get(&answer.counter)?;
        if self.witnesses[witness] != from {
            return None;
        }
        self.asked.remove(&answer.counter);
        Some(Matched { witness, sent, answer })
    }
}
