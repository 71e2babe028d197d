//! TFTP, read-only, jailed to the boot folder, on one interface.
//!
//! The tftpd crate does the protocol work: packet codec, option acknowledgement, windowed sends
//! (RFC 7440), retransmission and block-number rollover ([`tftpd::Worker`]). Its own `Server`
//! binds to an address rather than an interface and resolves names without regard to symlinks,
//! so the request loop is ours: each read request is checked against the [`Jail`], its options
//! are bounded, and a transfer socket bound to the interface is handed to a worker thread.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::Type;
use tftpd::{ErrorCode, OptionType, Packet, TransferOption, Worker};

use crate::jail::Jail;
use crate::ratelimit::RateLimit;
use crate::sockets::{bind, interface_address, on_interface, socket_error, ServeError};

/// Transfers at once; a request beyond this is told the server is busy (PXE clients retry).
const MAX_TRANSFERS: usize = 64;
/// The largest block a client may ask for (RFC 2348).
const MAX_BLKSIZE: u64 = 65464;
/// The largest window a client may ask for; more only fills the client's socket buffer.
const MAX_WINDOW: u64 = 64;

#[derive(Debug, Clone)]
pub struct TftpService {
    pub interface: String,
    pub root: PathBuf,
    pub port: u16,
}

/// The options we accept, bounded, in the client's order. Unknown and non-standard options are
/// left out of the acknowledgement (RFC 2347: the server omits what it does not support).
fn negotiate(requested: &[TransferOption], file_size: u64) -> Vec<TransferOption> {
    let mut out = Vec::new();
    for o in requested {
        let value = match o.option {
            OptionType::BlockSize => o.value.clamp(8, MAX_BLKSIZE),
            OptionType::TransferSize => file_size,
            OptionType::Timeout => o.value.clamp(1, 255),
            OptionType::WindowSize => o.value.clamp(1, MAX_WINDOW),
            OptionType::UTimeout | OptionType::WindowWait => continue,
        };
        out.push(TransferOption { option: o.option, value });
    }
    out
}

/// Worker::new's transfer-options parameter, at its defaults. tftpd exports the worker but not
/// the type of these options, so it is named here by inference from the function's signature.
fn default_transfer_options<S: ?Sized, L, O: Default, A, R>(_new: fn(Box<S>, PathBuf, L, O, A) -> R) -> O {
    O::default()
}

fn decode(bytes: &[u8]) -> Option<Packet> {
    // The codec indexes into the buffer; a malformed datagram must not end the server.
    crate::packet::without_panicking(|| Packet::deserialize(bytes)).ok().and_then(Result::ok)
}

struct Transfers {
    running: Vec<JoinHandle<bool>>,
}

impl Transfers {
    fn busy(&mut self) -> bool {
        self.running.retain(|h| !h.is_finished());
        self.running.len() >= MAX_TRANSFERS
    }
}

fn transfer_socket(svc: &TftpService, ip: Ipv4Addr, to: SocketAddr) -> Result<UdpSocket, ServeError> {
    let s = on_interface(&svc.interface, Type::DGRAM)?;
    bind(&s, &svc.interface, ip, 0)?;
    s.connect(&to.into()).map_err(socket_error(&svc.interface, "connecting to the client"))?;
    Ok(s.into())
}

fn refuse(socket: &UdpSocket, to: SocketAddr, code: ErrorCode, msg: String) {
    let _ = tftpd::Socket::send_to(socket, &Packet::Error { code, msg }, &to);
}

/// Starts one read transfer of `path` to `to`.
fn start(
    svc: &TftpService,
    ip: Ipv4Addr,
    to: SocketAddr,
    path: PathBuf,
    requested: &[TransferOption],
    abort: &Arc<AtomicBool>,
) -> Result<(JoinHandle<bool>, u64, Vec<TransferOption>), String> {
    let size = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
    let options = negotiate(requested, size);
    let socket = transfer_socket(svc, ip, to).map_err(|e| e.to_string())?;
    let mut transfer = default_transfer_options(Worker::<UdpSocket>::new);
    transfer.apply(&options).map_err(|e| e.to_string())?;
    if !options.is_empty() {
        tftpd::Socket::send(&socket, &Packet::Oack(options.clone())).map_err(|e| e.to_string())?;
    }
    let worker = Worker::new(Box::new(socket), path, Default::default(), transfer, abort.clone());
    let handle = worker.send(!options.is_empty()).map_err(|e| e.to_string())?;
    Ok((handle, size, options))
}

fn describe(options: &[TransferOption]) -> String {
    options.iter().map(|o| format!("{}={}", o.option.as_str(), o.value)).collect::<Vec<_>>().join(" ")
}

