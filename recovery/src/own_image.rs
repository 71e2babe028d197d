//! A node's own disk as an image source: what the peer side serves a blank node.
//!
//! The disk carries its signed manifest ([`pairos_image::manifest_record`]). The image's
//! partitions sit where the manifest says and are byte-identical to the build: slot A's root
//! and verity are read-only, and the ESP is never written. So every mapped chunk can be read
//! from the disk, and each is checked against its sha256 before it is served. The partition
//! table chunks are made again for the image's size, since the node's own table has grown (its
//! state partition, the backup header at the real end), and checked the same way. Must-be-zero
//! and don't-care ranges are served as zeros, except for the manifest record itself. Nothing
//! depends on the build folder.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ed25519_dalek::VerifyingKey;
use pairos_image::digest::sha256_hex;
use pairos_image::layout::DiskLayout;
use pairos_image::manifest::{Chunk, ManifestError};
use pairos_image::manifest_record;
use pairos_image::partition_table::write_gpt;

use crate::source::{ImageSource, SourceError, Verified};

/// The image's own partitions, by name; state and data partitions come after them.
const IMAGE_PARTITIONS: [&str; 5] = ["esp", "root-a", "verity-a", "root-b", "verity-b"];

#[derive(Debug, thiserror::Error)]
pub enum OwnImageError {
    #[error("{disk}: {what}: {source}")]
    Io { disk: PathBuf, what: String, source: std::io::Error },
    #[error("{disk}: {message}")]
    Disk { disk: PathBuf, message: String },
    #[error("{disk}: the manifest it carries: {source}")]
    Record { disk: PathBuf, source: SourceError },
}

/// What a disk says of the image it holds.
struct Record {
    file: File,
    /// Its partitions, as its GPT has them.
    parts: Vec<gpt::partition::Partition>,
    /// Where the manifest record is, and its bytes.
    offset: u64,
    bytes: Vec<u8>,
    image: Verified,
}

/// The image a disk holds, from the manifest record after its image partitions, checked with
/// `key`.
fn read_record(disk: &Path, key: &VerifyingKey) -> Result<Record, OwnImageError> {
    let io = |what: &str| {
        let (disk, what) = (disk.to_owned(), what.to_owned());
        move |source| OwnImageError::Io { disk, what, source }
    };
    let bad = |message: String| OwnImageError::Disk { disk: disk.to_owned(), message };
    let gpt =
        gpt::GptConfig::new().writable(false).open(disk).map_err(|e| bad(format!("reading its GPT: {e}")))?;
    let parts: Vec<_> = gpt.partitions().values().filter(|p| p.is_used()).cloned().collect();
    let image_end = parts
        .iter()
        .filter(|p| IMAGE_PARTITIONS.contains(&p.name.as_str()))
        .map(|p| p.last_lba)
        .max()
        .ok_or_else(|| bad("its GPT has none of the image's partitions (esp, root-a, ...)".into()))?;
    let file = File::open(disk).map_err(io("opening"))?;
    let offset = manifest_record::offset_after(image_end);
    let mut record = vec![0u8; manifest_record::CAPACITY as usize];
    file.read_exact_at(&mut record, offset).map_err(io("reading the manifest record"))?;
    let record_err = |source: SourceError| OwnImageError::Record { disk: disk.to_owned(), source };
    let (bytes, sig) = manifest_record::decode(&record).map_err(|e| record_err(SourceError::Manifest(e)))?;
    let image = Verified::check(bytes, sig, key).map_err(record_err)?;
    Ok(Record { file, parts, offset, bytes: record, image })
}

/// The version of the image `disk` holds, if it carries a manifest signed with `key`.
pub fn installed_version(disk: &Path, key: &VerifyingKey) -> Option<String> {
    read_record(disk, key).ok().map(|r| r.image.manifest.version)
}

#[derive(Debug)]
pub struct OwnImage {
    disk: PathBuf,
    file: File,
    image: Verified,
    /// The partition-table chunks, made again for an image-sized disk: (offset, bytes).
    table: Vec<(u64, Vec<u8>)>,
    record: (u64, Vec<u8>),
    /// The chunks verified last, by offset: a run of small range requests over one chunk costs
    /// one read and one hash, not one each.
    recent: Mutex<VecDeque<(u64, Arc<Vec<u8>>)>>,
}

/// Verified chunks kept in memory (4 MiB each).
const RECENT: usize = 8;

impl OwnImage {
    /// Opens `disk` (read-only, while it is in use), reads and checks the manifest it carries
    /// with `key`, and checks that its partitions are where the manifest puts them.
    pub fn open(disk: &Path, key: &VerifyingKey) -> Result<OwnImage, OwnImageError> {
        let bad = |message: String| OwnImageError::Disk { disk: disk.to_owned(), message };
        let Record { file, parts, offset, bytes: record, image } = read_record(disk, key)?;
        let layout = &image.manifest.disk.layout;
        if manifest_record::offset(layout) != offset {
            return Err(bad(format!(
                "the manifest record is at byte {offset}, but its manifest puts it at {}",
                manifest_record::offset(layout)
            )));
        }
        for want in &layout.partitions {
            let same = parts.iter().any(|p| {
                p.name == want.name
                    && p.first_lba == want.first_lba
                    && p.last_lba == want.last_lba
                    && p.part_type_guid.guid == want.type_guid
                    && p.part_guid == want.guid
            });
            if !same {
                return Err(bad(format!(
                    "partition {} is not where the image puts it (LBA {}..{})",
                    want.name, want.first_lba, want.last_lba
                )));
            }
        }
        let table = regenerate_table(disk, &image)?;
        Ok(OwnImage {
            disk: disk.to_owned(),
            file,
            image,
            table,
            record: (offset, record),
            recent: Mutex::new(VecDeque::new()),
        })
    }

