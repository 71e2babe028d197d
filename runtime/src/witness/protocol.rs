//! What a node and a witness say to each other: UDP, one request and one answer, each
//! authenticated with the witness key (the same on both nodes and the witness; not the pair
//! key, which never leaves the pair).
//!
//! A request: the magic `PWQ1`, the pair id and the node's name (each a u16 LE length and the
//! bytes), the node's incarnation and a counter (u64 LE each), the kind (1 ask, 2 release),
//! the epoch and the lease asked for in milliseconds (u64 LE each), then a 32-byte HMAC.
//! An answer: the magic `PWA1`, the pair id, the node's name, the request's incarnation and
//! counter (so the node knows which request it answers), granted (1 byte), the epoch, the
//! milliseconds (granted: the lease; refused: what the holder's lease has left), the holder's
//! name, then the HMAC.

use pairos_recovery::trust::PairKey;

use crate::pair::heartbeat::push_field;
pub use crate::pair::sealed::Refusal;
use crate::pair::sealed::{open, seal};

/// The witness's UDP port.
pub const PORT: u16 = 7470;
const REQUEST: &[u8; 4] = b"PWQ1";
const ANSWER: &[u8; 4] = b"PWA1";
const PURPOSE: &str = "pairos witness";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ask,
    Release,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub pair_id: String,
    pub node: String,
    pub incarnation: u64,
    pub counter: u64,
    pub kind: Kind,
    pub epoch: u64,
    pub lease_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub pair_id: String,
    pub node: String,
    pub incarnation: u64,
    pub counter: u64,
    pub granted: bool,
    pub epoch: u64,
    pub ms: u64,
    pub holder: String,
}

impl Request {
    pub fn encode(&self, key: &PairKey) -> Vec<u8> {
        let mut out = REQUEST.to_vec();
        push_field(&mut out, &self.pair_id);
        push_field(&mut out, &self.node);
        out.extend_from_slice(&self.incarnation.to_le_bytes());
        out.extend_from_slice(&self.counter.to_le_bytes());
        out.push(match self.kind {
            Kind::Ask => 1,
            Kind::Release => 2,
        });
        out.extend_from_slice(&self.epoch.to_le_bytes());
        out.extend_from_slice(&self.lease_ms.to_le_bytes());
        seal(out, key, PURPOSE)
    }

    pub fn decode(packet: &[u8], key: &PairKey) -> Result<Request, Refusal> {
        let mut f = open(packet, REQUEST, key, PURPOSE)?;
        let (pair_id, node) = (f.text()?, f.text()?);
        let (incarnation, counter) = (f.u64()?, f.u64()?);
        let kind = match f.byte()? {
            1 => Kind::Ask,
            2 => Kind::Release,
            _ => return Err(Refusal::Malformed),
        };
        let (epoch, lease_ms) = (f.u64()?, f.u64()?);
        f.end()?;
        Ok(Request { pair_id, node, incarnation, counter, kind, epoch, lease_ms })
    }
}

impl Answer {
    pub fn encode(&self, key: &PairKey) -> Vec<u8> {
        let mut out = ANSWER.to_vec();
        push_field(&mut out, &self.pair_id);
        push_field(&mut out, &self.node);
        out.extend_from_slice(&self.incarnation.to_le_bytes());
        out.extend_from_slice(&self.counter.to_le_bytes());
        out.push(u8::from(self.granted));
        out.extend_from_slice(&self.epoch.to_le_bytes());
        out.extend_from_slice(&self.ms.to_le_bytes());
        push_field(&mut out, &self.holder);
        seal(out, key, PURPOSE)
    }

    pub fn decode(packet: &[u8], key: &PairKey) -> Result<Answer, Refusal> {
        let mut f = open(packet, ANSWER, key, PURPOSE)?;
        let (pair_id, node) = (f.text()?, f.text()?);
        let (incarnation, counter) = (f.u64()?, f.u64()?);
        let granted = match f.byte()? {
            0 => false,
            1 => true,
            _ => return Err(Refusal::Malformed),
        };
        let (epoch, ms) = (f.u64()?, f.u64()?);
        let holder = f.text()?;
        f.end()?;
        Ok(Answer { pair_id, node, incarnation, counter, granted, epoch, ms, holder })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        Request {
            pair_id: "p1".into(),
            node: "node-1".into(),
            incarnation: 1_700_000_000,
            counter: 9,
            kind: Kind::Ask,
            epoch: 4,
            lease_ms: 16_000,
        }
    }

    #[test]
    fn requests_and_answers_round_trip_and_nothing_else_passes() {
        let key = PairKey::generate().expect("random");
        let r = request();
        assert_eq!(Request::decode(&r.encode(&key), &key), Ok(r.clone()));
        let a = Answer {
            pair_id: "p1".into(),
            node: "node-1".into(),
            incarnation: r.incarnation,
            counter: 9,
            granted: false,
            epoch: 3,
            ms: 1_200,
            holder: "node-2".into(),
        };
        assert_eq!(Answer::decode(&a.encode(&key), &key), Ok(a.clone()));
        // Another key, a flipped bit, a short packet, the other kind of packet.
        let other = PairKey::generate().expect("random");
        assert_eq!(Request::decode(&r.encode(&other), &key), Err(Refusal::Forged));
        let mut flipped = r.encode(&key);
        flipped[10] ^= 1;
        assert_eq!(Request::decode(&flipped, &key), Err(Refusal::Forged));
        assert_eq!(Request::decode(&r.encode(&key)[..20], &key), Err(Refusal::Malformed));
        assert_eq!(Request::decode(&a.encode(&key), &key), Err(Refusal::Malformed));
    }

    #[test]
    fn random_bytes_are_refused_without_a_panic() {
        let key = PairKey::generate().expect("random");
        let mut state = 0x1234_5678_u64;
        for len in 0..400 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (state >> 33) as u8
                })
                .collect();
            assert!(Request::decode(&bytes, &key).is_err());
            assert!(Answer::decode(&bytes, &key).is_err());
        }
    }
}
