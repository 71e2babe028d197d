//! The one disk writer, shared by `pairos install`, `pairos recover` and partners' preloading.
//!
//! 1. The manifest's signature is checked by the caller ([`crate::source::verified_manifest`]);
//!    nothing here runs without a verified manifest.
//! 2. The target is classified: blank, a disk of this pair (its state and data partitions are
//!    kept), or foreign (refused unless the caller allows wiping). A disk smaller than the image
//!    is refused, and so is a disk of this pair that holds a newer image (unless the caller
//!    allows a downgrade). Until here nothing has been written.
//! 3. Mapped chunks are fetched by a few threads (memory: threads × 4 MiB), each checked against
//!    its sha256 in memory before any byte reaches the disk; a bad or failed fetch is retried.
//!    Chunks already recorded by an interrupted run are skipped.
//! 4. Must-be-zero ranges are zeroed; don't-care ranges are skipped.
//! 5. The partition table goes last: the image's, made for the disk's real size (backup header
//!    at its end), plus the kept partitions. Then the disk's manifest record
//!    ([`pairos_image::manifest_record`]), so that the node can serve its image later.
//!    Everything is flushed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pairos_image::digest::sha256_hex;
use pairos_image::layout::{DiskLayout, SECTOR};
use pairos_image::manifest::{Chunk, Manifest};
use pairos_image::manifest_record;
use pairos_image::partition_table::write_gpt;
use serde::Serialize;

use crate::classify::{classify, DiskClass};
use crate::disk_identity;
use crate::journal::Journal;
use crate::source::{ImageSource, Verified};
use crate::target::{Target, TargetError};

/// Fetch attempts per chunk before the write gives up.
const ATTEMPTS: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{disk} holds foreign data; refusing to wipe it (the pair's policy does not allow wiping foreign disks). Found:\n  {}", findings.join("\n  "))]
    Foreign { disk: PathBuf, findings: Vec<String> },
    #[error("{disk} is {size} bytes; the image needs at least {needed}")]
    TooSmall { disk: PathBuf, size: u64, needed: u64 },
    #[error("chunk {index} at byte {offset} of {source_name}: {message} (after {ATTEMPTS} attempts)")]
    Chunk { index: usize, offset: u64, source_name: String, message: String },
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("{disk} holds pairos {on_disk}, newer than the image's {image}; refusing to downgrade it (allow it explicitly to go back)")]
    Downgrade { disk: PathBuf, on_disk: String, image: String },
    #[error("write options: {0}")]
    Options(String),
    #[error("the partition table: {0}")]
    Table(String),
    #[error("{disk}: the kept partition {name} starts at byte {offset}, inside the image's {image_size} bytes; refusing to overwrite it")]
    KeptOverlaps { disk: PathBuf, name: String, offset: u64, image_size: u64 },
}

#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Chunks fetched at once.
    pub parallel: usize,
    /// The resume record.
    pub journal: PathBuf,
    /// Wipe a disk that holds foreign data (the pair's explicit policy).
    pub allow_foreign: bool,
    /// The pair this write is for: a disk of that pair keeps its state and data partitions; a
    /// disk of any other pair is foreign.
    pub pair: Option<String>,
    /// Pace the write to at most this many bytes a second (spares a peer that serves workloads).
    pub max_rate: Option<u64>,
    /// Write an image older than the one the disk holds (refused otherwise: a validly signed
    /// old image may carry a known hole, and whoever answers network boot could offer it).
    pub allow_downgrade: bool,
}

/// What the writer reports as it goes, for a terminal or the API.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    Classified { disk: String, class: DiskClass },
    Started { total_bytes: u64, chunks: usize, already_written_bytes: u64, disk_size: u64 },
    Progress { written_bytes: u64, total_bytes: u64, bytes_per_second: u64, seconds_left: u64 },
    Retry { chunk: usize, offset: u64, reason: String },
    Zeroed { bytes: u64 },
    PartitionTable { kept: Vec<String>, backup_at_byte: u64 },
    Finished { written_bytes: u64, skipped_bytes: u64, seconds: f64 },
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub written_bytes: u64,
    pub skipped_bytes: u64,
    pub seconds: f64,
}

