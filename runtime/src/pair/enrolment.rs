//! Who may join the pair: the enrolment of a blank or swapped node on the private link.
//!
//! A newcomer that network-booted asks to enrol. It is enrolled only while the pair is missing
//! a node (no live peer), one at a time, and only from an address this node's DHCP pool hands
//! out. Its token is random, bound to its MAC and address, expires, and is good for this one
//! enrolment: the newcomer's reports and its request for its configuration (which carries the
//! pair key) must present it. With `approve`, the newcomer waits until the operator runs
//! `pairos pair approve MAC`. Reports are bounded in rate, and their text is made safe for a
//! console. Pure: the caller gives the time, the pair's state and the approvals.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use pairos_recovery::peer::{Denied, EnrolAnswer, Report, Step};
use pairos_recovery::trust::Token;

/// How a pair takes newcomers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Zero touch: a newcomer is enrolled while the pair is missing a node.
    Auto,
    /// The operator approves each newcomer.
    Approve,
}

/// How long a token is good for: a whole recovery, image write included, fits.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// An enrolment silent this long (no request, no report) is abandoned, so that a newcomer that
/// died does not hold the pair's door shut for the token's whole life.
pub const IDLE: Duration = Duration::from_secs(120);
/// Reports taken per second from the newcomer, as a burst over ten seconds.
const REPORTS_PER_10S: usize = 100;
/// The longest report message kept.
const MAX_MESSAGE: usize = 400;

#[derive(Debug)]
struct Enrolment {
    mac: String,
    ip: Ipv4Addr,
    token: Token,
    started: Instant,
    last_seen: Instant,
    reports: VecDeque<Instant>,
}

impl Enrolment {
    fn lapsed(&self, now: Instant) -> bool {
        now - self.started >= TOKEN_LIFETIME || now - self.last_seen >= IDLE
    }
}

/// What the pair knows when a request comes.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub now: Instant,
    /// The peer is a live member of the pair: nobody is enrolled.
    pub peer_live: bool,
    pub mode: Mode,
    /// The MACs the operator approved.
    pub approved: &'a [String],
}

#[derive(Debug)]
pub struct Enrolments {
    /// The addresses this node's DHCP hands out on the private link.
    pool: (Ipv4Addr, Ipv4Addr),
    current: Option<Enrolment>,
    /// A newcomer waiting for the operator, for the status.
    pub waiting: Option<String>,
}

/// A MAC as `aa:bb:cc:dd:ee:ff`, or `None`.
pub fn normal_mac(mac: &str) -> Option<String> {
    let parts: Vec<&str> = mac.split(':').collect();
    let ok =
        parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    ok.then(|| mac.to_ascii_lowercase())
}

/// `text` without control characters (a console's escape sequences among them), at most
/// [`MAX_MESSAGE`] characters.
pub fn printable(text: &str) -> String {
    let mut out: String = text.chars().filter(|c| !c.is_control()).take(MAX_MESSAGE).collect();
    if text.chars().filter(|c| !c.is_control()).count() > MAX_MESSAGE {
        out.push('…');
    }
    out
}

impl Enrolments {
    pub fn new(pool: (Ipv4Addr, Ipv4Addr)) -> Enrolments {
        Enrolments { pool, current: None, waiting: None }
    }

    fn in_pool(&self, ip: Ipv4Addr) -> bool {
        (self.pool.0..=self.pool.1).contains(&ip)
    }

