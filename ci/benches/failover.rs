//! Failover on this host: the pair daemon and keepalived (VRRPv3, adverts every 100 ms) in the
//! same kind of namespaces, each pair with a client probing the address by ARP every 50 ms.
//! Runs alternate between the two so that drift in the machine's load affects both alike.
//! For each run and each daemon:
//! - power cut of the holder: time until the survivor answers for the address;
//! - the holder's daemon SIGKILLed (and started again by its supervisor 0.2 s later);
//! - the holder's daemon hung (SIGSTOP) for 3 s;
//! - a planned move: `pairos pair switchover`, or keepalived stopped on the master (it sends
//!   a priority-0 advert, VRRP's handover).
//!
//! In each, the windows of 50 ms in which two MACs answered are counted. Prints Markdown.
//! Usage: `cargo bench -p pairos-lab --bench failover -- [RUNS]` (default 5), as root, after
//! `cargo build --release -p pairos-runtime` (PAIROS_BIN points at it).

use std::time::{Duration, Instant};

use pairos_lab::address_probe::{double_windows, AddressProbe};
use pairos_lab::pair_host::{Daemon, Fencing, HostPair, PAIR_ADDRESS};
use pairos_lab::stats::median;
use pairos_lab::LabError;

/// The pair's timing for the comparison: three heartbeats of 100 ms, as VRRP's three adverts.
const TIMING: &str = "heartbeat_ms = 100\ndead_time_ms = 300\nfence_delay_ms = 100\nhold_ms = 1500\ncooldown_ms = 5000\nstartup_wait_ms = 0";

struct Rig {
    pair: HostPair,
    probe: AddressProbe,
}

impl Rig {
    fn macs(&self) -> [String; 2] {
        [self.pair.nodes[0].public_mac.clone(), self.pair.nodes[1].public_mac.clone()]
    }

    /// Both nodes on, and one MAC alone answering for 1.5 s; returns the holder's index.
    fn stable(&mut self) -> Result<usize, LabError> {
        for i in 0..2 {
            if !self.pair.is_on(i) {
                self.pair.power_on(i)?;
            }
        }
        let start = Instant::now();
        loop {
            let recent: Vec<String> = self
                .probe
                .answers()
                .into_iter()
                .filter(|a| a.at.elapsed() < Duration::from_millis(1500))
                .map(|a| a.mac)
                .collect();
            if recent.len() >= 20 && recent.iter().all(|m| *m == recent[0]) {
                let macs = self.macs();
                let holder = if recent[0] == macs[0] { 0 } else { 1 };
                // The pair daemon's primary must also hear its peer again (a switchover
                // needs a live peer).
                let heard = self.pair.daemon == Daemon::Keepalived
                    || self.pair.status(holder).is_ok_and(|s| s["peer"]["live"] == true);
                if heard {
                    return Ok(holder);
                }
            }
            if start.elapsed() > Duration::from_secs(60) {
                return Err(LabError::Setup(format!("{:?}: no stable holder in 60 s", self.pair.daemon)));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Does `fault` to the holder; returns the seconds until the other node answered for the
    /// address (alone), and the number of 50 ms windows in which both answered, over `watch`.
    fn measure(&mut self, fault: &str, watch: Duration) -> Result<(f64, usize), LabError> {
        let holder = self.stable()?;
        let other_mac = self.macs()[1 - holder].clone();
        let t0 = Instant::now();
        match fault {
            "power" => self.pair.kill(holder)?,
            "sigkill" => self.pair.kill_daemon(holder)?,
            "hang" => self.pair.hang(holder, true)?,
            "move" => match self.pair.daemon {
                Daemon::Pairos => {
                    self.pair.pair_cmd(holder, &["switchover"])?;
                }
                Daemon::Keepalived => {
                    let pid = std::fs::read_to_string(self.pair.nodes[holder].dir.join("daemon.pid"))
                        .map_err(|e| LabError::Setup(format!("daemon.pid: {e}")))?;
                    pairos_host::Cmd::new("kill").args(["-TERM", pid.trim()]).run()?;
                }
            },
            _ => unreachable!("a known fault"),
        }
        std::thread::sleep(watch);
        if fault == "hang" {
            let _ = self.pair.hang(holder, false);
        }
        let answers: Vec<_> = self.probe.answers().into_iter().filter(|a| a.at >= t0).collect();
        let taken =
            answers.iter().find(|a| a.mac == other_mac).map(|a| a.at.duration_since(t0).as_secs_f64());
        let doubles = double_windows(&answers, t0, pairos_lab::address_probe::EVERY).len();
        Ok((taken.unwrap_or(f64::NAN), doubles))
    }
}

fn main() -> Result<(), LabError> {
    let runs: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let mut rigs = Vec::new();
    for daemon in [Daemon::Pairos, Daemon::Keepalived] {
        let pair = match daemon {
            Daemon::Pairos => HostPair::up("bench-fo-pairos", Fencing::Command, TIMING)?,
            Daemon::Keepalived => HostPair::keepalived("bench-fo-keepalived")?,
        };
        let probe = AddressProbe::start(&pair.client, "eth0", PAIR_ADDRESS)?;
        rigs.push(Rig { pair, probe });
    }
    let faults = [
        ("power", "power cut of the holder"),
        ("sigkill", "the holder's daemon SIGKILLed"),
        ("hang", "the holder's daemon hung (SIGSTOP, 3 s)"),
        ("move", "planned move (switchover / keepalived stopped)"),
    ];
    // results[fault][rig] = (times, doubles)
    let mut results = vec![vec![(Vec::new(), 0usize); 2]; faults.len()];
    for run in 0..runs {
        for (f, (fault, _)) in faults.iter().enumerate() {
            for (r, rig) in rigs.iter_mut().enumerate() {
                let watch = Duration::from_secs(if *fault == "hang" { 3 } else { 2 });
                let (t, d) = rig.measure(fault, watch)?;
                eprintln!(
                    "failover: run {run}, {fault}, {:?}: {t:.3} s, {d} double windows",
                    rig.pair.daemon
                );
                results[f][r].0.push(t);
                results[f][r].1 += d;
            }
        }
    }
    println!("| fault ({runs} runs) | pairos: survivor answers after (median) | keepalived | pairos / keepalived | windows with two holders: pairos | keepalived |");
    println!("|---|---|---|---|---|---|");
    for (f, (_, label)) in faults.iter().enumerate() {
        let show = |v: &Vec<f64>| {
            let taken: Vec<f64> = v.iter().copied().filter(|t| t.is_finite()).collect();
            let m = if taken.is_empty() { f64::NAN } else { median(taken.clone()) };
            (m, taken.len())
        };
        let (p, pn) = show(&results[f][0].0);
        let (k, kn) = show(&results[f][1].0);
        let cell = |m: f64, n: usize| {
            if n == 0 {
                "no move".to_owned()
            } else if n < runs {
                format!("{m:.2} s ({n} of {runs} moved)")
            } else {
                format!("{m:.2} s")
            }
        };
        let ratio = if pn > 0 && kn > 0 { format!("{:.2}x", p / k) } else { "-".into() };
        println!(
            "| {label} | {} | {} | {ratio} | {} | {} |",
            cell(p, pn),
            cell(k, kn),
            results[f][0].1,
            results[f][1].1
        );
    }
    Ok(())
}
