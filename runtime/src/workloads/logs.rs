//! A workload's output, kept in the state partition, bounded and rotated: `NAME.log` grows to
//! the limit, then becomes `NAME.log.1` (the one before becomes `.2`, and so on; the oldest
//! beyond `keep` goes). Lines from stdout and stderr go to the same file, each whole.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;

/// Where workloads' logs are kept on a node: in the state partition, 1 MiB per file, the
/// current one and 3 rotated.
pub fn on_node(state_dir: &std::path::Path) -> LogPolicy {
    LogPolicy { dir: state_dir.join("workload-logs"), max_bytes: 1 << 20, keep: 3 }
}

/// Where a workload's log goes and how much of it is kept.
#[derive(Debug, Clone)]
pub struct LogPolicy {
    pub dir: PathBuf,
    /// Bytes a file may reach before it is rotated.
    pub max_bytes: u64,
    /// Rotated files kept besides the current one.
    pub keep: u32,
}

impl LogPolicy {
    pub fn file(&self, workload: &str) -> PathBuf {
        self.dir.join(format!("{workload}.log"))
    }

    fn rotated(&self, workload: &str, n: u32) -> PathBuf {
        self.dir.join(format!("{workload}.log.{n}"))
    }
}

/// Appends lines to a workload's log, rotating it at the limit.
#[derive(Debug)]
pub struct LogWriter {
    policy: LogPolicy,
    workload: String,
    file: File,
    size: u64,
}

impl LogWriter {
    pub fn open(policy: &LogPolicy, workload: &str) -> std::io::Result<LogWriter> {
        std::fs::create_dir_all(&policy.dir)?;
        let file = OpenOptions::new().create(true).append(true).open(policy.file(workload))?;
        let size = file.metadata()?.len();
        Ok(LogWriter { policy: policy.clone(), workload: workload.to_owned(), file, size })
    }

    /// Writes one line (a newline is added).
    pub fn line(&mut self, line: &str) -> std::io::Result<()> {
        let bytes = line.len() as u64 + 1;
        if self.size > 0 && self.size + bytes > self.policy.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(format!("{line}\n").as_bytes())?;
        self.size += bytes;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let p = &self.policy;
        let _ = std::fs::remove_file(p.rotated(&self.workload, p.keep.max(1)));
        for n in (1..p.keep.max(1)).rev() {
            let _ = std::fs::rename(p.rotated(&self.workload, n), p.rotated(&self.workload, n + 1));
        }
        if p.keep == 0 {
            std::fs::remove_file(p.file(&self.workload))?;
        } else {
            std::fs::rename(p.file(&self.workload), p.rotated(&self.workload, 1))?;
        }
        self.file = OpenOptions::new().create(true).append(true).open(p.file(&self.workload))?;
        self.size = 0;
        Ok(())
    }
}

/// Copies a child's output stream into the log, line by line, until it closes.
pub fn pump(stream: impl Read, writer: std::sync::Arc<std::sync::Mutex<LogWriter>>) {
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        let mut w = writer.lock().expect("not poisoned");
        if w.line(&line).is_err() {
            break;
        }
    }
}

/// The last `lines` lines of a workload's log, oldest first, across its rotated files.
pub fn tail(policy: &LogPolicy, workload: &str, lines: usize) -> std::io::Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut files = vec![policy.file(workload)];
    files.extend((1..=policy.keep).map(|n| policy.rotated(workload, n)));
    for f in files {
        if out.len() >= lines {
            break;
        }
        let text = match std::fs::read_to_string(&f) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut older: Vec<String> = text.lines().map(str::to_owned).collect();
        older.append(&mut out);
        out = older;
    }
    let skip = out.len().saturating_sub(lines);
    Ok(out.split_off(skip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_rotate_at_the_limit_keep_a_bounded_number_and_read_back_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let policy = LogPolicy { dir: dir.path().to_owned(), max_bytes: 100, keep: 2 };
        let mut w = LogWriter::open(&policy, "db").expect("open");
        for i in 0..40 {
            w.line(&format!("line {i:03}")).expect("written"); // 9 bytes each with the newline
        }
        let sizes: Vec<u64> = ["db.log", "db.log.1", "db.log.2"]
            .iter()
            .map(|f| std::fs::metadata(dir.path().join(f)).expect("exists").len())
            .collect();
        assert!(sizes.iter().all(|s| *s <= 100), "{sizes:?}");
        assert!(!dir.path().join("db.log.3").exists(), "no more than `keep` rotated files");
        let last = tail(&policy, "db", 5).expect("tail");
        assert_eq!(last, ["line 035", "line 036", "line 037", "line 038", "line 039"]);
        // Across files: everything kept, oldest first, ending with the newest.
        let all = tail(&policy, "db", 1000).expect("tail");
        assert_eq!(all.last().map(String::as_str), Some("line 039"));
        assert!(all.windows(2).all(|w| w[0] < w[1]), "in order: {all:?}");
        assert!(all.len() < 40, "bounded: the oldest lines are gone");
        assert_eq!(tail(&policy, "none", 10).expect("none"), Vec::<String>::new());
    }
}
