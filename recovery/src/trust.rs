//! The pair key and the enrolment token: what makes a message on the private link believable.
//!
//! The pair key (256 bits) is made when a pair is formed and never leaves the two nodes except
//! by enrolment. It authenticates what the nodes say to each other beyond plain network boot
//! (HMAC-SHA256; heartbeats next, DRBD's shared secret after). An enrolment token is what a
//! newcomer holds while it images itself: random, single-use, bound by the peer to the
//! newcomer's MAC and address, and short-lived. Neither is ever printed: their `Debug` says
//! only that they are there.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// 32 random bytes from the kernel.
fn random32() -> std::io::Result<[u8; 32]> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| std::io::Error::other(format!("getrandom: {e}")))?;
    Ok(bytes)
}

/// 32 bytes from 64 hex digits (a key, a tag).
pub fn from_hex32(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The pair's shared secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PairKey([u8; 32]);

impl std::fmt::Debug for PairKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PairKey(..)")
    }
}

impl PairKey {
    pub fn generate() -> std::io::Result<PairKey> {
        random32().map(PairKey)
    }

    /// 64 hex digits, as the key file and a partner's node configuration hold it.
    pub fn from_hex(text: &str) -> Option<PairKey> {
        from_hex32(text).map(PairKey)
    }

    pub fn to_hex(&self) -> String {
        pairos_image::digest::hex(&self.0)
    }

    fn hmac(&self, purpose: &str, parts: &[&[u8]]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        // The purpose and each part's length go in first, so no two messages share a tag.
        for p in std::iter::once(purpose.as_bytes()).chain(parts.iter().copied()) {
            mac.update(&(p.len() as u64).to_le_bytes());
            mac.update(p);
        }
        mac
    }

    /// The tag of `parts` for `purpose` (a fixed word per message kind).
    pub fn tag(&self, purpose: &str, parts: &[&[u8]]) -> [u8; 32] {
        self.hmac(purpose, parts).finalize().into_bytes().into()
    }

    /// Whether `tag` is the tag of `parts`, in constant time.
    pub fn check(&self, purpose: &str, parts: &[&[u8]], tag: &[u8]) -> bool {
        self.hmac(purpose, parts).verify_slice(tag).is_ok()
    }

    /// A secret of its own for one use (DRBD's shared secret, say), derived from the key.
    pub fn derive(&self, purpose: &str) -> String {
        pairos_image::digest::hex(&self.tag(purpose, &[]))
    }
}

/// A newcomer's enrolment token.
#[derive(Clone)]
pub struct Token([u8; 32]);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    pub fn generate() -> std::io::Result<Token> {
        random32().map(Token)
    }

    pub fn to_hex(&self) -> String {
        pairos_image::digest::hex(&self.0)
    }

    /// Whether `presented` (hex, from a request) is this token, in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        let Some(other) = from_hex32(presented) else { return false };
        // Equal-length comparison without an early exit.
        self.0.iter().zip(other.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_tags_check_and_nothing_secret_is_printed() {
        let key = PairKey::generate().expect("random");
        assert_eq!(PairKey::from_hex(&key.to_hex()), Some(key.clone()));
        assert_eq!(format!("{key:?}"), "PairKey(..)");
        assert!(PairKey::from_hex("00").is_none());
        assert!(PairKey::from_hex(&"g".repeat(64)).is_none());

        let tag = key.tag("heartbeat", &[b"node-1", b"7"]);
        assert!(key.check("heartbeat", &[b"node-1", b"7"], &tag));
        assert!(!key.check("heartbeat", &[b"node-1", b"8"], &tag), "another message");
        assert!(!key.check("report", &[b"node-1", b"7"], &tag), "another purpose");
        assert!(!key.check("heartbeat", &[b"node-17"], &tag), "parts are not concatenated");
        let other = PairKey::generate().expect("random");
        assert!(!other.check("heartbeat", &[b"node-1", b"7"], &tag), "another key");
        assert_ne!(key.derive("drbd"), other.derive("drbd"));

        let token = Token::generate().expect("random");
        assert!(token.matches(&token.to_hex()));
        assert!(!token.matches(&Token::generate().expect("random").to_hex()));
        assert!(!token.matches(""));
        assert_eq!(format!("{token:?}"), "Token(..)");
    }
}
