//! Lab: no acknowledged write is lost through any fault. One boot of the PostgreSQL pair
//! (`ci/specs/postgres.toml`, as `ci/lab up --spec` makes it: BMCs, watchdogs, the volume `db`,
//! the workload `postgres`), and the write checker writing through the pair's address from the
//! client namespace for the whole campaign. After each fault the pair settles (both nodes up,
//! the volume in sync, PostgreSQL healthy on the primary) and the checker reads the table back
//! beside its running load: lost, duplicated and unknown rows must be 0. The faults:
//!
//! 1. the primary's VM killed (b fences a and takes over; a powered on again);
//! 2. a planned switchover (back to a);
//! 3. the private link cut on the primary while it writes, then healed;
//! 4. the primary's public port cut (a hands over to b), then plugged back;
//! 5. every link of the secondary cut, both alive (b fences a and stays; a powered on again);
//! 6. the primary's pair daemon hung (SIGSTOP): a fences b, or b's watchdog resets it first;
//! 7. PostgreSQL killed on the primary three times: restarted there each time; a fourth time
//!    within its window: the pair moves to the secondary;
//! 8. the secondary's disk swapped for a blank one: it heals from PXE to UpToDate by itself,
//!    then the primary is killed and the healed node takes over with every row;
//! 9. both nodes' power cut at once through their BMCs, then both powered on;
//! 10. a second workload that fails on both nodes: after its restarts on each it is marked
//!     failed with an alarm, and the pair stays put (PostgreSQL moves once, and serves).
//!
//! Each fault prints one `lab_postgres:` line with the service's gap (the last acknowledged
//! commit before the fault to the first after it) and its breakdown from the consoles
//! (`ci/bench/postgres` gathers them into BENCHMARKS.md).

use std::time::{Duration, Instant};

use pairos_lab::checker_lab::LabChecker;
use pairos_lab::pair_lab::{LinkName, PairLab, PairLabOptions, BOOT};
use pairos_lab::write_checker::history::now_ms;
use pairos_lab::{image, postgres_pair, LabError};
use serde_json::Value;

const MINUTE: Duration = Duration::from_secs(60);
const CHECKER: &str = env!("CARGO_BIN_EXE_write-checker");
/// The new primary's line once its workloads run and are healthy.
const READY: &str = "pair: workloads: primary, step by step: ";
/// Rows a second: steady, and well within what a TCG pair commits.
const RATE: u32 = 20;

fn other(letter: char) -> char {
    if letter == 'a' {
        'b'
    } else {
        'a'
    }
}

/// The campaign's state: the pair, the checker, and which node is primary.
struct Campaign {
    pair: PairLab,
    checker: LabChecker,
    primary: char,
    /// When each node's pair daemon last started (as [`Campaign::back_on`] saw it).
    daemon_started: [Instant; 2],
}

/// Console marks taken when a fault is injected.
struct Fault {
    name: &'static str,
    at_ms: u64,
    from: [usize; 2],
}

impl Fault {
    /// Where node `letter`'s console stood when the fault was injected.
    fn console_mark(&self, letter: char) -> usize {
        self.from[usize::from(letter == 'b')]
    }
}

impl Campaign {
    fn fault(&mut self, name: &'static str) -> Result<Fault, LabError> {
        eprintln!("lab_postgres: === {name}");
        let from = [self.pair.console_len('a')?, self.pair.console_len('b')?];
        Ok(Fault { name, at_ms: now_ms(), from })
    }

    /// When node `letter` printed `what` after the fault, in ms after it.
    fn mark(&mut self, f: &Fault, letter: char, what: &str) -> Result<Option<(u64, String)>, LabError> {
        let from = f.console_mark(letter);
        let console = self.pair.node(letter)?.vm.console();
        Ok(console.find_since(from, what).map(|(line, at)| (at.saturating_sub(f.at_ms), line)))
    }

