//! Packets sealed with a key: a 4-byte magic, fields, and a 32-byte HMAC under the key for a
//! purpose word. The witness's protocol and the peer's outdate requests both speak it.
//! [`seal`] appends the tag, [`open`] checks it, and [`Fields`] reads the fields front to back
//! (text as a u16 LE length and the bytes, as [`super::heartbeat::push_field`] writes them).

use pairos_recovery::trust::PairKey;

const TAG: usize = 32;

/// Why a packet was not believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a packet of this kind, or cut short.
    Malformed,
    /// Its tag does not check with the key.
    Forged,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::Malformed => "malformed (not a packet of this kind, or cut short)",
            Refusal::Forged => "its tag does not check with the key",
        })
    }
}

/// `body` with its tag under `key` for `purpose` appended.
pub fn seal(mut body: Vec<u8>, key: &PairKey, purpose: &str) -> Vec<u8> {
    let tag = key.tag(purpose, &[&body]);
    body.extend_from_slice(&tag);
    body
}

/// Checks the magic and the tag; returns the fields past the magic.
pub fn open<'a>(
    packet: &'a [u8],
    magic: &[u8; 4],
    key: &PairKey,
    purpose: &str,
) -> Result<Fields<'a>, Refusal> {
    let body_len = packet.len().checked_sub(TAG).ok_or(Refusal::Malformed)?;
    let (body, tag) = packet.split_at(body_len);
    if !body.starts_with(magic) {
        return Err(Refusal::Malformed);
    }
    if !key.check(purpose, &[body], tag) {
        return Err(Refusal::Forged);
    }
    Ok(Fields(&body[magic.len()..]))
}

/// Reads fields off a body, front to back.
#[derive(Debug)]
pub struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    pub fn take(&mut self, n: usize) -> Result<&[u8], Refusal> {
        if self.0.len() < n {
            return Err(Refusal::Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub fn byte(&mut self) -> Result<u8, Refusal> {
        Ok(self.take(1)?[0])
    }

    pub fn u64(&mut self) -> Result<u64, Refusal> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| Refusal::Malformed)?))
    }

    pub fn text(&mut self) -> Result<String, Refusal> {
        let len = u16::from_le_bytes(self.take(2)?.try_into().map_err(|_| Refusal::Malformed)?) as usize;
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| Refusal::Malformed)
    }

    /// Nothing may follow the last field.
    pub fn end(&self) -> Result<(), Refusal> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Refusal::Malformed)
        }
    }
}
