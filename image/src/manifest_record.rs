//! The signed manifest that a pairos disk carries about itself.
//!
//! A node serves its own image to a blank peer. For that it needs the signed manifest, and the
//! manifest cannot sit inside the bytes it hashes. The layout ends with one spare MiB after the
//! image's last partition (the backup GPT of an image-sized disk lives in its last 33 sectors);
//! the record goes there. The manifest marks that MiB don't-care, so the record changes no
//! chunk. The bmap maps it, so `bmaptool copy` carries it, and the writer writes it. State and
//! data partitions start after it.
//!
//! Format: the magic `PAIROSM1`, the manifest's length and the signature's length (u32, little
//! endian), the manifest's bytes, the signature's bytes; zeros to the end of the area.

use crate::layout::{DiskLayout, GPT_SECTORS, SECTOR};
use crate::manifest::ManifestError;

const MAGIC: &[u8; 8] = b"PAIROSM1";
const HEADER: usize = 16;
/// The reserved area after the image's partitions.
pub const RESERVED: u64 = 1 << 20;
/// What the record may fill: the reserved MiB less an image-sized disk's backup GPT.
pub const CAPACITY: u64 = RESERVED - GPT_SECTORS * SECTOR;

/// Where the record starts on a disk laid out as `image` (or larger).
pub fn offset(image: &DiskLayout) -> u64 {
    image.size - RESERVED
}

/// Where the record starts, found from a disk's own partition table: right after the image's
/// last partition (`image_end_lba`, its last LBA), on the next MiB.
pub fn offset_after(image_end_lba: u64) -> u64 {
    ((image_end_lba + 1) * SECTOR).next_multiple_of(RESERVED)
}

/// The record's bytes, padded with zeros to [`CAPACITY`].
pub fn encode(manifest: &[u8], signature: &[u8]) -> Result<Vec<u8>, ManifestError> {
    let need = HEADER + manifest.len() + signature.len();
    if need as u64 > CAPACITY {
        return Err(ManifestError::Invalid(format!(
            "the manifest ({} bytes) does not fit the disk's reserved area ({CAPACITY} bytes); \
             use fewer, larger partitions",
            manifest.len()
        )));
    }
    let mut out = Vec::with_capacity(CAPACITY as usize);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(manifest.len() as u32).to_le_bytes());
    out.extend_from_slice(&(signature.len() as u32).to_le_bytes());
    out.extend_from_slice(manifest);
    out.extend_from_slice(signature);
    out.resize(CAPACITY as usize, 0);
    Ok(out)
}

/// The manifest's and the signature's bytes from a record. The signature is not checked here.
pub fn decode(record: &[u8]) -> Result<(Vec<u8>, Vec<u8>), ManifestError> {
    let bad = |what: &str| ManifestError::Invalid(format!("the disk's manifest record: {what}"));
    if record.len() < HEADER || &record[..8] != MAGIC {
        return Err(bad("not found (expected the magic PAIROSM1 after the image's partitions)"));
    }
    let len = |at: usize| u32::from_le_bytes(record[at..at + 4].try_into().expect("4 bytes")) as usize;
    let (m, s) = (len(8), len(12));
    if HEADER + m + s > record.len() || m + s > CAPACITY as usize {
        return Err(bad(&format!("lengths {m} and {s} run past the {} bytes read", record.len())));
    }
    Ok((record[HEADER..HEADER + m].to_vec(), record[HEADER + m..HEADER + m + s].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_garbage_is_named() {
        let rec = encode(b"{\"m\":1}", &[7u8; 64]).expect("fits");
        assert_eq!(rec.len() as u64, CAPACITY);
        let (m, s) = decode(&rec).expect("decodes");
        assert_eq!((m.as_slice(), s.as_slice()), (&b"{\"m\":1}"[..], &[7u8; 64][..]));

        let err = decode(&[0u8; 4096]).expect_err("zeros").to_string();
        assert!(err.contains("PAIROSM1"), "{err}");
        let mut long = rec.clone();
        long[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&long).expect_err("too long").to_string().contains("run past"));
        assert!(encode(&vec![b'x'; CAPACITY as usize], &[0; 64]).is_err());
    }

    #[test]
    fn the_record_sits_in_the_mib_after_the_last_partition() {
        // An image whose last partition ends at 900 MiB is 901 MiB long.
        let end_lba = (900u64 << 20) / SECTOR - 1;
        assert_eq!(offset_after(end_lba), 900 << 20);
        let layout = DiskLayout { guid: uuid::Uuid::nil(), size: 901 << 20, partitions: vec![] };
        assert_eq!(offset(&layout), 900 << 20);
    }
}
