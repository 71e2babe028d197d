//! Delivery: one thread per destination, each with its own queue, so a slow mail server holds
//! up neither the traps nor the console. A failed send is tried again after 2, 4, 8 ... up to
//! 300 s, ten times in all, then dropped with a line in the log.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use super::{Destination, Notice};

const ATTEMPTS: u32 = 10;
const LONGEST_BACKOFF: Duration = Duration::from_secs(300);

/// The senders of the destinations in force.
#[derive(Debug, Default)]
pub struct Dispatch {
    senders: Vec<(Destination, Sender<Notice>)>,
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(2u64.saturating_pow(attempt)).min(LONGEST_BACKOFF)
}

fn deliver(to: Destination, queue: Receiver<Notice>, say: fn(String)) {
    let mut pending: VecDeque<(Notice, u32, Instant)> = VecDeque::new();
    loop {
        let wait = pending
            .front()
            .map_or(Duration::from_secs(3600), |(_, _, at)| at.saturating_duration_since(Instant::now()));
        match queue.recv_timeout(wait) {
            Ok(n) => pending.push_back((n, 0, Instant::now())),
            Err(RecvTimeoutError::Timeout) => {}
            // The destinations changed (or the console ends): what is queued goes with it.
            Err(RecvTimeoutError::Disconnected) => return,
        }
        while let Some((n, attempt, at)) = pending.front().cloned() {
            if at > Instant::now() {
                break;
            }
            pending.pop_front();
            match to.send(&n) {
                Ok(()) => say(format!("console: alarm {} ({}) sent: {}", n.id, n.severity, to.name())),
                Err(e) if attempt + 1 >= ATTEMPTS => say(format!(
                    "console: alarm {} dropped after {ATTEMPTS} attempts: {}: {e}",
                    n.id,
                    to.name()
                )),
                Err(e) => {
                    say(format!(
                        "console: alarm {} not sent ({}), again in {:?}: {e}",
                        n.id,
                        to.name(),
                        backoff(attempt + 1)
                    ));
                    pending.push_back((n, attempt + 1, Instant::now() + backoff(attempt + 1)));
                }
            }
        }
    }
}

impl Dispatch {
    /// Starts a thread for each destination (the old threads end with their senders).
    pub fn set(&mut self, destinations: Vec<Destination>, say: fn(String)) {
        if self.senders.iter().map(|(d, _)| d).eq(destinations.iter()) {
            return;
        }
        self.senders = destinations
            .into_iter()
            .map(|d| {
                let (tx, rx) = mpsc::channel();
                let to = d.clone();
                std::thread::spawn(move || deliver(to, rx, say));
                (d, tx)
            })
            .collect();
    }

    pub fn send(&self, n: &Notice) {
        for (_, tx) in &self.senders {
            let _ = tx.send(n.clone());
        }
    }
}

/// Looks at the node's state every two seconds and sends what is new, forever.
pub(crate) fn watch(c: &crate::console::Console, say: fn(String)) {
    use super::feed::{Told, FILE};
    let path = c.sources.run_dir.join(FILE);
    let mut told: Told = match std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
        Some(t) => t,
        None => Told::starting(&c.snapshot()),
    };
    let mut dispatch = Dispatch::default();
    loop {
        dispatch.set(Destination::all(&c.settings().alarms), say);
        let notices = told.next(&c.snapshot(), &c.pair_id, crate::console::unix_secs());
        if !notices.is_empty() {
            for n in &notices {
                dispatch.send(n);
            }
            if let Err(e) =
                pairos_host::write_atomically(&path, &serde_json::to_vec(&told).expect("serialises"))
            {
                say(format!("console: cannot keep what was told ({}): {e}", path.display()));
            }
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(super::backoff(1).as_secs(), 2);
        assert_eq!(super::backoff(3).as_secs(), 8);
        assert_eq!(super::backoff(20).as_secs(), 300);
    }
}
