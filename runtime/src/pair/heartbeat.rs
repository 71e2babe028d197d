//! Heartbeats: each node tells its peer, several times a second, that it is alive, on the
//! private link (and, with membership, on the public one). A heartbeat is believed only with
//! the pair key's HMAC and a sequence number higher than any before from that node, so a
//! stranger cannot fake one and a recording cannot be replayed.
//!
//! Wire format (UDP, [`PORT`]): the magic `PHB1`, then length-prefixed fields (u16 little
//! endian): the pair id, the sender's node name, its private-link MAC; then the sequence
//! number (u64 LE: the sender's wall clock in microseconds, kept strictly increasing), then a
//! flags byte (bit 0: its firmware boots its disk first; a heartbeat without it is read as
//! flags 0), then the 32-byte tag over everything before it.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pairos_recovery::trust::PairKey;

pub const PORT: u16 = 7468;
const MAGIC: &[u8; 4] = b"PHB1";
const PURPOSE: &str = "pairos heartbeat";
/// How often a heartbeat goes out.
pub const INTERVAL: Duration = Duration::from_millis(200);
/// A peer silent this long is no longer live.
pub const DEAD_TIME: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub pair_id: String,
    pub node_name: String,
    pub mac: String,
    pub seq: u64,
    /// The sender booted from the first entry of its firmware's boot order, its disk: a network
    /// boot of it means its disk did not boot ([`super::boot_policy`]).
    pub disk_first: bool,
}

/// Appends `field` as a u16 LE length and its bytes (at most 255 of them).
pub(crate) fn push_field(out: &mut Vec<u8>, field: &str) {
    let bytes = &field.as_bytes()[..field.len().min(255)];
    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    out.extend_from_slice(bytes);
}

impl Heartbeat {
    pub fn encode(&self, key: &PairKey) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for f in [&self.pair_id, &self.node_name, &self.mac] {
            push_field(&mut out, f);
        }
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.push(u8::from(self.disk_first));
        let tag = key.tag(PURPOSE, &[&out]);
        out.extend_from_slice(&tag);
        out
    }

    /// A heartbeat whose tag checks with `key`; `None` for anything else, silently (a stranger's
    /// packet is not worth a log line each).
    pub fn decode(packet: &[u8], key: &PairKey) -> Option<Heartbeat> {
        let body_len = packet.len().checked_sub(32)?;
        let (body, tag) = packet.split_at(body_len);
        if !body.starts_with(MAGIC) || !key.check(PURPOSE, &[body], tag) {
            return None;
        }
        let mut at = MAGIC.len();
        let mut field = || -> Option<String> {
            let len = u16::from_le_bytes(body.get(at..at + 2)?.try_into().ok()?) as usize;
            let text = std::str::from_utf8(body.get(at + 2..at + 2 + len)?).ok()?.to_owned();
            at += 2 + len;
            Some(text)
        };
        let (pair_id, node_name, mac) = (field()?, field()?, field()?);
        let seq = u64::from_le_bytes(body.get(at..at + 8)?.try_into().ok()?);
        let flags = match body.len() - (at + 8) {
            0 => 0,
            1 => body[at + 8],
            _ => return None,
        };
        Some(Heartbeat { pair_id, node_name, mac, seq, disk_first: flags & 1 == 1 })
    }
}

/// What this node knows of its peer from heartbeats.
#[derive(Debug, Default)]
pub struct Liveness {
    last_seq: BTreeMap<String, u64>,
    heard: Option<Instant>,
    /// The peer's private-link MAC, from its last heartbeat.
    pub peer_mac: Option<String>,
    /// The peer's firmware boots its disk first, as its last heartbeat said.
    pub peer_disk_first: bool,
}

impl Liveness {
    /// Takes a verified heartbeat from `peer_name` of `pair_id`; says whether it was believed
    /// (ours, from the peer, and newer than any before).
    pub fn heard(&mut self, hb: &Heartbeat, pair_id: &str, peer_name: &str, now: Instant) -> bool {
        if hb.pair_id != pair_id || hb.node_name != peer_name {
            return false;
        }
        let last = self.last_seq.entry(hb.node_name.clone()).or_insert(0);
        if hb.seq <= *last {
            return false;
        }
        *last = hb.seq;
        self.heard = Some(now);
        self.peer_mac = Some(hb.mac.to_ascii_lowercase());
        self.peer_disk_first = hb.disk_first;
        true
    }

