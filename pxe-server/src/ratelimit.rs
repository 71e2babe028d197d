//! Rate limiting for log lines a network packet can trigger: a flood of packets must not flood
//! the log (or the console) too.

use std::time::{Duration, Instant};

/// Lets through at most `per_second` events a second; counts the rest.
#[derive(Debug)]
pub struct RateLimit {
    per_second: u32,
    window: Instant,
    used: u32,
    suppressed: u64,
}

impl RateLimit {
    pub fn new(per_second: u32) -> Self {
        RateLimit { per_second, window: Instant::now(), used: 0, suppressed: 0 }
    }

    /// Whether to log now. When a new second starts, returns how many lines the last one
    /// suppressed, so that the caller can say so.
    pub fn allow(&mut self, now: Instant) -> (bool, u64) {
        let mut dropped = 0;
        if now.duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
            self.used = 0;
            dropped = std::mem::take(&mut self.suppressed);
        }
        if self.used < self.per_second {
            self.used += 1;
            (true, dropped)
        } else {
            self.suppressed += 1;
            (false, dropped)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_cut_and_counted() {
        let mut r = RateLimit::new(3);
        let t = Instant::now();
        let allowed = (0..10).filter(|_| r.allow(t).0).count();
        assert_eq!(allowed, 3);
        assert_eq!(r.allow(t + Duration::from_secs(1)), (true, 7));
    }
}
