//! Failed logins slow the next ones down: from the fourth failure in a row from one address,
//! each login waits twice as long as the one before (2 s, 4 s, ... up to 5 minutes). A success
//! clears the address. Kept in memory on the node that served the attempts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Failures allowed before waits begin.
pub const FREE_FAILURES: u32 = 3;
pub const LONGEST_WAIT: Duration = Duration::from_secs(300);

#[derive(Debug, Default)]
pub struct Throttle {
    failures: HashMap<IpAddr, (u32, Instant)>,
}

impl Throttle {
    /// How long `from` must still wait before it may try again (none: it may try now).
    pub fn wait(&self, from: IpAddr, now: Instant) -> Option<Duration> {
        let (n, last) = *self.failures.get(&from)?;
        let wait = Self::wait_after(n)?;
        (last + wait).checked_duration_since(now).filter(|d| !d.is_zero())
    }

    fn wait_after(failures: u32) -> Option<Duration> {
        let over = failures.checked_sub(FREE_FAILURES)?;
        Some(Duration::from_secs(2u64.saturating_pow(over + 1)).min(LONGEST_WAIT))
    }

    pub fn failed(&mut self, from: IpAddr, now: Instant) {
        let e = self.failures.entry(from).or_insert((0, now));
        *e = (e.0.saturating_add(1), now);
        // Addresses that stopped trying long ago are forgotten.
        if self.failures.len() > 10_000 {
            self.failures.retain(|_, (_, t)| now.duration_since(*t) < LONGEST_WAIT);
        }
    }

    pub fn succeeded(&mut self, from: IpAddr) {
        self.failures.remove(&from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_begin_after_three_failures_and_double() {
        let ip: IpAddr = "192.168.50.100".parse().expect("ip");
        let other: IpAddr = "192.168.50.101".parse().expect("ip");
        let mut t = Throttle::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(t.wait(ip, t0), None);
            t.failed(ip, t0);
        }
        assert_eq!(t.wait(ip, t0), Some(Duration::from_secs(2)));
        t.failed(ip, t0);
        assert_eq!(t.wait(ip, t0), Some(Duration::from_secs(4)));
        assert_eq!(t.wait(ip, t0 + Duration::from_secs(4)), None);
        assert_eq!(t.wait(other, t0), None, "one address's failures do not hold up another");
        for _ in 0..20 {
            t.failed(ip, t0);
        }
        assert_eq!(t.wait(ip, t0), Some(LONGEST_WAIT));
        t.succeeded(ip);
        assert_eq!(t.wait(ip, t0), None);
    }
}
