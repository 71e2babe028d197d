//! The disk being written: a block device, or a disk image file (for partners' preloading and
//! for tests). Opened exclusively; its size is the real one; zeroing uses the kernel's
//! guaranteed zeroing where there is one.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{fallocate, FallocateFlags, OFlag};

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{path}: {what}: {source}")]
    Io { path: PathBuf, what: &'static str, source: std::io::Error },
    #[error("{path}: expected a block device or a disk image file")]
    NotADisk { path: PathBuf },
    #[error("{path} is in use ({why}); refusing to write to it")]
    InUse { path: PathBuf, why: String },
}

#[derive(Debug)]
pub struct Target {
    pub path: PathBuf,
    pub file: File,
    pub size: u64,
    pub is_block: bool,
}

/// Mount points of `dev` or of its partitions, from /proc/mounts.
fn mounts_of(dev: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mounts") else { return Vec::new() };
    let dev = dev.to_string_lossy();
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (src, at) = (f.next()?, f.next()?);
            let ours = src == dev
                || src.strip_prefix(dev.as_ref()).is_some_and(|rest| {
                    rest.trim_start_matches('p').chars().next().is_some_and(|c| c.is_ascii_digit())
                });
            ours.then(|| format!("{src} on {at}"))
        })
        .collect()
}

impl Target {
    /// Opens `path` for writing. A missing file is created with `create_size` bytes (sparse);
    /// a block device is opened with O_EXCL, which the kernel refuses while anything (a mount,
    /// device-mapper, md) holds it or one of its partitions.
    pub fn open(path: &Path, create_size: Option<u64>) -> Result<Target, TargetError> {
        let io = |what| move |source| TargetError::Io { path: path.to_owned(), what, source };
        let exists = path.exists();
        if !exists {
            let Some(size) = create_size else {
                return Err(TargetError::Io {
                    path: path.to_owned(),
                    what: "opening",
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                });
            };
            let f = OpenOptions::new().write(true).create_new(true).open(path).map_err(io("creating"))?;
            f.set_len(size).map_err(io("sizing"))?;
        }
        let meta = std::fs::metadata(path).map_err(io("reading metadata"))?;
        let is_block = meta.file_type().is_block_device();
        if !is_block && !meta.is_file() {
            return Err(TargetError::NotADisk { path: path.to_owned() });
        }
        if is_block {
            let mounted = mounts_of(path);
            if !mounted.is_empty() {
                return Err(TargetError::InUse { path: path.to_owned(), why: mounted.join(", ") });
            }
        }
        let mut opts = OpenOptions::new();
        opts.read(true).write(true);
        if is_block {
            opts.custom_flags(OFlag::O_EXCL.bits());
        }
        let mut file = match opts.open(path) {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) => {
                return Err(TargetError::InUse {
                    path: path.to_owned(),
                    why: "held by the kernel: mounted, or part of a device-mapper or md device".into(),
                })
            }
            Err(e) => return Err(io("opening for writing")(e)),
        };
        let size = file.seek(SeekFrom::End(0)).map_err(io("finding its size"))?;
        Ok(Target { path: path.to_owned(), file, size, is_block })
    }

    pub fn write_at(&self, data: &[u8], offset: u64) -> Result<(), TargetError> {
        self.file.write_all_at(data, offset).map_err(|source| TargetError::Io {
            path: self.path.clone(),
            what: "writing",
            source,
        })
    }

    /// Makes `length` bytes at `offset` read back as zeros: ZERO_RANGE on a block device
    /// (BLKZEROOUT's fallocate form, which guarantees zeros), a punched hole in a file, or
    /// written zeros where neither is supported.
    pub fn zero(&self, offset: u64, length: u64) -> Result<(), TargetError> {
        let flags = if self.is_block {
            FallocateFlags::FALLOC_FL_ZERO_RANGE
        } else {
            FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE
        };
        if fallocate(self.file.as_raw_fd(), flags, offset as i64, length as i64).is_ok() {
            return Ok(());
        }
        let zeros = vec![0u8; (1 << 20).min(length) as usize];
        let mut done = 0;
        while done < length {
            let n = zeros.len().min((length - done) as usize);
            self.write_at(&zeros[..n], offset + done)?;
            done += n as u64;
        }
        Ok(())
    }

    /// Everything written so far is on the disk.
    pub fn sync(&self) -> Result<(), TargetError> {
        self.file.sync_data().map_err(|source| TargetError::Io {
            path: self.path.clone(),
            what: "flushing to disk",
            source,
        })
    }
}
