//! Decoding DHCP packets from the wire, safely.
//!
//! dhcproto panics on some malformed input: debug assertions on option lengths while decoding,
//! and `Message::chaddr()` slices by the packet's own hardware address length (up to 255 of 16
//! bytes). The fuzz test found both. A packet from the network must never stop the server, so decoding
//! runs under `catch_unwind`, and a panic hook (installed once, chained to the previous one)
//! keeps such panics off stderr, where a flood of them would defeat the rate-limited log.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use dhcproto::v4::Message;
use dhcproto::{Decodable, Decoder};

thread_local! {
    static DECODING: Cell<bool> = const { Cell::new(false) };
}

fn install_quiet_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !DECODING.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeFailure {
    #[error("not a DHCP message: {0}")]
    Invalid(String),
    #[error("malformed DHCP options (the decoder gave up)")]
    Malformed,
}

/// The DHCP magic cookie, after the fixed BOOTP header.
const COOKIE: [u8; 4] = [99, 130, 83, 99];

/// Whether `bytes` can be a client's DHCP message at all: a BOOTREQUEST long enough to carry the
/// magic cookie and a message type. A few byte compares, so that a flood of garbage costs the
/// server next to nothing and a real client's packet is still read in time.
pub fn plausible_request(bytes: &[u8]) -> bool {
    bytes.len() >= 243 && bytes[0] == 1 && bytes[236..240] == COOKIE
}

/// Runs a decoder on untrusted bytes: a panic becomes `Err`, and is kept off stderr.
pub(crate) fn without_panicking<T>(decode: impl FnOnce() -> T) -> std::thread::Result<T> {
    install_quiet_hook();
    DECODING.with(|d| d.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(decode));
    DECODING.with(|d| d.set(false));
    result
}

/// Decodes one DHCPv4 message; never panics.
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeFailure> {
    if !plausible_request(bytes) {
        return Err(DecodeFailure::Invalid("not a BOOTREQUEST with the DHCP magic cookie".into()));
    }
    decode_any(bytes)
}

/// Decodes one DHCPv4 message, a server's reply too (for [`crate::probe`]); never panics.
pub fn decode_reply(bytes: &[u8]) -> Result<Message, DecodeFailure> {
    if bytes.len() < 243 || bytes[0] != 2 || bytes[236..240] != COOKIE {
        return Err(DecodeFailure::Invalid("not a BOOTREPLY with the DHCP magic cookie".into()));
    }
    decode_any(bytes)
}

fn decode_any(bytes: &[u8]) -> Result<Message, DecodeFailure> {
    match without_panicking(|| Message::decode(&mut Decoder::new(bytes))) {
        // chaddr() slices 16 bytes by this length: reject before anything calls it.
        Ok(Ok(m)) if m.hlen() > 16 => {
            Err(DecodeFailure::Invalid(format!("hardware address length {}", m.hlen())))
        }
        Ok(Ok(m)) => Ok(m),
        Ok(Err(e)) => Err(DecodeFailure::Invalid(e.to_string())),
        Err(_) => Err(DecodeFailure::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bootrequest(options: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 240];
        p[..4].copy_from_slice(&[1, 1, 6, 0]);
        p[236..240].copy_from_slice(&[99, 130, 83, 99]);
        p.extend_from_slice(options);
        p.push(255);
        p
    }

    #[test]
    fn a_sane_request_decodes() {
        assert!(decode(&bootrequest(&[53, 1, 1])).is_ok());
        assert!(decode(b"short").is_err());
        let mut reply = bootrequest(&[53, 1, 2]);
        reply[0] = 2;
        assert!(decode(&reply).is_err(), "a BOOTREPLY is not for a server");
    }

    #[test]
    fn an_oversized_hardware_address_length_is_refused() {
        let mut p = bootrequest(&[53, 1, 1]);
        p[2] = 200;
        assert!(
            matches!(decode(&p), Err(DecodeFailure::Invalid(ref m)) if m == "hardware address length 200")
        );
    }

    /// Option 152 (bulk lease query base time) must be 4 bytes; dhcproto asserts it in debug
    /// builds, which is where this test runs.
    #[cfg(debug_assertions)]
    #[test]
    fn a_decoder_panic_is_caught_as_malformed() {
        assert!(matches!(decode(&bootrequest(&[53, 1, 1, 152, 2, 0, 0])), Err(DecodeFailure::Malformed)));
    }
}
