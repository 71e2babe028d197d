//! The checker's history: one JSON object per line, appended and flushed as each event happens,
//! so that a checker killed at any moment leaves every finished line readable (a torn last
//! line is skipped when the history is read).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// One line of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// The checker started writing to `target`, one transaction per row, at `rate` a second.
    Started { at_ms: u64, target: String, rate: u32 },
    /// An INSERT of row `id` was sent.
    Sent { at_ms: u64, id: u64 },
    /// The server said the INSERT of `id` committed.
    Acked { at_ms: u64, id: u64 },
    /// The server refused the INSERT of `id` (an error from the server: it did not commit).
    Refused { at_ms: u64, id: u64, error: String },
    /// The connection broke or timed out before an answer: `id` may or may not be committed.
    Unanswered { at_ms: u64, id: u64, error: String },
    /// The checker could not reach the server (nothing was sent).
    Unreachable { at_ms: u64, error: String },
    /// What the table held when it was read back: each row's id (a repeated id is listed
    /// again), and the ids whose value is not the one the checker wrote. `began_ms` is when the
    /// reading query was sent: a row acknowledged before then must be in it; one acknowledged
    /// later (a load still writing beside the check) is judged by a later read-back.
    ReadBack {
        at_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        began_ms: Option<u64>,
        ids: Vec<u64>,
        wrong_values: Vec<u64>,
    },
}

impl Event {
    /// When the event happened, in milliseconds since the Unix epoch.
    pub fn at_ms(&self) -> u64 {
        match self {
            Event::Started { at_ms, .. }
            | Event::Sent { at_ms, .. }
            | Event::Acked { at_ms, .. }
            | Event::Refused { at_ms, .. }
            | Event::Unanswered { at_ms, .. }
            | Event::Unreachable { at_ms, .. }
            | Event::ReadBack { at_ms, .. } => *at_ms,
        }
    }
}

/// The value the checker writes in row `id` (read back to catch a row that is not ours).
pub fn value_of(id: u64) -> String {
    format!("pairos-checker-{id}")
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Appends events to a history file.
#[derive(Debug)]
pub struct HistoryWriter {
    path: PathBuf,
    file: File,
}

impl HistoryWriter {
    /// Opens `path` for appending (created if missing).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self { path: path.to_owned(), file })
    }

    /// Writes one event as one line, in one write.
    pub fn record(&mut self, event: &Event) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(event).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A history that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("reading the history {path}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("history {path}, line {line}: expected a checker event (JSON with an \"event\" field)")]
    Line { path: PathBuf, line: usize, source: serde_json::Error },
}

/// Reads every event of a history. A damaged line is an error, except the last one, which a
/// checker killed mid-write may have left torn.
pub fn read(path: &Path) -> Result<Vec<Event>, HistoryError> {
    let io = |source| HistoryError::Io { path: path.to_owned(), source };
    let file = File::open(path).map_err(io)?;
    let lines: Vec<String> = BufReader::new(file).lines().collect::<Result<_, _>>().map_err(io)?;
    let mut events = Vec::with_capacity(lines.len());
    for (n, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(e) => events.push(e),
            Err(_) if n + 1 == lines.len() && !line.ends_with('}') => {}
            Err(source) => return Err(HistoryError::Line { path: path.to_owned(), line: n + 1, source }),
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_written_one_per_line_and_a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("history.jsonl");
        let mut w = HistoryWriter::open(&path).expect("open");
        let events = [
            Event::Started { at_ms: 1, target: "host=x".into(), rate: 10 },
            Event::Sent { at_ms: 2, id: 1 },
            Event::Acked { at_ms: 3, id: 1 },
        ];
        for e in &events {
            w.record(e).expect("record");
        }
        std::fs::write(&path, std::fs::read_to_string(&path).expect("read") + "{\"event\":\"sent\",\"at")
            .expect("tear");
        assert_eq!(read(&path).expect("history"), events);

        std::fs::write(&path, "{\"event\":\"sent\"}\n{\"event\":\"acked\",\"at_ms\":1,\"id\":1}\n")
            .expect("write");
        let err = read(&path).expect_err("a damaged line that is not the last").to_string();
        assert!(err.contains("line 1") && err.contains("history"), "{err}");
    }
}