/// Serves TFTP until `stop` is set.
pub fn serve_tftp(svc: &TftpService, stop: Arc<AtomicBool>) -> Result<(), ServeError> {
    let (ip, _) = interface_address(&svc.interface)?;
    let jail = Jail::new(&svc.root).map_err(|source| ServeError::Root { path: svc.root.clone(), source })?;
    let s = on_interface(&svc.interface, Type::DGRAM)?;
    bind(&s, &svc.interface, Ipv4Addr::UNSPECIFIED, svc.port)?;
    let socket: UdpSocket = s.into();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .map_err(socket_error(&svc.interface, "read timeout"))?;
    tracing::info!(interface = %svc.interface, root = %jail.root().display(), port = svc.port, "TFTP serving");
    let mut transfers = Transfers { running: Vec::new() };
    let mut log = RateLimit::new(20);
    let mut buf = vec![0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(_) => continue,
        };
        let mut say = |f: &dyn Fn(u64)| {
            if let (true, dropped) = log.allow(Instant::now()) {
                f(dropped)
            }
        };
        match decode(&buf[..n]) {
            Some(Packet::Rrq { filename, options, .. }) => match jail.resolve(&filename) {
                Err(refusal) => {
                    let code = if refusal.is_violation() {
                        ErrorCode::AccessViolation
                    } else {
                        ErrorCode::FileNotFound
                    };
                    say(&|d| tracing::warn!(%from, %refusal, suppressed = d, "TFTP refused"));
                    refuse(&socket, from, code, refusal.to_string());
                }
                Ok(_) if transfers.busy() => {
                    say(&|d| tracing::warn!(%from, file = %filename, suppressed = d, "TFTP busy"));
                    refuse(&socket, from, ErrorCode::NotDefined, "server busy, retry".into());
                }
                Ok(path) => match start(svc, ip, from, path, &options, &stop) {
                    Ok((handle, size, opts)) => {
                        transfers.running.push(handle);
                        say(&|d| {
                            tracing::info!(%from, file = %filename, bytes = size,
                                options = %describe(&opts), suppressed = d, "TFTP sending")
                        });
                    }
                    Err(e) => {
                        say(&|d| tracing::warn!(%from, file = %filename, error = %e, suppressed = d, "TFTP"));
                        refuse(&socket, from, ErrorCode::NotDefined, e);
                    }
                },
            },
            Some(Packet::Wrq { filename, .. }) => {
                say(&|d| tracing::warn!(%from, file = %filename, suppressed = d, "TFTP write refused"));
                refuse(&socket, from, ErrorCode::AccessViolation, "this server is read-only".into());
            }
            // Acknowledgements go to the transfer sockets; anything else here is noise.
            _ => say(&|d| tracing::debug!(%from, suppressed = d, "TFTP: not a request")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_bounded_and_unknown_ones_dropped() {
        let opt = |option, value| TransferOption { option, value };
        let got = negotiate(
            &[
                opt(OptionType::BlockSize, 70_000),
                opt(OptionType::TransferSize, 0),
                opt(OptionType::WindowSize, 1000),
                opt(OptionType::Timeout, 0),
                opt(OptionType::WindowWait, 5),
            ],
            1234,
        );
        assert_eq!(
            got,
            vec![
                opt(OptionType::BlockSize, MAX_BLKSIZE),
                opt(OptionType::TransferSize, 1234),
                opt(OptionType::WindowSize, MAX_WINDOW),
                opt(OptionType::Timeout, 1),
            ]
        );
    }

    /// Seeded random and mutated datagrams through the codec: it returns or refuses, never panics.
    #[test]
    fn the_codec_survives_garbage() {
        let seed = std::env::var("PAIROS_FUZZ_SEED")
            .ok()
            .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
            .unwrap_or(0x2545_f491_4f6c_dd1d);
        eprintln!("the_codec_survives_garbage: seed {seed:#x} (rerun with PAIROS_FUZZ_SEED={seed:#x})");
        let mut x = seed;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let rrq = b"\x00\x01ipxe/undionly.kpxe\x00octet\x00blksize\x001468\x00tsize\x000\x00".to_vec();
        let mut decoded = 0;
        for i in 0..200_000u32 {
            let mut p = if i % 2 == 0 {
                let mut p = rrq.clone();
                for _ in 0..1 + next() % 4 {
                    let at = (next() as usize) % p.len();
                    p[at] = next() as u8;
                }
                p.truncate((next() as usize) % (rrq.len() + 1));
                p
            } else {
                (0..next() % 64).map(|_| next() as u8).collect()
            };
            if i % 7 == 0 && p.len() >= 2 {
                p[0] = 0;
                p[1] = (next() % 7) as u8;
            }
            decoded += usize::from(decode(&p).is_some());
        }
        assert!(decoded > 1000, "mutated requests still decode sometimes: {decoded}");
    }
}