    /// Waits until the checker's rows are acknowledged again after the fault; prints the gap
    /// and, from the new primary's console, the breakdown.
    /// `after`: a console line (node, text) that must come first, e.g. the new primary's
    /// workloads being ready: rows acknowledged before it came from before the fault took
    /// effect (a switchover takes a moment to begin).
    fn serving_again(
        &mut self,
        f: &Fault,
        after: Option<(char, &str)>,
        within: Duration,
    ) -> Result<u64, LabError> {
        let mut since = f.at_ms;
        if let Some((n, what)) = after {
            self.pair.wait_console(n, f.console_mark(n), what, within)?;
            let (_, at) =
                self.pair.node(n)?.vm.console().find_since(f.console_mark(n), what).expect("just seen");
            since = at;
        }
        self.checker.wait_serving(since, within)?;
        let pause = self.checker.pause_after(f.at_ms)?.expect("acknowledgements before and after the fault");
        let mut parts = vec![format!("gap {} ms", pause.length_ms())];
        let mut marks = serde_json::Map::new();
        let p = self.primary;
        for (label, what) in [
            ("workload failed", "workloads: postgres failed ("),
            ("restarted here", "restarting it here"),
            ("handed over", "handing the pair"),
            ("fencing began", "pair: fencing "),
            ("fence confirmed", "pair: fence: "),
            ("old primary stood down", "pair: secondary"),
            ("primary", "pair: primary in epoch"),
        ] {
            for n in [p, other(p)] {
                if let Some((ms, _)) = self.mark(f, n, what)? {
                    parts.push(format!("{label} ({n}) +{ms} ms"));
                    marks.insert(label.into(), ms.into());
                    break;
                }
            }
        }
        let mut steps = String::new();
        if let Some((ms, line)) = self.mark(f, p, "pair: workloads: primary, step by step: ")? {
            steps = line.split_once("step by step: ").map_or("", |s| s.1).to_owned();
            parts.push(format!("workloads ready +{ms} ms [{steps}]"));
            marks.insert("workloads ready".into(), ms.into());
        }
        let before = pause.last_before_ms as i64 - f.at_ms as i64;
        let after = pause.first_after_ms as i64 - f.at_ms as i64;
        parts.push(format!("last commit before {before:+} ms, first commit after {after:+} ms"));
        eprintln!("lab_postgres: {}: {}", f.name, parts.join("; "));
        // For ci/bench/postgres.
        let line = serde_json::json!({"fault": f.name, "gap_ms": pause.length_ms(), "marks": marks,
            "steps": steps, "last_commit_before_ms": before, "first_commit_after_ms": after});
        eprintln!("lab_postgres-json: {line}");
        Ok(pause.length_ms())
    }

    /// Waits until the primary runs PostgreSQL healthy and its volume is in sync with the
    /// peer's, then reads the table back beside the load and asserts the verdict.
    fn settle_and_check(&mut self, f: &Fault) -> Result<Value, LabError> {
        let p = self.primary;
        let start = Instant::now();
        loop {
            let v = self.pair.json(p, "pairos volume list --json", MINUTE)?;
            let w = self.pair.json(p, "pairos workload list --json", MINUTE)?;
            let db = &v["volumes"][0];
            let pg = w["running"]["workloads"]
                .as_array()
                .and_then(|ws| ws.iter().find(|x| x["name"] == "postgres"));
            if db["role"] == "Primary"
                && db["disk"] == "UpToDate"
                && db["peer_disk"] == "UpToDate"
                && pg.is_some_and(|x| x["state"] == "healthy")
            {
                break;
            }
            assert!(start.elapsed() < 10 * MINUTE, "{}: the pair did not settle on {p}: {v}\n{w}", f.name);
            std::thread::sleep(Duration::from_secs(3));
        }
        let v = self.checker.check(5 * MINUTE)?;
        eprintln!(
            "lab_postgres: {}: acknowledged {}, in doubt {}, lost {}, duplicated {}, unknown {}",
            f.name, v["acknowledged"], v["in_doubt"], v["lost"], v["duplicated"], v["unknown"]
        );
        assert_eq!(v["ok"], true, "{}: the checker's verdict: {v}", f.name);
        for empty in ["lost", "duplicated", "unknown", "wrong_values"] {
            assert_eq!(v[empty].as_array().map(Vec::len), Some(0), "{}: {empty}: {v}", f.name);
        }
        Ok(v)
    }

