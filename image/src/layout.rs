//! The pairos disk layout: which partitions, where, with which type and partition GUIDs.
//!
//! Types follow the UAPI Discoverable Partitions Specification. As the DPS asks, root A's
//! partition UUID is the first 128 bits of its verity root hash and verity A's the last 128
//! bits, so the root hash on the kernel command line finds its partitions without labels or
//! guesses. The other GUIDs are derived from the root hash too: the same root, the same disk.

use sha2::{Digest, Sha256};
use uuid::uuid;
/// Partition GUIDs, for those that add partitions to a pairos disk.
pub use uuid::Uuid;

use crate::spec::Partitions;

pub const SECTOR: u64 = 512;
/// Partitions start on 1 MiB boundaries.
pub const ALIGN_LBA: u64 = 2048;
/// The first MiB holds the protective MBR and the primary GPT; the last 33 sectors the backup.
pub const GPT_SECTORS: u64 = 33;

pub const TYPE_ESP: Uuid = uuid!("c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
pub const TYPE_ROOT_X86_64: Uuid = uuid!("4f68bce3-e8cd-4db1-96e7-fbcaf984b709");
pub const TYPE_ROOT_VERITY_X86_64: Uuid = uuid!("2c7357ed-ebd2-46d9-aec1-23d437ec2bf5");
/// DPS "variable data" (/var): the node's state partition, made on first boot.
pub const TYPE_VAR: Uuid = uuid!("4d21b016-b534-45c2-a9fb-5c16e091fd2d");
/// DPS "server data" (/srv): the mirrored data partition.
pub const TYPE_SRV: Uuid = uuid!("3b8f8425-20e0-4f3b-907f-1a25a76f98e8");

pub const STATE_LABEL: &str = "pairos-state";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartitionEntry {
    pub number: u32,
    pub name: String,
    pub type_guid: Uuid,
    pub guid: Uuid,
    pub first_lba: u64,
    pub last_lba: u64,
}

impl PartitionEntry {
    pub fn offset(&self) -> u64 {
        self.first_lba * SECTOR
    }
    pub fn size(&self) -> u64 {
        (self.last_lba + 1 - self.first_lba) * SECTOR
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DiskLayout {
    pub guid: Uuid,
    pub size: u64,
    pub partitions: Vec<PartitionEntry>,
}

impl DiskLayout {
    pub fn partition(&self, name: &str) -> Option<&PartitionEntry> {
        self.partitions.iter().find(|p| p.name == name)
    }
}

/// A GUID derived from a seed (in the image, the root hash) and a purpose, so that nothing in
/// the image is random.
pub fn derived_guid(seed: &[u8], purpose: &str) -> Uuid {
    let mut h = Sha256::new();
    h.update(b"pairos:");
    h.update(purpose.as_bytes());
    h.update(seed);
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid()
}

/// Root A's partition UUID: the first half of the root hash (DPS).
pub fn root_guid(root_hash: &[u8; 32]) -> Uuid {
    Uuid::from_slice(&root_hash[..16]).expect("16 bytes")
}

/// Verity A's partition UUID: the second half of the root hash (DPS).
pub fn verity_guid(root_hash: &[u8; 32]) -> Uuid {
    Uuid::from_slice(&root_hash[16..]).expect("16 bytes")
}

/// The image's partitions, laid out one after another from 1 MiB, and the disk size.
pub fn image_layout(sizes: &Partitions, root_hash: &[u8; 32]) -> DiskLayout {
    const MIB_LBA: u64 = (1 << 20) / SECTOR;
    let plan = [
        ("esp", TYPE_ESP, sizes.esp_mib, derived_guid(root_hash, "esp")),
        ("root-a", TYPE_ROOT_X86_64, sizes.root_mib, root_guid(root_hash)),
        ("verity-a", TYPE_ROOT_VERITY_X86_64, sizes.verity_mib, verity_guid(root_hash)),
        ("root-b", TYPE_ROOT_X86_64, sizes.root_mib, derived_guid(root_hash, "root-b")),
        ("verity-b", TYPE_ROOT_VERITY_X86_64, sizes.verity_mib, derived_guid(root_hash, "verity-b")),
    ];
    let mut lba = ALIGN_LBA;
    let mut partitions = Vec::new();
    for (i, (name, type_guid, mib, guid)) in plan.into_iter().enumerate() {
        let len = mib * MIB_LBA;
        partitions.push(PartitionEntry {
            number: i as u32 + 1,
            name: name.to_owned(),
            type_guid,
            guid,
            first_lba: lba,
            last_lba: lba + len - 1,
        });
        lba += len;
    }
    // One spare MiB at the end for the backup GPT.
    let size = (lba + MIB_LBA) * SECTOR;
    DiskLayout { guid: derived_guid(root_hash, "disk"), size, partitions }
}

/// Parses a hex root hash.
pub fn parse_root_hash(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_aligned_contiguous_and_named_by_the_root_hash() {
        let hash =
            parse_root_hash(&"ab".repeat(16).chars().chain("cd".repeat(16).chars()).collect::<String>())
                .expect("hash");
        let l = image_layout(&Partitions { esp_mib: 128, root_mib: 256, verity_mib: 8 }, &hash);
        let names: Vec<&str> = l.partitions.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["esp", "root-a", "verity-a", "root-b", "verity-b"]);
        assert_eq!(l.partitions[0].first_lba, 2048);
        for w in l.partitions.windows(2) {
            assert_eq!(w[0].last_lba + 1, w[1].first_lba);
            assert_eq!(w[1].first_lba % ALIGN_LBA, 0);
        }
        assert_eq!(
            l.partition("root-a").expect("a").guid.to_string(),
            "abababab-abab-abab-abab-abababababab"
        );
        assert_eq!(
            l.partition("verity-a").expect("v").guid.to_string(),
            "cdcdcdcd-cdcd-cdcd-cdcd-cdcdcdcdcdcd"
        );
        assert_eq!(l.size, (128 + 2 * (256 + 8) + 2) << 20);
        assert_eq!(l, image_layout(&Partitions { esp_mib: 128, root_mib: 256, verity_mib: 8 }, &hash));
    }
}