    pub fn verified(&self) -> &Verified {
        &self.image
    }

    /// The chunk's bytes, read from the disk and checked against the manifest, or as they were
    /// when they were checked a moment ago.
    fn verified_chunk(&self, c: &Chunk) -> Result<Arc<Vec<u8>>, SourceError> {
        let mut recent = self.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, data)) = recent.iter().find(|(at, _)| *at == c.offset) {
            return Ok(data.clone());
        }
        drop(recent);
        let io = |source| SourceError::Io { what: format!("reading {}", self.disk.display()), source };
        let mut data = vec![0u8; c.length as usize];
        self.file.read_exact_at(&mut data, c.offset).map_err(io)?;
        if sha256_hex(&data) != c.sha256 {
            return Err(SourceError::Manifest(ManifestError::Invalid(format!(
                "{} differs from the signed image at byte {}: this node will not serve it",
                self.disk.display(),
                c.offset
            ))));
        }
        let data = Arc::new(data);
        recent = self.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if recent.len() >= RECENT {
            recent.pop_front();
        }
        recent.push_back((c.offset, data.clone()));
        Ok(data)
    }
}

/// The image-sized disk's partition table chunks, checked against the manifest.
fn regenerate_table(disk: &Path, image: &Verified) -> Result<Vec<(u64, Vec<u8>)>, OwnImageError> {
    let io = |what: &'static str| {
        let disk = disk.to_owned();
        move |source| OwnImageError::Io { disk, what: what.into(), source }
    };
    let layout: &DiskLayout = &image.manifest.disk.layout;
    let scratch = tempfile::tempfile().map_err(io("making a scratch file for the partition table"))?;
    scratch.set_len(layout.size).map_err(io("sizing the scratch file"))?;
    // The MBR's boot code (the BIOS boot's) is the image's, kept by every rewrite of the table;
    // write_gpt keeps what the scratch file holds there. The manifest's hash checks it below.
    let mut bootcode = [0u8; 440];
    std::fs::File::open(disk)
        .and_then(|f| f.read_exact_at(&mut bootcode, 0))
        .map_err(io("reading the MBR's boot code"))?;
    scratch.write_all_at(&bootcode, 0).map_err(io("writing the scratch file"))?;
    let scratch = write_gpt(Path::new("(scratch)"), scratch, layout)
        .map_err(|e| OwnImageError::Disk { disk: disk.to_owned(), message: e.to_string() })?;
    let mut out = Vec::new();
    for c in image.manifest.disk.chunks.iter().filter(|c| c.partition_table) {
        let mut buf = vec![0u8; c.length as usize];
        scratch.read_exact_at(&mut buf, c.offset).map_err(io("reading the scratch file"))?;
        if sha256_hex(&buf) != c.sha256 {
            return Err(OwnImageError::Disk {
                disk: disk.to_owned(),
                message: format!(
                    "the partition table made again for the image differs from its manifest at byte {}",
                    c.offset
                ),
            });
        }
        out.push((c.offset, buf));
    }
    Ok(out)
}

/// Copies the part of `src` (which starts at `src_at` on the disk) that overlaps the window
/// `buf` (which starts at `at`).
fn overlay(buf: &mut [u8], at: u64, src: &[u8], src_at: u64) {
    let start = at.max(src_at);
    let end = (at + buf.len() as u64).min(src_at + src.len() as u64);
    if start < end {
        buf[(start - at) as usize..(end - at) as usize]
            .copy_from_slice(&src[(start - src_at) as usize..(end - src_at) as usize]);
    }
}

impl ImageSource for OwnImage {
    fn describe(&self) -> String {
        format!("the image on {}", self.disk.display())
    }

    fn file(&self, name: &str) -> Result<Vec<u8>, SourceError> {
        match name {
            "manifest.json" => Ok(self.image.bytes.clone()),
            "manifest.sig" => Ok(self.image.signature.clone()),
            other => Err(SourceError::Io {
                what: format!("{other} from {}", self.describe()),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            }),
        }
    }

    fn disk_range(&self, offset: u64, length: u64) -> Result<Vec<u8>, SourceError> {
        let map = &self.image.manifest.disk;
        let end = offset.checked_add(length).filter(|&e| e <= map.layout.size).ok_or_else(|| {
            SourceError::Short {
                what: format!("{} at byte {offset}", self.describe()),
                expected: length,
                got: map.layout.size.saturating_sub(offset),
            }
        })?;
        // Zeros, then the verified chunks, the table and the record: must-be-zero and
        // don't-care ranges stay zero whatever the disk holds there.
        let mut buf = vec![0u8; length as usize];
        for c in map.chunks.iter().filter(|c| !c.partition_table) {
            if c.offset >= end || c.offset + c.length <= offset {
                continue;
            }
            let data = self.verified_chunk(c)?;
            overlay(&mut buf, offset, &data, c.offset);
        }
        for (at, bytes) in &self.table {
            overlay(&mut buf, offset, bytes, *at);
        }
        overlay(&mut buf, offset, &self.record.1, self.record.0);
        Ok(buf)
    }
}