    /// Powers `letter` on through its BMC if it is off, and waits until its pair daemon runs
    /// again after fault `f` (it may have been reset, by its watchdog, and be back already).
    fn back_on(&mut self, f: &Fault, letter: char) -> Result<(), LabError> {
        let from = f.console_mark(letter);
        if !self.pair.node(letter)?.vm.running() {
            self.pair.power(letter, true)?;
        }
        self.pair.wait_console(letter, from, "pair: watchdog /dev/watchdog armed", BOOT)?;
        self.daemon_started[usize::from(letter == 'b')] = Instant::now();
        Ok(())
    }

    /// Waits until `letter`'s daemon has run longer than its startup wait: a node fences
    /// nobody in its first minute (both nodes may be booting after a power cut).
    fn past_startup_wait(&mut self, letter: char) {
        const STARTUP_WAIT: Duration = Duration::from_secs(65);
        let age = self.daemon_started[usize::from(letter == 'b')].elapsed();
        std::thread::sleep(STARTUP_WAIT.saturating_sub(age));
    }

    /// Waits until `letter` says it is primary (after the fault's mark).
    fn becomes_primary(&mut self, f: &Fault, letter: char, within: Duration) -> Result<(), LabError> {
        let from = f.console_mark(letter);
        self.pair.wait_console(letter, from, "pair: primary in epoch", within)?;
        self.primary = letter;
        Ok(())
    }

    fn pid_of_postgres(&mut self) -> Result<u64, LabError> {
        let w = self.pair.json(self.primary, "pairos workload list --json", MINUTE)?;
        w["running"]["workloads"]
            .as_array()
            .and_then(|ws| ws.iter().find(|x| x["name"] == "postgres"))
            .and_then(|x| x["pid"].as_u64())
            .ok_or_else(|| LabError::Setup(format!("no pid for postgres: {w}")))
    }
}