    /// A newcomer at `ip` with `mac` asks to join the pair `pair_id`.
    pub fn request(
        &mut self,
        cx: Context<'_>,
        pair_id: &str,
        mac: &str,
        ip: Ipv4Addr,
    ) -> Result<EnrolAnswer, Denied> {
        let mac = normal_mac(mac).ok_or_else(|| Denied::new(400, format!("{mac:?} is not a MAC address")))?;
        if cx.peer_live {
            return Err(Denied::new(403, "the pair has both its nodes; nobody is enrolled"));
        }
        if !self.in_pool(ip) {
            return Err(Denied::new(
                403,
                format!(
                    "{ip} is not an address this node hands out; enrol from the address its DHCP gave you"
                ),
            ));
        }
        if let Some(e) = &self.current {
            let lapsed = e.lapsed(cx.now);
            if !lapsed && e.mac != mac {
                return Err(Denied::new(409, format!("{} is being enrolled; one newcomer at a time", e.mac)));
            }
            if !lapsed {
                // The same newcomer asking again (its agent restarted): a fresh token.
                self.current = None;
            }
        }
        if cx.mode == Mode::Approve && !cx.approved.iter().any(|a| a.eq_ignore_ascii_case(&mac)) {
            self.waiting = Some(mac.clone());
            return Ok(EnrolAnswer::Waiting {
                message: format!("waiting for the operator to approve {mac}: pairos pair approve {mac}"),
            });
        }
        self.waiting = None;
        let token = Token::generate().map_err(|e| Denied::new(500, format!("no randomness: {e}")))?;
        let answer = EnrolAnswer::Enrolled {
            token: token.to_hex(),
            expires_secs: TOKEN_LIFETIME.as_secs(),
            pair_id: pair_id.to_owned(),
        };
        self.current =
            Some(Enrolment { mac, ip, token, started: cx.now, last_seen: cx.now, reports: VecDeque::new() });
        Ok(answer)
    }

    /// Checks that a request comes from the enrolled newcomer: its token, its MAC, its address.
    pub fn authorise(
        &self,
        now: Instant,
        token: Option<&str>,
        mac: &str,
        ip: Ipv4Addr,
    ) -> Result<(), Denied> {
        let Some(token) = token else {
            return Err(Denied::new(401, "no enrolment token: enrol first (POST /enrol)"));
        };
        let e = self.current.as_ref().ok_or_else(|| Denied::new(401, "no enrolment is running"))?;
        if !e.token.matches(token) {
            return Err(Denied::new(401, "not this enrolment's token"));
        }
        if e.lapsed(now) {
            return Err(Denied::new(401, "the enrolment token has expired: enrol again"));
        }
        if normal_mac(mac).as_deref() != Some(e.mac.as_str()) || ip != e.ip {
            return Err(Denied::new(403, "the token belongs to another MAC or address"));
        }
        Ok(())
    }

    /// A report from the enrolled newcomer: checked, rate-limited and made printable. A final
    /// step ends the enrolment; its token is good for nothing after.
    pub fn report(
        &mut self,
        now: Instant,
        token: Option<&str>,
        ip: Ipv4Addr,
        mut r: Report,
    ) -> Result<Report, Denied> {
        self.authorise(now, token, &r.mac, ip)?;
        let e = self.current.as_mut().expect("authorised, so enrolling");
        while e.reports.front().is_some_and(|t| now - *t > Duration::from_secs(10)) {
            e.reports.pop_front();
        }
        if e.reports.len() >= REPORTS_PER_10S {
            return Err(Denied::new(429, "too many reports; slow down"));
        }
        e.reports.push_back(now);
        e.last_seen = now;
        r.mac = e.mac.clone();
        r.message = printable(&r.message);
        r.written_bytes = r.written_bytes.min(r.total_bytes);
        if matches!(r.step, Step::Finished | Step::Uncertified | Step::Refused | Step::Failed) {
            self.current = None;
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL: (Ipv4Addr, Ipv4Addr) = (Ipv4Addr::new(10, 77, 0, 10), Ipv4Addr::new(10, 77, 0, 99));
    const IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 20);
    const MAC: &str = "52:54:00:12:04:00";

    fn cx(now: Instant) -> Context<'static> {
        Context { now, peer_live: false, mode: Mode::Auto, approved: &[] }
    }

    fn report(step: Step, message: &str) -> Report {
        Report { mac: MAC.into(), step, message: message.into(), written_bytes: 5, total_bytes: 10 }
    }

    fn token(a: EnrolAnswer) -> String {
        match a {
            EnrolAnswer::Enrolled { token, .. } => token,
            other => panic!("not enrolled: {other:?}"),
        }
    }

