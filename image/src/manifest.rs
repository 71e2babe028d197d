//! `manifest.json`: what an image is, byte for byte, and its ed25519 signature.
//!
//! The disk is described as ranges that cover it exactly once: mapped chunks (with sha256),
//! must-be-zero ranges and don't-care ranges. Chunks that hold the partition table are marked
//! so, because a writer writes them last. The manifest is shared with the recovery crate, which
//! verifies the signature before it writes anything.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::digest::sha256_hex;
use crate::layout::{DiskLayout, GPT_SECTORS, SECTOR};

pub const FORMAT: u32 = 1;
/// Mapped data is cut into chunks of at most this size: the unit a writer fetches and verifies.
pub const CHUNK: u64 = 4 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub version: String,
    pub boards: Vec<String>,
    pub kernel: String,
    pub root_hash: String,
    pub source_date_epoch: u64,
    pub artifacts: Vec<Artifact>,
    pub disk: DiskMap,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskMap {
    pub layout: DiskLayout,
    pub chunks: Vec<Chunk>,
    pub zero: Vec<Range>,
    pub dont_care: Vec<Range>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    pub offset: u64,
    pub length: u64,
}

impl Range {
    pub fn end(&self) -> u64 {
        self.offset + self.length
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chunk {
    pub offset: u64,
    pub length: u64,
    pub sha256: String,
    /// Part of the protective MBR or a GPT header/array: written after everything else.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partition_table: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("signing key {path}: {message}")]
    Key { path: String, message: String },
    #[error("manifest signature does not verify with the public key {key}")]
    BadSignature { key: String },
    #[error("manifest: {0}")]
    Invalid(String),
}

fn push_merged(list: &mut Vec<Range>, r: Range) {
    if r.length == 0 {
        return;
    }
    match list.last_mut() {
        Some(last) if last.end() == r.offset => last.length += r.length,
        _ => list.push(r),
    }
}

/// Maps `disk` (laid out as `layout`): `payloads` gives, per partition name, how many bytes at
/// its start the build wrote; the rest of each partition, and partitions without a payload,
/// are don't-care. Within payloads, all-zero chunks become must-be-zero ranges.
pub fn map_disk(
    disk: &Path,
    layout: &DiskLayout,
    payloads: &[(&str, u64)],
) -> Result<DiskMap, ManifestError> {
    let io = |what: &str| {
        let what = format!("{what} {}", disk.display());
        move |source| ManifestError::Io { what, source }
    };
    let mut file = std::fs::File::open(disk).map_err(io("opening"))?;
    let mut chunks = Vec::new();
    let (mut zero, mut dont_care) = (Vec::new(), Vec::new());
    let mut buf = Vec::new();
    let mut read = |offset: u64, length: u64, buf: &mut Vec<u8>| -> Result<(), ManifestError> {
        buf.resize(length as usize, 0);
        file.seek(SeekFrom::Start(offset)).map_err(io("seeking in"))?;
        file.read_exact(buf).map_err(io("reading"))
    };

    // The protective MBR and primary GPT, up to the first partition.
    let first = layout.partitions.first().map_or(layout.size, |p| p.offset());
    read(0, first, &mut buf)?;
    chunks.push(Chunk { offset: 0, length: first, sha256: sha256_hex(&buf), partition_table: true });

    let mut pos = first;
    for part in &layout.partitions {
        push_merged(&mut dont_care, Range { offset: pos, length: part.offset() - pos });
        let payload = payloads.iter().find(|(n, _)| *n == part.name).map_or(0, |(_, len)| *len);
        if payload > part.size() {
            return Err(ManifestError::Invalid(format!(
                "partition {} holds {payload} bytes of payload but is only {} bytes",
                part.name,
                part.size()
            )));
        }
        let payload_end = part.offset() + payload.div_ceil(4096) * 4096;
        let mut off = part.offset();
        while off < payload_end {
            let len = CHUNK.min(payload_end - off);
            read(off, len, &mut buf)?;
            if buf.iter().all(|&b| b == 0) {
                push_merged(&mut zero, Range { offset: off, length: len });
            } else {
                chunks.push(Chunk {
                    offset: off,
                    length: len,
                    sha256: sha256_hex(&buf),
                    partition_table: false,
                });
            }
            off += len;
        }
        push_merged(
            &mut dont_care,
            Range { offset: payload_end, length: part.offset() + part.size() - payload_end },
        );
        pos = part.offset() + part.size();
    }
    let backup = layout.size - GPT_SECTORS * SECTOR;
    push_merged(&mut dont_care, Range { offset: pos, length: backup - pos });
    read(backup, layout.size - backup, &mut buf)?;
    chunks.push(Chunk {
        offset: backup,
        length: layout.size - backup,
        sha256: sha256_hex(&buf),
        partition_table: true,
    });
    Ok(DiskMap { layout: layout.clone(), chunks, zero, dont_care })
}

impl DiskMap {
    /// Checks that chunks, zero and don't-care ranges cover the disk exactly once, in order.
    pub fn check_coverage(&self) -> Result<(), ManifestError> {
        let mut all: Vec<(u64, u64)> = self.chunks.iter().map(|c| (c.offset, c.length)).collect();
        all.extend(self.zero.iter().chain(&self.dont_care).map(|r| (r.offset, r.length)));
        all.sort();
        let mut pos = 0;
        for (offset, length) in all {
            if offset != pos || length == 0 {
                return Err(ManifestError::Invalid(format!(
                    "disk ranges leave a gap or overlap at byte {pos}"
                )));
            }
            pos += length;
        }
        if pos != self.layout.size {
            return Err(ManifestError::Invalid(format!(
                "disk ranges end at {pos}, the disk at {}",
                self.layout.size
            )));
        }
        // The last MiB carries the disk's own signed manifest (crate::manifest_record).
        let reserved = crate::manifest_record::offset(&self.layout);
        if let Some(p) = self.layout.partitions.iter().find(|p| p.offset() + p.size() > reserved) {
            return Err(ManifestError::Invalid(format!(
                "partition {} ends at byte {}, inside the disk's last MiB (from byte {reserved}), \
                 which is reserved for the manifest record",
                p.name,
                p.offset() + p.size()
            )));
        }
        Ok(())
    }
}

impl Manifest {
    /// The manifest's canonical bytes: what is signed and written as manifest.json.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut text = serde_json::to_vec_pretty(self).expect("a manifest always serialises");
        text.push(b'\n');
        text
    }

    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| ManifestError::Invalid(e.to_string()))?;
        if m.format != FORMAT {
            return Err(ManifestError::Invalid(format!(
                "format {} (this pairos reads format {FORMAT})",
                m.format
            )));
        }
        m.disk.check_coverage()?;
        Ok(m)
    }
}