    pub fn live(&self, now: Instant) -> bool {
        self.heard.is_some_and(|t| now.saturating_duration_since(t) < DEAD_TIME)
    }

    /// When the peer was last heard.
    pub fn last_heard(&self) -> Option<Instant> {
        self.heard
    }
}

/// Sends heartbeats to the peer and takes its own, on threads of their own, over `socket`
/// (bound to the private-link port by the caller).
pub fn run(
    socket: UdpSocket,
    peer: Ipv4Addr,
    me: Heartbeat,
    key: PairKey,
    peer_name: String,
    liveness: Arc<Mutex<Liveness>>,
) -> std::io::Result<()> {
    let sender = socket.try_clone()?;
    let send_key = key.clone();
    let pair_id = me.pair_id.clone();
    std::thread::Builder::new().name("heartbeat-send".into()).spawn(move || {
        let mut hb = me;
        loop {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0);
            hb.seq = now.max(hb.seq + 1);
            // A peer that is not there yet refuses the datagram: nothing to do about it.
            let _ = sender.send_to(&hb.encode(&send_key), SocketAddr::from((peer, PORT)));
            std::thread::sleep(INTERVAL);
        }
    })?;
    std::thread::Builder::new().name("heartbeat-recv".into()).spawn(move || {
        let mut buf = [0u8; 1024];
        loop {
            let Ok((n, _)) = socket.recv_from(&mut buf) else { continue };
            if let Some(hb) = Heartbeat::decode(&buf[..n], &key) {
                let mut l = liveness.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                l.heard(&hb, &pair_id, &peer_name, Instant::now());
            }
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hb(seq: u64) -> Heartbeat {
        Heartbeat {
            pair_id: "p1".into(),
            node_name: "node-2".into(),
            mac: "52:54:00:AA:00:02".into(),
            seq,
            disk_first: false,
        }
    }

    #[test]
    fn only_fresh_heartbeats_with_the_pair_key_are_believed() {
        let key = PairKey::generate().expect("random");
        let packet = hb(10).encode(&key);
        assert_eq!(Heartbeat::decode(&packet, &key), Some(hb(10)));
        let stranger = PairKey::generate().expect("random");
        assert_eq!(Heartbeat::decode(&hb(10).encode(&stranger), &key), None, "another pair's key");
        let mut flipped = packet.clone();
        flipped[8] ^= 1;
        assert_eq!(Heartbeat::decode(&flipped, &key), None, "a changed byte");
        assert_eq!(Heartbeat::decode(&packet[..20], &key), None, "a short packet");
        assert_eq!(Heartbeat::decode(&[], &key), None);
        let first = Heartbeat { disk_first: true, ..hb(12) };
        assert_eq!(Heartbeat::decode(&first.encode(&key), &key), Some(first));
        // A heartbeat without its flags byte (as before it had one) is read as flags 0.
        let mut old = hb(13).encode(&key);
        old.truncate(old.len() - 33);
        let tag = key.tag(PURPOSE, &[&old]);
        old.extend_from_slice(&tag);
        assert_eq!(Heartbeat::decode(&old, &key), Some(hb(13)));

        let t0 = Instant::now();
        let mut l = Liveness::default();
        assert!(!l.live(t0));
        assert!(l.heard(&hb(10), "p1", "node-2", t0));
        assert!(l.live(t0 + Duration::from_secs(1)));
        assert_eq!(l.peer_mac.as_deref(), Some("52:54:00:aa:00:02"));
        assert!(!l.heard(&hb(10), "p1", "node-2", t0), "a replay");
        assert!(!l.heard(&hb(9), "p1", "node-2", t0), "an older one");
        assert!(!l.heard(&hb(11), "p2", "node-2", t0), "another pair");
        assert!(!l.heard(&hb(11), "p1", "node-1", t0), "not from the peer");
        assert!(!l.live(t0 + DEAD_TIME), "silent for the dead time");
        assert!(l.heard(&hb(11), "p1", "node-2", t0 + DEAD_TIME));
        assert!(l.live(t0 + DEAD_TIME));
    }
}