    #[test]
    fn a_newcomer_is_enrolled_only_while_the_pair_misses_a_node_and_one_at_a_time() {
        let t0 = Instant::now();
        let mut e = Enrolments::new(POOL);
        let live = Context { peer_live: true, ..cx(t0) };
        assert_eq!(e.request(live, "p", MAC, IP).expect_err("pair complete").status, 403);
        let outside = Ipv4Addr::new(10, 77, 0, 200);
        assert_eq!(e.request(cx(t0), "p", MAC, outside).expect_err("not our address").status, 403);
        assert_eq!(e.request(cx(t0), "p", "nonsense", IP).expect_err("bad MAC").status, 400);
        let t = token(e.request(cx(t0), "p", MAC, IP).expect("enrolled"));
        let other = e.request(cx(t0), "p", "52:54:00:99:99:99", Ipv4Addr::new(10, 77, 0, 21));
        assert_eq!(other.expect_err("one at a time").status, 409);
        // A newcomer that went silent is abandoned, and another may enrol.
        let later = t0 + IDLE;
        assert!(e.authorise(later, Some(&t), MAC, IP).is_err(), "abandoned");
        let t2 = token(
            e.request(cx(later), "p", "52:54:00:99:99:99", Ipv4Addr::new(10, 77, 0, 21)).expect("the next"),
        );
        // One that keeps reporting is not, until its token's life ends.
        let ip2 = Ipv4Addr::new(10, 77, 0, 21);
        let mut at = later;
        while at < later + TOKEN_LIFETIME - IDLE {
            at += Duration::from_secs(60);
            let r = Report { mac: "52:54:00:99:99:99".into(), ..report(Step::Writing, "x") };
            e.report(at, Some(&t2), ip2, r).expect("still enrolled");
        }
        assert!(e.authorise(later + TOKEN_LIFETIME, Some(&t2), "52:54:00:99:99:99", ip2).is_err(), "expired");
    }

    #[test]
    fn the_token_is_bound_to_its_mac_and_address_and_ends_with_the_recovery() {
        let t0 = Instant::now();
        let mut e = Enrolments::new(POOL);
        let t = token(e.request(cx(t0), "p", MAC, IP).expect("enrolled"));
        assert_eq!(e.authorise(t0, None, MAC, IP).expect_err("no token").status, 401);
        assert_eq!(e.authorise(t0, Some(&"0".repeat(64)), MAC, IP).expect_err("wrong token").status, 401);
        assert_eq!(e.authorise(t0, Some(&t), "52:54:00:00:00:01", IP).expect_err("other MAC").status, 403);
        let elsewhere = Ipv4Addr::new(10, 77, 0, 30);
        assert_eq!(e.authorise(t0, Some(&t), MAC, elsewhere).expect_err("other address").status, 403);
        e.authorise(t0, Some(&t), &MAC.to_ascii_uppercase(), IP).expect("the newcomer itself");

        let r = e.report(t0, Some(&t), IP, report(Step::Writing, "50%\x1b[2J\x07 done")).expect("taken");
        assert_eq!(r.message, "50%[2J done", "no escape or bell reaches the console");
        e.report(t0, Some(&t), IP, report(Step::Finished, "installed")).expect("taken");
        let again = e.report(t0, Some(&t), IP, report(Step::Finished, "again"));
        assert_eq!(again.expect_err("single use").status, 401);
        assert!(e.authorise(t0, Some(&t), MAC, IP).is_err(), "the configuration is not handed out again");
    }

    #[test]
    fn reports_are_rate_limited_and_the_operator_approves_in_approve_mode() {
        let t0 = Instant::now();
        let mut e = Enrolments::new(POOL);
        let approve = Context { mode: Mode::Approve, ..cx(t0) };
        match e.request(approve, "p", MAC, IP).expect("answered") {
            EnrolAnswer::Waiting { message } => assert!(message.contains("pairos pair approve"), "{message}"),
            other => panic!("enrolled without approval: {other:?}"),
        }
        assert_eq!(e.waiting.as_deref(), Some(MAC));
        let approved = [MAC.to_owned()];
        let t = token(e.request(Context { approved: &approved, ..approve }, "p", MAC, IP).expect("approved"));
        assert!(e.waiting.is_none());
        for _ in 0..REPORTS_PER_10S {
            e.report(t0, Some(&t), IP, report(Step::Writing, "x")).expect("within the rate");
        }
        let r = e.report(t0, Some(&t), IP, report(Step::Writing, "x"));
        assert_eq!(r.expect_err("too many").status, 429);
        e.report(t0 + Duration::from_secs(11), Some(&t), IP, report(Step::Writing, "x")).expect("later");
        assert_eq!(printable(&"y".repeat(1000)).chars().count(), MAX_MESSAGE + 1);
    }
}
