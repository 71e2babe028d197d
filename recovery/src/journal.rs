//! The resume record: which chunks have been verified and are on the disk. Each batch is
//! appended only after the disk has been flushed, so a recorded chunk is never lost, and a
//! resumed write skips exactly those. The record names the manifest and the target disk's
//! identity ([`crate::disk_identity`]); a record for anything else is ignored, and the disk is
//! classified afresh. Torn lines (cut by a crash) are neither trusted nor counted.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

fn header(key: &str) -> String {
    format!("pairos-write 2 {key}")
}

#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    pub done: HashSet<usize>,
}

impl Journal {
    /// Opens the record at `path` for the write identified by `key` (the manifest's digest and the
    /// target's identity); returns it with the chunks already done.
    pub fn open(path: &Path, key: &str) -> std::io::Result<Journal> {
        let found = Self::read(path, key);
        let matches = found.is_some();
        let done = found.unwrap_or_default();
        if !matches {
            let mut f = File::create(path)?;
            writeln!(f, "{}", header(key))?;
            f.sync_all()?;
        }
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(Journal { path: path.to_owned(), file, done })
    }

    /// The chunks a record at `path` holds for the write `key`; `None` if it is missing or
    /// records another write. A line cut by a crash (no final `.`) does not parse and is not
    /// counted.
    fn read(path: &Path, key: &str) -> Option<HashSet<usize>> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut lines = text.lines();
        (lines.next()? == header(key))
            .then(|| lines.filter_map(|l| l.strip_suffix('.')?.parse::<usize>().ok()).collect())
    }

    /// How many chunks a record at `path` holds for the write `key`, without creating anything.
    pub fn recorded(path: &Path, key: &str) -> usize {
        Self::read(path, key).map_or(0, |done| done.len())
    }

    /// Records `chunks` as on the disk. Call only after the disk was flushed.
    pub fn record(&mut self, chunks: &[usize]) -> std::io::Result<()> {
        let mut text = String::new();
        for c in chunks {
            text.push_str(&format!("{c}.\n"));
        }
        self.file.write_all(text.as_bytes())?;
        self.file.sync_data()?;
        self.done.extend(chunks);
        Ok(())
    }

    /// The write is complete: the record goes.
    pub fn finish(self) -> std::io::Result<()> {
        std::fs::remove_file(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopening_and_a_different_write_starts_over() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("j");
        let mut j = Journal::open(&p, "m1 100").expect("open");
        assert!(j.done.is_empty());
        j.record(&[3, 1]).expect("record");
        drop(j);
        // A torn line at the end is ignored.
        std::fs::OpenOptions::new().append(true).open(&p).expect("o").write_all(b"7").expect("w");
        let j = Journal::open(&p, "m1 100").expect("reopen");
        assert_eq!(j.done, HashSet::from([1, 3]));
        assert_eq!(Journal::recorded(&p, "m1 100"), 2, "two chunks; the torn line is not counted");
        assert_eq!(Journal::recorded(&p, "m2 100"), 0);
        assert_eq!(Journal::recorded(&d.path().join("none"), "m1 100"), 0);
        let j = Journal::open(&p, "m2 100").expect("other write");
        assert!(j.done.is_empty(), "a record of another write is not trusted");
    }
}
