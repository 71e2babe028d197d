//! What is on a disk before anything is written to it (ARCHITECTURE §5): nothing, a disk of this
//! pair (whose data partitions are kept, so that it can later rejoin with an incremental
//! resync), or foreign data, which is never wiped by default. The finding names what was seen.
//!
//! A pairos disk is known by the identity in its state partition (`pairos/node.json`, read
//! with debugfs, without mounting anything): of this pair, it is kept; of another pair, it is
//! foreign, and that pair's id is named; with no identity (a partner's preload, a node that
//! never booted), its partitions are kept and the OS is written as on a blank disk.

use std::os::unix::fs::FileExt;
use std::path::Path;

use pairos_host::Cmd;
use pairos_image::layout::{PartitionEntry, STATE_LABEL, TYPE_ESP, TYPE_ROOT_X86_64, TYPE_SRV, TYPE_VAR};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "class", rename_all = "kebab-case")]
pub enum DiskClass {
    /// No partition table, no signature, and zeros where tables and superblocks live.
    Blank,
    /// A pairos disk: its state and data partitions are kept across the rewrite.
    Pair { keep: Vec<KeptPartition> },
    /// Anything else, described.
    Foreign { findings: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeptPartition {
    pub number: u32,
    pub name: String,
    pub size: u64,
    #[serde(skip)]
    pub entry: PartitionEntry,
}

const PROBE: usize = 1 << 20;

fn zeros_at(file: &std::fs::File, offset: u64, len: usize) -> std::io::Result<bool> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf.iter().all(|&b| b == 0))
}

fn human(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{} MiB", bytes >> 20)
    }
}

/// Signatures blkid finds at `offset` of the device (partition table type, file system, label).
fn signatures_at(path: &Path, offset: u64) -> Vec<String> {
    // blkid exits 2 when it finds nothing; that is an empty answer, not an error.
    let out = Cmd::new("blkid")
        .args(["-p", "-o", "export", "-O", &offset.to_string()])
        .arg(path)
        .run_text()
        .unwrap_or_default();
    out.lines()
        .filter(|l| ["PTTYPE=", "TYPE=", "LABEL=", "USAGE="].iter().any(|k| l.starts_with(k)))
        .map(str::to_owned)
        .collect()
}

fn signatures(path: &Path) -> Vec<String> {
    signatures_at(path, 0)
}

/// The four primary partitions of an MBR (DOS) label, if sector 0 is one.
fn mbr_partitions(file: &std::fs::File) -> Vec<(usize, u8, u64, u64)> {
    let mut sector = [0u8; 512];
    if file.read_exact_at(&mut sector, 0).is_err() || sector[510..] != [0x55, 0xaa] {
        return Vec::new();
    }
    (0..4)
        .filter_map(|i| {
            let e = &sector[446 + 16 * i..462 + 16 * i];
            let kind = e[4];
            let lba = |b: &[u8]| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            (kind != 0).then(|| (i + 1, kind, lba(&e[8..12]) * 512, lba(&e[12..16]) * 512))
        })
        .collect()
}

/// The pair id and node name in the state file system at byte `offset` of `path`, if there is
/// one and it holds an identity.
fn state_identity(path: &Path, offset: u64) -> Option<(String, String)> {
    // e2fsprogs opens `file?offset=N` as the file system at that byte of the file or device.
    let fs = format!("{}?offset={offset}", path.display());
    let text = Cmd::new("debugfs").args(["-R", "cat /pairos/node.json", &fs]).run_text().ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    Some((field("pair_id")?, field("node_name").unwrap_or_default()))
}

/// Classifies the disk at `path` of `size` bytes, for a writer working for the pair `pair`
/// (`None`: for no pair, so that a disk of any pair is foreign to it).
pub fn classify(path: &Path, size: u64, pair: Option<&str>) -> std::io::Result<DiskClass> {
    let file = std::fs::File::open(path)?;
    if let Ok(disk) = gpt::GptConfig::new().writable(false).open(path) {
        let parts: Vec<(u32, &gpt::partition::Partition)> =
            disk.partitions().iter().map(|(n, p)| (*n, p)).collect();
        let has = |ty, name: &str| parts.iter().any(|(_, p)| p.part_type_guid.guid == ty && p.name == name);
        let entry = |n: u32, p: &gpt::partition::Partition| PartitionEntry {
            number: n,
            name: p.name.clone(),
            type_guid: p.part_type_guid.guid,
            guid: p.part_guid,
            first_lba: p.first_lba,
            last_lba: p.last_lba,
        };
        let state = parts.iter().find(|(_, p)| p.part_type_guid.guid == TYPE_VAR && p.name == STATE_LABEL);
        let identity = state.and_then(|(_, p)| state_identity(path, p.first_lba * 512));
        let other_pair = identity.filter(|(id, _)| Some(id.as_str()) != pair);
        if has(TYPE_ESP, "esp") && has(TYPE_ROOT_X86_64, "root-a") && other_pair.is_none() {
            let keep = parts
                .iter()
                .filter(|(_, p)| {
                    (p.part_type_guid.guid == TYPE_VAR && p.name == STATE_LABEL)
                        || p.part_type_guid.guid == TYPE_SRV
                })
                .map(|(n, p)| KeptPartition {
                    number: *n,
                    name: p.name.clone(),
                    size: (p.last_lba - p.first_lba + 1) * 512,
                    entry: entry(*n, p),
                })
                .collect();
            return Ok(DiskClass::Pair { keep });
        }
        let mut findings = vec![format!("a GPT partition table on a {} disk", human(size))];
        if let Some((id, node)) = &other_pair {
            findings.insert(0, format!("a pairos disk of another pair: {node} of pair {id}"));
        }
        for (n, p) in &parts {
            let mut line = format!(
                "partition {n}: name {:?}, type {}, {}",
                p.name,
                p.part_type_guid.guid,
                human((p.last_lba - p.first_lba + 1) * 512)
            );
            for sig in signatures_at(path, p.first_lba * 512) {
                line.push_str(&format!(", {sig}"));
            }
            findings.push(line);
        }
        findings.extend(signatures(path).into_iter().filter(|s| !s.starts_with("PTTYPE=gpt")));
        return Ok(DiskClass::Foreign { findings });
    }
    let sigs = signatures(path);
    if !sigs.is_empty() {
        let mut findings = vec![format!("a {} disk with signatures:", human(size))];
        findings.extend(sigs);
        for (n, kind, start, len) in mbr_partitions(&file) {
            let mut line = format!("MBR partition {n}: type {kind:#04x}, {}", human(len));
            for sig in signatures_at(path, start) {
                line.push_str(&format!(", {sig}"));
            }
            findings.push(line);
        }
        return Ok(DiskClass::Foreign { findings });
    }
    let probe = PROBE.min(size as usize);
    if !zeros_at(&file, 0, probe)? || !zeros_at(&file, size - probe as u64, probe)? {
        return Ok(DiskClass::Foreign {
            findings: vec![format!(
                "no partition table or file system, but data that is not zeros in the first or last MiB of a {} disk",
                human(size)
            )],
        });
    }
    Ok(DiskClass::Blank)
}