/// Fetches `chunk` and checks it, retrying failures and mismatches.
fn fetch_verified(
    source: &dyn ImageSource,
    index: usize,
    chunk: &Chunk,
    events: &mpsc::Sender<Msg>,
) -> Result<Vec<u8>, WriteError> {
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        let reason = match source.disk_range(chunk.offset, chunk.length) {
            Ok(data) if sha256_hex(&data) == chunk.sha256 => return Ok(data),
            Ok(_) => "its sha256 does not match the manifest".to_owned(),
            Err(e) => e.to_string(),
        };
        if attempt < ATTEMPTS {
            let _ = events.send(Msg::Retry(index, reason.clone()));
            std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
        }
        last = reason;
    }
    Err(WriteError::Chunk { index, offset: chunk.offset, source_name: source.describe(), message: last })
}

/// Writes the image's MBR boot code (the disk's BIOS boot) to the target: the first 440 bytes
/// of the image's own table chunk, checked against the manifest like every chunk. The table
/// written next keeps it.
fn write_boot_code(
    source: &dyn ImageSource,
    chunks: &[Chunk],
    target: &Target,
    on_event: &mut dyn FnMut(Event),
) -> Result<(), WriteError> {
    let Some((index, chunk)) = chunks.iter().enumerate().find(|(_, c)| c.partition_table && c.offset == 0)
    else {
        return Ok(());
    };
    let (tx, rx) = mpsc::channel();
    let table = fetch_verified(source, index, chunk, &tx);
    drop(tx);
    for m in rx.try_iter() {
        if let Msg::Retry(chunk, reason) = m {
            on_event(Event::Retry { chunk, offset: 0, reason });
        }
    }
    let table = table?;
    let code = &table[..table.len().min(440)];
    std::os::unix::fs::FileExt::write_all_at(&target.file, code, 0).map_err(|source| WriteError::Io {
        what: format!("writing the boot code to {}", target.path.display()),
        source,
    })
}

enum Msg {
    Written(usize, u64),
    Retry(usize, String),
    Failed(WriteError),
}

/// The image's layout with the kept partitions added (their numbers and places unchanged). A
/// kept partition inside the image's extent (its reserved MiB included) would be overwritten:
/// that is refused, never done.
fn final_layout(image: &DiskLayout, class: &DiskClass, disk: &Target) -> Result<DiskLayout, WriteError> {
    let mut layout = image.clone();
    layout.size = disk.size;
    if let DiskClass::Pair { keep } = class {
        let image_numbers: Vec<u32> = image.partitions.iter().map(|p| p.number).collect();
        for k in keep {
            if image_numbers.contains(&k.entry.number) {
                continue;
            }
            if k.entry.offset() < image.size {
                return Err(WriteError::KeptOverlaps {
                    disk: disk.path.clone(),
                    name: k.name.clone(),
                    offset: k.entry.offset(),
                    image_size: image.size,
                });
            }
            layout.partitions.push(k.entry.clone());
        }
    }
    Ok(layout)
}

/// The disk's manifest record: the source's own when it carries this very manifest (but for
/// the artifact list) signed with the same key, so that an image-sized copy is byte-identical
/// to the build's disk; otherwise one made from the manifest being written.
fn manifest_record(source: &dyn ImageSource, image: &Verified) -> Result<Vec<u8>, WriteError> {
    let offset = manifest_record::offset(&image.manifest.disk.layout);
    let theirs = source.disk_range(offset, manifest_record::CAPACITY).ok().and_then(|bytes| {
        let (m, sig) = manifest_record::decode(&bytes).ok()?;
        let v = Verified::check(m, sig, &image.key).ok()?;
        // The record's manifest lacks only the artifact list (which names disk.raw itself).
        let same = Manifest { artifacts: Vec::new(), ..v.manifest }
            == Manifest { artifacts: Vec::new(), ..image.manifest.clone() };
        same.then_some(bytes)
    });
    match theirs {
        Some(bytes) => Ok(bytes),
        None => manifest_record::encode(&image.bytes, &image.signature)
            .map_err(|e| WriteError::Table(e.to_string())),
    }
}