/// Reads an ed25519 private key in PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, ManifestError> {
    let key_err = |message: String| ManifestError::Key { path: path.display().to_string(), message };
    let text = std::fs::read_to_string(path).map_err(|e| key_err(format!("cannot read it: {e}")))?;
    SigningKey::from_pkcs8_pem(&text)
        .map_err(|e| key_err(format!("expected an ed25519 private key in PKCS#8 PEM ({e})")))
}

/// A fresh key for development builds.
pub fn ephemeral_signing_key() -> SigningKey {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).expect("the OS random source works");
    SigningKey::from_bytes(&seed)
}

/// The public key in SPKI PEM (`openssl pkey -pubin` reads it).
pub fn public_key_pem(key: &VerifyingKey) -> String {
    key.to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .expect("PEM encoding of a key")
}

pub fn parse_public_key_pem(text: &str) -> Result<VerifyingKey, ManifestError> {
    VerifyingKey::from_public_key_pem(text)
        .map_err(|e| ManifestError::Key { path: "public key".into(), message: e.to_string() })
}

/// The public half of `ci/keys/test-signing-key.pem`, which is in the repository for anyone to
/// sign with: only lab builds may use it.
const PUBLIC_TEST_KEY: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAIe35AaKS+uwlmaVbMt1KQR8aAhCgHoktq9xHu3k7O1E=
-----END PUBLIC KEY-----
";

