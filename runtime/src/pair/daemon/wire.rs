//! The daemon's sending side of both links. The decision loop sends grants and requests itself,
//! and publishes its latest heartbeat here; a thread of its own sends that heartbeat on both
//! links every interval, and at once when it changes. So a loop held up for a moment (an
//! fsync of the epoch on a busy disk) does not look like a dead node to its peer. A loop that
//! has published nothing for [`STALE`] is stuck, not slow: the beats stop, and the peer's dead
//! time runs (the watchdog resets this node soon after).
//!
//! One lock covers the packet counter and the sockets, so packets leave in counter order and
//! the peer's replay guard never sees an older counter after a newer one.

use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use pairos_pair::core::{Link, Msg};
use pairos_recovery::trust::PairKey;

use crate::pair::membership::Packet;

/// A loop that has not published a heartbeat for this long is stuck: no more beats for it.
/// (It publishes at every heartbeat interval when it runs.)
pub const STALE: Duration = Duration::from_secs(5);

struct Sender {
    sockets: [UdpSocket; 2],
    peers: [SocketAddr; 2],
    counter: u64,
}

#[derive(Default)]
struct Latest {
    heartbeat: Option<(Msg, [u8; 6])>,
    published: Option<Instant>,
    /// A changed heartbeat is waiting to be sent at once.
    fresh: bool,
}

/// Both links' sending side: see the module.
pub struct Wire {
    pair_id: String,
    node: String,
    incarnation: u64,
    key: PairKey,
    sender: Mutex<Sender>,
    latest: Mutex<Latest>,
    changed: Condvar,
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wire").field("node", &self.node).field("incarnation", &self.incarnation).finish()
    }
}

impl Wire {
    /// `sockets` and the peer's addresses are in link order (private, public).
    pub fn new(
        pair_id: &str,
        node: &str,
        incarnation: u64,
        key: PairKey,
        sockets: [UdpSocket; 2],
        peers: [SocketAddr; 2],
    ) -> Arc<Wire> {
        Arc::new(Wire {
            pair_id: pair_id.to_owned(),
            node: node.to_owned(),
            incarnation,
            key,
            sender: Mutex::new(Sender { sockets, peers, counter: 0 }),
            latest: Mutex::new(Latest::default()),
            changed: Condvar::new(),
        })
    }

    /// Sends `msg` on both links now, with `holder` (who answers for the pair's address).
    pub fn send(&self, msg: &Msg, holder: [u8; 6]) {
        let mut s = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        for link in [Link::Private, Link::Public] {
            s.counter += 1;
            let p = Packet {
                link,
                pair_id: self.pair_id.clone(),
                sender: self.node.clone(),
                incarnation: self.incarnation,
                counter: s.counter,
                msg: msg.clone(),
                holder,
            };
            // A link that is down refuses the datagram: the other link carries it, or the
            // peer's silence says the rest.
            let _ = s.sockets[link as usize].send_to(&p.encode(&self.key), s.peers[link as usize]);
        }
    }

    /// The loop's latest heartbeat: the beats carry it from now on (at once if it changed).
    pub fn publish(&self, heartbeat: Msg, holder: [u8; 6]) {
        let mut l = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        let next = Some((heartbeat, holder));
        if l.heartbeat != next {
            l.heartbeat = next;
            l.fresh = true;
            self.changed.notify_one();
        }
        l.published = Some(Instant::now());
    }

    /// Starts the beats: the latest heartbeat every `every`, and at once when it changes,
    /// while it was published less than `stale` ago ([`STALE`]).
    pub fn spawn_beats(self: &Arc<Self>, every: Duration, stale: Duration) -> std::io::Result<()> {
        let wire = Arc::clone(self);
        std::thread::Builder::new().name("pair-beats".into()).spawn(move || {
            let mut next = Instant::now();
            loop {
                let due = {
                    let mut l = wire.latest.lock().unwrap_or_else(|e| e.into_inner());
                    while !l.fresh && Instant::now() < next {
                        let wait = next.saturating_duration_since(Instant::now());
                        l = wire.changed.wait_timeout(l, wait).unwrap_or_else(|e| e.into_inner()).0;
                    }
                    l.fresh = false;
                    let live = l.published.is_some_and(|t| t.elapsed() < stale);
                    l.heartbeat.clone().filter(|_| live)
                };
                if let Some((msg, holder)) = due {
                    wire.send(&msg, holder);
                }
                next = Instant::now() + every;
            }
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pair::membership::Receiver;

    fn key() -> PairKey {
        PairKey::from_hex(&"ab".repeat(32)).expect("a key")
    }

    fn heartbeat(acting: Option<u64>) -> Msg {
        Msg::Heartbeat {
            incarnation: 7,
            promised: 1,
            acting,
            health: 1000,
            ready: true,
            claim: None,
            elected: Default::default(),
            proposal: None,
        }
    }

    /// A wire whose two links end at two loopback sockets, which it returns in link order.
    fn wire() -> (Arc<Wire>, [UdpSocket; 2]) {
        let ends = [0, 1].map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind"));
        let socket = || UdpSocket::bind("127.0.0.1:0").expect("bind");
        let to = |i: usize| ends[i].local_addr().expect("addr");
        for end in &ends {
            end.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
        }
        let w = Wire::new("p", "node-1", 7, key(), [socket(), socket()], [to(0), to(1)]);
        (w, ends)
    }

    fn next(end: &UdpSocket, receiver: &mut Receiver, link: Link) -> Option<Msg> {
        let mut buf = [0u8; 2048];
        let n = end.recv(&mut buf).ok()?;
        Some(receiver.take(&buf[..n], link).expect("believed: in counter order, on its link").msg)
    }

    #[test]
    fn beats_carry_the_latest_heartbeat_on_both_links_until_the_loop_goes_stale() {
        let (w, ends) = wire();
        let mut receiver = Receiver::new(key(), "p".into(), "node-1".into());
        w.publish(heartbeat(None), [0; 6]);
        w.spawn_beats(Duration::from_millis(20), Duration::from_millis(300)).expect("thread");
        for _ in 0..5 {
            assert_eq!(next(&ends[0], &mut receiver, Link::Private), Some(heartbeat(None)));
            assert_eq!(next(&ends[1], &mut receiver, Link::Public), Some(heartbeat(None)));
        }
        // The loop sends a grant itself, between beats: its counter keeps the order.
        w.send(&Msg::Grant { epoch: 2, to: 9 }, [0; 6]);
        w.publish(heartbeat(Some(2)), [0; 6]);
        let mut private = Vec::new();
        while let Some(m) = next(&ends[0], &mut receiver, Link::Private) {
            private.push(m);
            if private.len() > 40 {
                break;
            }
        }
        assert!(private.contains(&Msg::Grant { epoch: 2, to: 9 }), "{private:?}");
        assert!(private.contains(&heartbeat(Some(2))), "the new heartbeat went out: {private:?}");
        assert!(private.len() <= 40, "the beats went on although nothing was published: {private:?}");
    }
}