#[test]
fn no_acknowledged_write_is_lost_through_any_fault() -> Result<(), LabError> {
    let out = image::postgres_image()?;
    let opts = PairLabOptions { name: "postgres".into(), image: out, bmcs: true, witness: false };
    let mut pair = PairLab::up(&opts, &mut |msg| eprintln!("lab: {msg}"))?;
    for n in ['a', 'b'] {
        pair.run(n, "dmesg -n 1", MINUTE)?;
    }
    postgres_pair::setup(&mut pair, &mut |msg| eprintln!("lab: {msg}"))?;
    let history = pair.lab().dir().join("checker-history.jsonl");
    let checker = LabChecker::start(CHECKER.as_ref(), &pair.client().ns, &history, RATE)?;
    eprintln!("lab_postgres: the checker's history: {}", history.display());
    let mut c = Campaign { pair, checker, primary: 'a', daemon_started: [Instant::now(); 2] };
    c.checker.wait_serving(now_ms(), 2 * MINUTE)?;
    // b's first full sync goes beside the load (foreground writes first): the campaign starts
    // once b is up to date.
    let f = c.fault("the pair's start")?;
    c.settle_and_check(&f)?;
    let mut gaps = Vec::new();

    // 1. The primary's VM is killed: b fences it and takes over.
    let f = c.fault("primary killed")?;
    c.pair.kill('a')?;
    c.becomes_primary(&f, 'b', 2 * MINUTE)?;
    gaps.push((f.name, c.serving_again(&f, Some(('b', READY)), 3 * MINUTE)?));
    c.back_on(&f, 'a')?;
    c.settle_and_check(&f)?;

    // 2. A planned switchover, back to a.
    let f = c.fault("switchover")?;
    let said = c.pair.run('b', "pairos pair switchover", 2 * MINUTE)?;
    assert!(said.contains("handed over to node-1"), "{said}");
    c.becomes_primary(&f, 'a', MINUTE)?;
    gaps.push((f.name, c.serving_again(&f, Some(('a', READY)), 2 * MINUTE)?));
    c.settle_and_check(&f)?;

    // 3. The private link is cut on the primary while it writes: its writes wait until b is
    //    outdated over the public network, then go on; healed, a bitmap resync.
    let f = c.fault("private link cut")?;
    c.pair.set_link(LinkName::Private, 'a', false)?;
    std::thread::sleep(Duration::from_secs(15));
    gaps.push((f.name, c.serving_again(&f, None, 2 * MINUTE)?));
    assert_eq!(c.pair.status()["nodes"]["a"]["role"], "primary", "one link down is not a failover");
    c.pair.set_link(LinkName::Private, 'a', true)?;
    c.settle_and_check(&f)?;

    // 4. The primary's public port is cut: it hands over to b.
    let f = c.fault("primary's public port cut")?;
    c.pair.set_link(LinkName::Public, 'a', false)?;
    c.becomes_primary(&f, 'b', 2 * MINUTE)?;
    gaps.push((f.name, c.serving_again(&f, Some(('b', READY)), 2 * MINUTE)?));
    c.pair.set_link(LinkName::Public, 'a', true)?;
    c.settle_and_check(&f)?;

    // 5. Every link of the secondary is cut, both alive: b, the primary, fences a and stays.
    let f = c.fault("every link cut")?;
    c.pair.set_link(LinkName::Private, 'a', false)?;
    c.pair.set_link(LinkName::Public, 'a', false)?;
    c.pair.wait_console(
        'b',
        f.console_mark('b'),
        "pair: fence: node-1 is confirmed powered off",
        2 * MINUTE,
    )?;
    std::thread::sleep(Duration::from_secs(5));
    gaps.push((f.name, c.serving_again(&f, None, 2 * MINUTE)?));
    assert!(c.mark(&f, 'b', "pair: secondary")?.is_none(), "b stood down");
    c.pair.heal_all()?;
    c.back_on(&f, 'a')?;
    c.settle_and_check(&f)?;

    // 6. The primary's pair daemon hangs: a takes over (it fences b, or b's watchdog resets it).
    c.past_startup_wait('a');
    let f = c.fault("primary's daemon hung")?;
    c.pair.hang('b')?;
    c.becomes_primary(&f, 'a', 3 * MINUTE)?;
    gaps.push((f.name, c.serving_again(&f, Some(('a', READY)), 3 * MINUTE)?));
    c.back_on(&f, 'b')?;
    c.settle_and_check(&f)?;

    // 7. PostgreSQL is killed on the primary three times: restarted there each time. The
    //    fourth time within its window, the pair moves to b.
    for n in 1..=3 {
        let f = c.fault("PostgreSQL killed")?;
        let pid = c.pid_of_postgres()?;
        c.pair.run('a', &format!("kill -9 {pid}"), MINUTE)?;
        let restarting = format!("restarting it here ({n} of 3)");
        gaps.push((f.name, c.serving_again(&f, Some(('a', &restarting)), 2 * MINUTE)?));
    }
    let f = c.fault("PostgreSQL killed a fourth time")?;
    let pid = c.pid_of_postgres()?;
    c.pair.run('a', &format!("kill -9 {pid}"), MINUTE)?;
    c.becomes_primary(&f, 'b', 3 * MINUTE)?;
    gaps.push((f.name, c.serving_again(&f, Some(('b', READY)), 3 * MINUTE)?));
    c.settle_and_check(&f)?;

    // 8. The secondary's disk is swapped for a blank one: a heals itself from PXE to
    //    UpToDate; then b is killed, and a takes over with every row.
    let f = c.fault("secondary's disk swapped for a blank one")?;
    c.pair.power('a', false)?;
    // b fences the silent a (its BMC says off): only then is a's new disk put in and a powered
    // on, or b's fence would power the new disk's first boot off.
    c.pair.wait_console(
        'b',
        f.console_mark('b'),
        "pair: fence: node-1 is confirmed powered off",
        2 * MINUTE,
    )?;
    c.pair.swap_disk('a')?;
    c.pair.power('a', true)?;
    c.pair.wait_console('a', f.console_mark('a'), "pairos-recover: identity written: node-1", 15 * MINUTE)?;
    c.back_on(&f, 'a')?;
    c.settle_and_check(&f)?;
    eprintln!(
        "lab_postgres: a's blank disk was in sync {:.0} s after it was swapped",
        (now_ms() - f.at_ms) as f64 / 1e3
    );
    let f = c.fault("failover onto the healed node")?;
    c.pair.kill('b')?;
    c.becomes_primary(&f, 'a', 2 * MINUTE)?;
    gaps.push((f.name, c.serving_again(&f, Some(('a', READY)), 3 * MINUTE)?));
    c.back_on(&f, 'b')?;
    c.settle_and_check(&f)?;

    // 9. Both nodes' power is cut at once, then both are powered on.
    let f = c.fault("both nodes' power cut")?;
    c.pair.ipmi('a', &["chassis", "power", "off"])?;
    c.pair.ipmi('b', &["chassis", "power", "off"])?;
    for n in ['a', 'b'] {
        let start = Instant::now();
        while c.pair.node(n)?.vm.running() {
            assert!(start.elapsed() < MINUTE, "node {n} still runs after its power was cut");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    c.pair.power('a', true)?;
    c.pair.power('b', true)?;
    let start = Instant::now();
    loop {
        if c.mark(&f, 'a', "pair: primary in epoch")?.is_some() {
            c.primary = 'a';
            break;
        }
        if c.mark(&f, 'b', "pair: primary in epoch")?.is_some() {
            c.primary = 'b';
            break;
        }
        assert!(start.elapsed() < BOOT + 2 * MINUTE, "no primary after both were powered on");
        std::thread::sleep(Duration::from_secs(2));
    }
    gaps.push((f.name, c.serving_again(&f, Some((c.primary, READY)), 5 * MINUTE)?));
    c.settle_and_check(&f)?;

    // 10. A workload that fails on both nodes is not bounced between them.
    let f = c.fault("a workload failing on both nodes")?;
    let p = c.primary;
    c.pair.write_file(
        p,
        "/tmp/broken.toml",
        b"name = \"broken\"\ncommand = [\"/bin/sh\", \"-c\", \"sleep 2; exit 3\"]\norder = 1\n\
          health = { tcp = 9, interval_s = 1, failures = 1 }\nrestart = { times = 1, within_minutes = 30 }\n",
    )?;
    c.pair.run(p, "pairos workload add /tmp/broken.toml", MINUTE)?;
    let failed =
        c.pair.wait_console(other(p), f.console_mark(other(p)), "workload broken is failed", 5 * MINUTE)?;
    eprintln!("lab_postgres: {failed}");
    std::thread::sleep(Duration::from_secs(30));
    let moves =
        c.pair.node(p)?.vm.console().text()[f.console_mark(p)..].matches("pair: primary in epoch").count()
            + c.pair.node(other(p))?.vm.console().text()[f.console_mark(other(p))..]
                .matches("pair: primary in epoch")
                .count();
    assert_eq!(moves, 1, "the pair moved once for the broken workload, no more");
    c.primary = other(p);
    c.pair.run(c.primary, "pairos workload remove broken", MINUTE)?;
    c.settle_and_check(&f)?;

    let summary: Vec<String> = gaps.iter().map(|(n, g)| format!("{n} {g} ms")).collect();
    eprintln!("lab_postgres: service gaps: {}", summary.join(", "));
    Ok(())
}
