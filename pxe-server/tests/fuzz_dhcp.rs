//! Fuzzing the DHCP path a packet takes (`packet::decode`, then `handle`) for a bounded time: mutated
//! real PXE requests and random bytes must never crash the server. The PRNG is seeded, so a
//! failure prints the seed and iteration that reproduce it.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dhcproto::v4::{Architecture, DhcpOption, Message, MessageType, Opcode, OptionCode, UnknownOption};
use dhcproto::{Encodable, Encoder};
use pairos_pxe::dhcp::{DhcpConfig, DhcpServer};
use pairos_pxe::leases::LeaseStore;
use pairos_pxe::policy::{Decision, Fixed};

/// xorshift64*: small, seeded, good enough to pick bytes.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (kind, arch, ipxe) in [
        (MessageType::Discover, Some(0u16), false),
        (MessageType::Discover, Some(7), true),
        (MessageType::Request, Some(16), false),
        (MessageType::Inform, None, false),
        (MessageType::Decline, None, false),
        (MessageType::Release, None, false),
    ] {
        let mut m = Message::default();
        m.set_opcode(Opcode::BootRequest).set_xid(7).set_chaddr(&[0x52, 0x54, 0, 1, 2, 3]);
        m.opts_mut().insert(DhcpOption::MessageType(kind));
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 77, 0, 120)));
        if let Some(a) = arch {
            m.opts_mut().insert(DhcpOption::ClientSystemArchitecture(Architecture::from(a)));
            m.opts_mut().insert(DhcpOption::ClassIdentifier(b"PXEClient:Arch:00007:UNDI:003016".to_vec()));
            m.opts_mut().insert(DhcpOption::ClientMachineIdentifier(vec![0; 17]));
        }
        if ipxe {
            m.opts_mut()
                .insert(DhcpOption::Unknown(UnknownOption::new(OptionCode::Unknown(175), vec![1, 1, 1])));
        }
        let mut bytes = Vec::new();
        m.encode(&mut Encoder::new(&mut bytes)).expect("encode");
        out.push(bytes);
    }
    out
}

#[test]
fn mutated_and_random_packets_never_crash_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (leases, _) = LeaseStore::open(
        &dir.path().join("l.json"),
        Ipv4Addr::new(10, 77, 0, 100),
        Ipv4Addr::new(10, 77, 0, 110),
    )
    .expect("leases");
    let mut server = DhcpServer {
        config: DhcpConfig {
            server_ip: Ipv4Addr::new(10, 77, 0, 1),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            lease_secs: 60,
            http_port: 80,
        },
        leases,
        policy: Fixed(Decision::Recover),
    };
    // PAIROS_FUZZ_SEED=0x... reruns a reported seed; the seed is printed before anything runs,
    // so a crash, a hang or a timeout can be reproduced too.
    let seed = std::env::var("PAIROS_FUZZ_SEED")
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0x5eed_0000_0000_0001);
    eprintln!("fuzz_dhcp: seed {seed:#x} (rerun with PAIROS_FUZZ_SEED={seed:#x})");
    let mut rng = Rng(seed);
    let corpus = seeds();
    let (mut decoded, mut replied, mut iterations) = (0u64, 0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        iterations += 1;
        let mut packet = if rng.below(8) == 0 {
            (0..rng.below(600)).map(|_| rng.next() as u8).collect()
        } else {
            corpus[rng.below(corpus.len())].clone()
        };
        for _ in 0..=rng.below(8) {
            if packet.is_empty() {
                break;
            }
            match rng.below(4) {
                0 => {
                    let i = rng.below(packet.len());
                    packet[i] = rng.next() as u8;
                }
                1 => packet.truncate(rng.below(packet.len())),
                2 => {
                    let i = rng.below(packet.len());
                    packet.insert(i, rng.next() as u8);
                }
                _ => {
                    // Flip bytes in the options area, where lengths live.
                    let i = 240 + rng.below(packet.len().saturating_sub(240).max(1));
                    if let Some(b) = packet.get_mut(i) {
                        *b ^= 1 << rng.below(8);
                    }
                }
            }
        }
        // Through the same decoder the server uses, which must not panic.
        let Ok(msg) = pairos_pxe::packet::decode(&packet) else { continue };
        decoded += 1;
        // A panic here fails the test; the seed and iteration reproduce it.
        if let Ok(Some(reply)) = server.handle(&msg, iterations) {
            replied += 1;
            let mut out = Vec::new();
            reply.message.encode(&mut Encoder::new(&mut out)).expect("our replies always encode");
        }
    }
    eprintln!("seed {seed:#x}: {iterations} packets, {decoded} decoded, {replied} answered");
    assert!(
        decoded > 100 && replied > 10,
        "the fuzzer must reach the reply path: {decoded} decoded, {replied} answered"
    );
}
