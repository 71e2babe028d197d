//! A client's view of an address: ARP requests every 50 ms (broadcast each time, so that
//! every station that answers for the address is heard, not just the first), and pings at the
//! same pace (`ping -i 0.05`), from a namespace on the network. Each reply is stamped as it
//! arrives; the analysis says who answered when, whether two MACs ever answered within one
//! window, and how long the address went unanswered. (arping's interval is whole seconds, so
//! the ARP side is a thread of ours that enters the namespace and uses a packet socket.)

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{LabError, Netns};

/// One ARP reply: when it came and the MAC that sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub at: Instant,
    pub mac: String,
}

#[derive(Debug, Default)]
struct Seen {
    arp: Vec<Answer>,
    pings: Vec<Instant>,
}

/// Probes `address` until dropped.
#[derive(Debug)]
pub struct AddressProbe {
    pub started: Instant,
    children: Vec<Child>,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
}

/// The probes' pace.
pub const EVERY: Duration = Duration::from_millis(50);

fn lock(m: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl AddressProbe {
    pub fn start(ns: &Netns, interface: &str, address: &str) -> Result<AddressProbe, LabError> {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let every = format!("{}", EVERY.as_secs_f64());
        let ping = ["ping", "-n", "-i", &every, "-W", "1", address];
        let stop = Arc::new(AtomicBool::new(false));
        arp_thread(ns, interface, address, seen.clone(), stop.clone())?;
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns.name()])
            // Line-buffered, so that each reply is stamped when it comes.
            .args(["stdbuf", "-oL"])
            .args(ping)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(crate::error::io("ping"))?;
        let out = child.stdout.take().ok_or_else(|| LabError::Setup("no stdout".into()))?;
        let pings = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if line.contains("bytes from") {
                    lock(&pings).pings.push(Instant::now());
                }
            }
        });
        Ok(AddressProbe { started: Instant::now(), children: vec![child], seen, stop })
    }

    pub fn answers(&self) -> Vec<Answer> {
        lock(&self.seen).arp.clone()
    }

    pub fn pings(&self) -> Vec<Instant> {
        lock(&self.seen).pings.clone()
    }

    /// The MAC that answered last, if any answered within the last `within`.
    pub fn holder(&self, within: Duration) -> Option<String> {
        let s = lock(&self.seen);
        s.arp.last().filter(|a| a.at.elapsed() <= within).map(|a| a.mac.clone())
    }

    /// Waits until `mac` answers (and nobody else within the last half second), or `timeout`.
    pub fn wait_for(&self, mac: &str, timeout: Duration) -> Result<Instant, LabError> {
        let start = Instant::now();
        loop {
            {
                let s = lock(&self.seen);
                let recent: Vec<&Answer> =
                    s.arp.iter().filter(|a| a.at.elapsed() <= Duration::from_millis(500)).collect();
                if !recent.is_empty() && recent.iter().all(|a| a.mac == mac) {
                    return Ok(recent[0].at);
                }
            }
            if start.elapsed() > timeout {
                return Err(LabError::Setup(format!(
                    "the address was not answered by {mac} alone within {timeout:?}; last answers: {:?}",
                    self.answers().iter().rev().take(5).map(|a| a.mac.clone()).collect::<Vec<_>>()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Windows of [`EVERY`] in which two MACs answered: the client saw two holders at once.
    pub fn double_windows(&self) -> Vec<(Duration, Vec<String>)> {
        double_windows(&self.answers(), self.started, EVERY)
    }
}

/// Buckets `answers` into windows of `width` from `start`; returns the windows in which more
/// than one MAC answered, with their offset from `start`.
pub fn double_windows(answers: &[Answer], start: Instant, width: Duration) -> Vec<(Duration, Vec<String>)> {
    let mut buckets: std::collections::BTreeMap<u128, Vec<String>> = std::collections::BTreeMap::new();
    for a in answers {
        let k = a.at.saturating_duration_since(start).as_micros() / width.as_micros().max(1);
        let b = buckets.entry(k).or_default();
        if !b.contains(&a.mac) {
            b.push(a.mac.clone());
        }
    }
    buckets.into_iter().filter(|(_, macs)| macs.len() > 1).map(|(k, macs)| (width * k as u32, macs)).collect()
}

/// The longest stretch without an answer from anyone, between `from` and `to`.
pub fn longest_silence(answers: &[Instant], from: Instant, to: Instant) -> Duration {
    let mut last = from;
    let mut longest = Duration::ZERO;
    for &at in answers.iter().filter(|&&t| t >= from && t <= to) {
        longest = longest.max(at - last);
        last = at;
    }
    longest.max(to.saturating_duration_since(last))
}

/// Sends a broadcast ARP request for `address` every [`EVERY`] from `ns`'s `interface`, and
/// records every reply, on a thread that lives in that namespace.
fn arp_thread(
    ns: &Netns,
    interface: &str,
    address: &str,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
) -> Result<(), LabError> {
    use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, ArpPacket, MutableArpPacket};
    use pnet_packet::ethernet::{EtherTypes, EthernetPacket, MutableEthernetPacket};
    use pnet_packet::{MutablePacket, Packet};
    let target: Ipv4Addr = address.parse().map_err(|_| LabError::Setup(format!("{address}: not IPv4")))?;
    let ns_path = format!("/run/netns/{}", ns.name());
    let ns_file = std::fs::File::open(&ns_path).map_err(crate::error::io(&ns_path))?;
    let interface = interface.to_owned();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let opened = (|| -> Result<_, String> {
            nix::sched::setns(&ns_file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| e.to_string())?;
            let iface = pnet_datalink::interfaces()
                .into_iter()
                .find(|i| i.name == interface)
                .ok_or(format!("{interface}: no such interface"))?;
            let source = iface.ips.iter().find_map(|ip| match ip.ip() {
                std::net::IpAddr::V4(v4) => Some(v4),
                _ => None,
            });
            let config = pnet_datalink::Config {
                read_timeout: Some(Duration::from_millis(5)),
                promiscuous: false,
                ..pnet_datalink::Config::default()
            };
            match pnet_datalink::channel(&iface, config).map_err(|e| e.to_string())? {
                pnet_datalink::Channel::Ethernet(tx, rx) => {
                    Ok((tx, rx, iface.mac.unwrap_or_default(), source.unwrap_or(Ipv4Addr::UNSPECIFIED)))
                }
                _ => Err("not Ethernet".into()),
            }
        })();
        let (mut tx, mut rx, mac, source) = match opened {
            Ok(x) => {
                let _ = ready_tx.send(Ok(()));
                x
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return;
            }
        };
        let mut frame = [0u8; 42];
        {
            let mut eth = MutableEthernetPacket::new(&mut frame).expect("42 bytes");
            eth.set_destination(pnet_datalink::MacAddr::broadcast());
            eth.set_source(mac);
            eth.set_ethertype(EtherTypes::Arp);
            let mut arp = MutableArpPacket::new(eth.payload_mut()).expect("28 bytes");
            arp.set_hardware_type(ArpHardwareTypes::Ethernet);
            arp.set_protocol_type(EtherTypes::Ipv4);
            arp.set_hw_addr_len(6);
            arp.set_proto_addr_len(4);
            arp.set_operation(ArpOperations::Request);
            arp.set_sender_hw_addr(mac);
            arp.set_sender_proto_addr(source);
            arp.set_target_hw_addr(pnet_datalink::MacAddr::zero());
            arp.set_target_proto_addr(target);
        }
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            if Instant::now() >= next {
                let _ = tx.send_to(&frame, None);
                next += EVERY;
            }
            let Ok(bytes) = rx.next() else { continue };
            let Some(eth) = EthernetPacket::new(bytes) else { continue };
            if eth.get_ethertype() != EtherTypes::Arp {
                continue;
            }
            let Some(arp) = ArpPacket::new(eth.payload()) else { continue };
            if arp.get_operation() == ArpOperations::Reply && arp.get_sender_proto_addr() == target {
                let mac = arp.get_sender_hw_addr().to_string().to_ascii_lowercase();
                lock(&seen).arp.push(Answer { at: Instant::now(), mac });
            }
        }
    });
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(LabError::Setup(format!("the ARP probe in {}: {e}", ns.name()))),
        Err(_) => Err(LabError::Setup("the ARP probe's thread ended".into())),
    }
}

impl Drop for AddressProbe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_macs_in_one_window_are_found_and_silences_measured() {
        let t0 = Instant::now();
        let at = |ms: u64, mac: &str| Answer { at: t0 + Duration::from_millis(ms), mac: mac.into() };
        let answers = [at(10, "a"), at(60, "a"), at(70, "a"), at(110, "a"), at(120, "b"), at(160, "b")];
        let d = double_windows(&answers, t0, Duration::from_millis(50));
        assert_eq!(d, vec![(Duration::from_millis(100), vec!["a".to_string(), "b".to_string()])]);
        let times: Vec<Instant> = answers.iter().map(|a| a.at).collect();
        assert_eq!(longest_silence(&times, t0, t0 + Duration::from_millis(400)), Duration::from_millis(240));
    }
}