/// Whether `key` is the repository's public test key.
pub fn is_public_test_key(key: &VerifyingKey) -> bool {
    parse_public_key_pem(PUBLIC_TEST_KEY).is_ok_and(|test| test == *key)
}

/// The raw 64-byte signature (`openssl pkeyutl -verify -rawin` checks it).
pub fn sign(bytes: &[u8], key: &SigningKey) -> [u8; 64] {
    key.sign(bytes).to_bytes()
}

pub fn verify(bytes: &[u8], signature: &[u8], key: &VerifyingKey) -> Result<(), ManifestError> {
    let bad = || ManifestError::BadSignature { key: crate::digest::hex(key.as_bytes()) };
    let sig = Signature::from_slice(signature).map_err(|_| bad())?;
    // Strict: rejects small-order keys and non-canonical signatures, which plain `verify`
    // lets through (a signature must name one manifest, no malleable twins).
    key.verify_strict(bytes, &sig).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{image_layout, parse_root_hash};
    use crate::spec::Partitions;
    use ed25519_dalek::Verifier;

    #[test]
    fn the_disk_map_covers_every_byte_once() {
        let hash = parse_root_hash(&"11".repeat(32)).expect("hash");
        let layout = image_layout(&Partitions { esp_mib: 32, root_mib: 64, verity_mib: 1 }, &hash);
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = dir.path().join("disk.raw");
        let f = std::fs::File::create(&disk).expect("create");
        f.set_len(layout.size).expect("size");
        // Some data in the ESP's first chunk and in root A's second chunk; the rest is zeros.
        use std::os::unix::fs::FileExt;
        f.write_all_at(b"fat", layout.partitions[0].offset()).expect("write");
        f.write_all_at(b"sq", layout.partitions[1].offset() + CHUNK + 5).expect("write");
        let map = map_disk(&disk, &layout, &[("esp", 32 << 20), ("root-a", 10 << 20)]).expect("map");
        map.check_coverage().expect("coverage");
        let data: Vec<_> = map.chunks.iter().filter(|c| !c.partition_table).map(|c| c.offset).collect();
        assert_eq!(data, [layout.partitions[0].offset(), layout.partitions[1].offset() + CHUNK]);
        assert_eq!(map.chunks.iter().filter(|c| c.partition_table).count(), 2);
        // Root A's first chunk is zeros: a must-be-zero range covers it.
        let start = layout.partitions[1].offset();
        assert!(map.zero.iter().any(|r| r.offset <= start && r.end() > start), "{:?}", map.zero);
    }

    #[test]
    fn a_small_order_key_verifies_nothing() {
        // The identity point as the key and as R, with s = 0: a signature of every message
        // under plain verification. Strict verification refuses the weak key.
        let mut point = [0u8; 32];
        point[0] = 1;
        let weak = VerifyingKey::from_bytes(&point).expect("a valid point");
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&point);
        let lax = weak.verify(b"any manifest", &Signature::from_bytes(&sig)).is_ok();
        assert!(lax, "the plain check accepts it, which is why it is not used");
        assert!(verify(b"any manifest", &sig, &weak).is_err());
    }

    #[test]
    fn a_changed_manifest_fails_its_signature() {
        let key = ephemeral_signing_key();
        let sig = sign(b"manifest", &key);
        verify(b"manifest", &sig, &key.verifying_key()).expect("verifies");
        assert!(verify(b"manifesT", &sig, &key.verifying_key()).is_err());
        assert!(!is_public_test_key(&key.verifying_key()), "a fresh key is not the test key");
        let test = load_signing_key(&std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../ci/keys/test-signing-key.pem"
        )))
        .expect("the test key loads");
        assert!(is_public_test_key(&test.verifying_key()));
        let pem = public_key_pem(&key.verifying_key());
        assert_eq!(parse_public_key_pem(&pem).expect("pem"), key.verifying_key());
    }
}