/// Writes the image described by `manifest` from `source` to `target`. `on_event` sees every
/// step; the caller rate-limits what it shows.
pub fn write_image(
    source: &dyn ImageSource,
    image: &Verified,
    target: Target,
    opts: &WriteOptions,
    on_event: &mut dyn FnMut(Event),
) -> Result<Summary, WriteError> {
    let started = Instant::now();
    let map = &image.manifest.disk;
    let io = |what: String| move |source| WriteError::Io { what, source };

    // Safety first: classify, check the size. Nothing has been written yet. A disk that this very
    // write already began (its resume record names this manifest and this disk) is ours: its
    // table is written last, so mid-write it can look like anything.
    if opts.max_rate == Some(0) {
        return Err(WriteError::Options("max_rate must be at least 1 byte a second".into()));
    }
    let identity = disk_identity::identity(&target.file, &target.path, target.size, map)
        .map_err(io(format!("reading {}", target.path.display())))?;
    let key = format!("{} {identity}", image.digest());
    let resuming = Journal::recorded(&opts.journal, &key) > 0;
    let class = classify(&target.path, target.size, opts.pair.as_deref())
        .map_err(io(format!("reading {}", target.path.display())))?;
    on_event(Event::Classified { disk: target.path.display().to_string(), class: class.clone() });
    if let DiskClass::Foreign { findings } = &class {
        if !opts.allow_foreign && !resuming {
            return Err(WriteError::Foreign { disk: target.path.clone(), findings: findings.clone() });
        }
    }
    if let (DiskClass::Pair { .. }, false) = (&class, opts.allow_downgrade) {
        if let Some(on_disk) = crate::own_image::installed_version(&target.path, &image.key) {
            if pairos_image::version::compare(&on_disk, &image.manifest.version).is_gt() {
                return Err(WriteError::Downgrade {
                    disk: target.path.clone(),
                    on_disk,
                    image: image.manifest.version.clone(),
                });
            }
        }
    }
    if target.size < map.layout.size {
        return Err(WriteError::TooSmall {
            disk: target.path.clone(),
            size: target.size,
            needed: map.layout.size,
        });
    }
    let layout = final_layout(&map.layout, &class, &target)?;

    let mut journal = Journal::open(&opts.journal, &key)
        .map_err(io(format!("the resume record {}", opts.journal.display())))?;
    let data: Vec<(usize, &Chunk)> =
        map.chunks.iter().enumerate().filter(|(_, c)| !c.partition_table).collect();
    let total: u64 = data.iter().map(|(_, c)| c.length).sum();
    let todo: Vec<(usize, &Chunk)> =
        data.iter().copied().filter(|(i, _)| !journal.done.contains(i)).collect();
    let skipped = total - todo.iter().map(|(_, c)| c.length).sum::<u64>();
    on_event(Event::Started {
        total_bytes: total,
        chunks: data.len(),
        already_written_bytes: skipped,
        disk_size: target.size,
    });

    // Chunks, in parallel; the main thread flushes and records them in batches.
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<Msg>();
    let mut written = skipped;
    let mut failure = None;
    std::thread::scope(|scope| {
        for _ in 0..opts.parallel.max(1) {
            let tx = tx.clone();
            let (next, stop, todo, target) = (&next, &stop, &todo, &target);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(index, chunk)) = todo.get(i) else { break };
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let result = fetch_verified(source, index, chunk, &tx)
                    .and_then(|d| target.write_at(&d, chunk.offset).map_err(WriteError::from));
                let msg = match result {
                    Ok(()) => Msg::Written(index, chunk.length),
                    Err(e) => Msg::Failed(e),
                };
                if tx.send(msg).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut batch = Vec::new();
        let mut flushed_at = Instant::now();
        let flush = |batch: &mut Vec<usize>, journal: &mut Journal| -> Result<(), WriteError> {
            if batch.is_empty() {
                return Ok(());
            }
            target.sync()?;
            journal.record(batch).map_err(io(format!("the resume record {}", opts.journal.display())))?;
            batch.clear();
            Ok(())
        };
        let this_run = Instant::now();
        for msg in rx {
            match msg {
                Msg::Written(index, len) => {
                    batch.push(index);
                    written += len;
                    let rate =
                        ((written - skipped) as f64 / this_run.elapsed().as_secs_f64().max(1e-3)) as u64;
                    if let Some(max) = opts.max_rate {
                        let due = Duration::from_secs_f64((written - skipped) as f64 / max as f64);
                        std::thread::sleep(due.saturating_sub(this_run.elapsed()));
                    }
                    on_event(Event::Progress {
                        written_bytes: written,
                        total_bytes: total,
                        bytes_per_second: rate,
                        seconds_left: (total - written).checked_div(rate.max(1)).unwrap_or(0),
                    });
                    if batch.len() >= 16 || flushed_at.elapsed() > Duration::from_secs(1) {
                        if let Err(e) = flush(&mut batch, &mut journal) {
                            stop.store(true, Ordering::Relaxed);
                            failure.get_or_insert(e);
                        }
                        flushed_at = Instant::now();
                    }
                }
                Msg::Retry(index, reason) => {
                    let offset = map.chunks[index].offset;
                    on_event(Event::Retry { chunk: index, offset, reason });
                }
                Msg::Failed(e) => {
                    stop.store(true, Ordering::Relaxed);
                    failure.get_or_insert(e);
                }
            }
        }
        if let Err(e) = flush(&mut batch, &mut journal) {
            failure.get_or_insert(e);
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }

    // Zeros where the image says so.
    let zero_bytes: u64 = map.zero.iter().map(|r| r.length).sum();
    for r in &map.zero {
        target.zero(r.offset, r.length)?;
    }
    on_event(Event::Zeroed { bytes: zero_bytes });

    // The partition table, last. The region before the first partition is cleared first, so
    // that nothing of an earlier table survives beside the new one.
    let first = layout.partitions.iter().map(|p| p.first_lba * SECTOR).min().unwrap_or(SECTOR * 34);
    target.zero(0, first)?;
    write_boot_code(source, &map.chunks, &target, on_event)?;
    target.sync()?;
    let path = target.path.clone();
    let file = write_gpt(&path, target.file, &layout).map_err(|e| WriteError::Table(e.to_string()))?;
    let record = manifest_record(source, image)?;
    std::os::unix::fs::FileExt::write_all_at(&file, &record, manifest_record::offset(&map.layout))
        .map_err(io(format!("writing the manifest record to {}", path.display())))?;
    file.sync_all().map_err(io(format!("flushing {}", path.display())))?;
    let kept = match &class {
        DiskClass::Pair { keep } => keep.iter().map(|k| k.name.clone()).collect(),
        _ => Vec::new(),
    };
    on_event(Event::PartitionTable { kept, backup_at_byte: layout.size - 33 * SECTOR });
    journal.finish().map_err(io(format!("removing the resume record {}", opts.journal.display())))?;
    let seconds = started.elapsed().as_secs_f64();
    on_event(Event::Finished { written_bytes: written - skipped, skipped_bytes: skipped, seconds });
    Ok(Summary { written_bytes: written - skipped, skipped_bytes: skipped, seconds })
}
