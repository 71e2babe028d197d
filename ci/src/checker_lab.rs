//! The write checker in a lab pair's client namespace: one load that writes through the pair's
//! address for a whole campaign of faults, read back after each one while it goes on writing
//! (a read-back judges the rows acknowledged before its query began), and the service's gap
//! around each fault taken from the history.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pairos_host::Child;
use serde_json::Value;

use crate::pair_lab::PAIR_ADDRESS;
use crate::postgres_pair::PORT;
use crate::write_checker::history::{self, Event};
use crate::{LabError, Netns};

/// How the checker reaches the lab pair's PostgreSQL (the fixed interface of the lab image).
pub fn target() -> String {
    format!("host={PAIR_ADDRESS} port={PORT} user=checker password=checker dbname=checker")
}

/// The service's pause around a moment: the last acknowledgement before it and the first after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Pause {
    pub last_before_ms: u64,
    pub first_after_ms: u64,
}

impl Pause {
    pub fn length_ms(&self) -> u64 {
        self.first_after_ms.saturating_sub(self.last_before_ms)
    }
}

/// A load writing through the pair's address from the client namespace.
#[derive(Debug)]
pub struct LabChecker {
    exe: PathBuf,
    ns: String,
    history: PathBuf,
    load: Child,
}

impl LabChecker {
    /// Starts `exe run` (the `write-checker` binary) in `ns` at `rate` rows a second; its
    /// history goes to `history`, its progress to `history` with `.log`.
    pub fn start(exe: &Path, ns: &Netns, history: &Path, rate: u32) -> Result<Self, LabError> {
        let log = history.with_extension("log");
        let load = ns
            .cmd(&exe.display().to_string())
            .args(["run", "--target", &target(), "--rate", &rate.to_string(), "--history"])
            .arg(history)
            .spawn(Some(&log))?;
        Ok(LabChecker { exe: exe.to_owned(), ns: ns.name().to_owned(), history: history.to_owned(), load })
    }

    pub fn history(&self) -> &Path {
        &self.history
    }

    /// The history so far (none before the load's first line).
    fn events(&self) -> Result<Vec<Event>, LabError> {
        if !self.history.exists() {
            return Ok(Vec::new());
        }
        history::read(&self.history).map_err(|e| {
            let source = std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default();
            LabError::Setup(format!("{e}: {source}"))
        })
    }

    /// The acknowledgement times, in order.
    fn acks(&self) -> Result<Vec<u64>, LabError> {
        let mut acks: Vec<u64> = self
            .events()?
            .iter()
            .filter_map(|e| match e {
                Event::Acked { at_ms, .. } => Some(*at_ms),
                _ => None,
            })
            .collect();
        acks.sort_unstable();
        Ok(acks)
    }

    /// Waits until a row is acknowledged after `since_ms` (the service is back); returns
    /// when. The load must still run.
    pub fn wait_serving(&mut self, since_ms: u64, within: Duration) -> Result<u64, LabError> {
        let start = Instant::now();
        loop {
            self.load.check_running()?;
            if let Some(&at) = self.acks()?.iter().find(|&&at| at > since_ms) {
                return Ok(at);
            }
            if start.elapsed() > within {
                return Err(LabError::Setup(format!(
                    "no row acknowledged within {within:?} after {since_ms} (history {})",
                    self.history.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The service's pause for a fault at `at_ms`: the longest pause between two consecutive
    /// acknowledgements that ends after it (a link cut may freeze writes some seconds after
    /// the cut itself), up to now.
    pub fn pause_after(&self, at_ms: u64) -> Result<Option<Pause>, LabError> {
        let acks = self.acks()?;
        Ok(acks
            .windows(2)
            .filter(|w| w[1] > at_ms)
            .map(|w| Pause { last_before_ms: w[0], first_after_ms: w[1] })
            .max_by_key(Pause::length_ms))
    }

    /// Reads the table back beside the running load (`write-checker check --json`) and
    /// returns the verdict; an error if the checker could not do its work.
    pub fn check(&mut self, wait: Duration) -> Result<Value, LabError> {
        self.load.check_running()?;
        // A failed verdict exits 1 and is still a verdict: std's Command keeps stdout either way.
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(&self.exe)
            .args(["check", "--json", "--wait", &wait.as_secs().to_string(), "--target", &target()])
            .arg("--history")
            .arg(&self.history)
            .output()
            .map_err(crate::error::io(&self.exe))?;
        serde_json::from_slice(&out.stdout).map_err(|e| {
            LabError::Setup(format!(
                "write-checker check printed no verdict ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        })
    }
}
