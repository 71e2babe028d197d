//! The writer's events as console lines, for the recovery agent and the installer: every step,
//! and the write's progress at each tenth or every 5 s.

use std::time::{Duration, Instant};

use pairos_recovery::writer::Event;

pub struct ConsoleProgress {
    say: fn(&str),
    shown: Option<(Instant, u64)>,
}

impl ConsoleProgress {
    pub fn new(say: fn(&str)) -> ConsoleProgress {
        ConsoleProgress { say, shown: None }
    }

    /// Shows `e` if it is worth a line; returns the progress line when one was shown.
    pub fn show(&mut self, e: &Event) -> Option<String> {
        match e {
            Event::Classified { disk, class } => {
                (self.say)(&format!("{disk}: {}", serde_json::to_string(class).unwrap_or_default()))
            }
            Event::Progress { written_bytes, total_bytes, bytes_per_second, seconds_left } => {
                let tenth = (written_bytes * 10).checked_div(*total_bytes).unwrap_or(0);
                let due = match self.shown {
                    None => true,
                    Some((at, t)) => t != tenth || at.elapsed() > Duration::from_secs(5),
                };
                if due {
                    self.shown = Some((Instant::now(), tenth));
                    let line = format!(
                        "{} of {} MiB, {} MiB/s, {seconds_left} s left",
                        written_bytes >> 20,
                        total_bytes >> 20,
                        bytes_per_second >> 20
                    );
                    (self.say)(&line);
                    return Some(line);
                }
            }
            Event::Retry { chunk, reason, .. } => {
                (self.say)(&format!("chunk {chunk}: {reason}; fetching it again"))
            }
            Event::Finished { written_bytes, seconds, .. } => {
                (self.say)(&format!("image written: {} MiB in {seconds:.1} s", written_bytes >> 20))
            }
            _ => {}
        }
        None
    }
}
