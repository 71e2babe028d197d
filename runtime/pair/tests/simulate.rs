//! The decision core under seeded random schedules. A failing schedule's seed is printed, and
//! `PAIROS_SIM_SEED=0x... PAIROS_SIM_RUNS=1` replays it. `PAIROS_SIM_RUNS` sets how many
//! schedules the campaign runs (a million by default: about 3 minutes on one core) and
//! `PAIROS_SIM_STEPS` how long each is (steps of 100 ms).

use pairos_pair::core::Config;
use pairos_pair::sim::{run, Faults};

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

const STEPS: u64 = 3_000;
/// The campaign's schedules are shorter, so that a million of them fit CI's budget; each is
/// still 100 s of the pair's life, with a crash, a hang or a cut every few seconds.
const CAMPAIGN_STEPS: u64 = 1_000;
/// Steps (of 100 ms) a connected pair of running nodes, one of them ready, may go without a
/// primary: 6 s, and the hold time (3 s) when only the node that is not preferred is ready.
const LEADERLESS_BOUND: u64 = 90;

fn config() -> Config {
    Config { dead_time: 1_000, fence_delay: 1_500, fence_retry: 2_000, ..Config::default() }
}

/// The ways a pair can be set up, taken in turn by seed: a fence alone, one witness alone, two
/// witnesses alone, a fence and two witnesses. A lease outlasts the simulated watchdog (2 s)
/// and a renewal; the claim wait outlasts the watchdog and the longest delay (0.8 s).
fn setup(seed: u64) -> Config {
    let witnessed = Config { lease: 4_000, renew: 500, claim_wait: 3_000, ..config() };
    match seed % 4 {
        0 => config(),
        1 => Config { can_fence: false, witnesses: 1, ..witnessed },
        2 => Config { can_fence: false, witnesses: 2, ..witnessed },
        _ => Config { witnesses: 2, ..witnessed },
    }
}

#[test]
fn two_nodes_never_act_at_once_under_random_faults() {
    let runs = env_u64("PAIROS_SIM_RUNS").unwrap_or(1_000_000);
    let steps = env_u64("PAIROS_SIM_STEPS").unwrap_or(CAMPAIGN_STEPS);
    let first = env_u64("PAIROS_SIM_SEED").unwrap_or(0x5eed_0000);
    eprintln!("simulate: seeds {first:#x}.. ({runs} schedules of {steps} steps)");
    let (mut with_primary, mut changes, mut leaderless) = (0u64, 0u64, 0u64);
    for seed in first..first + runs {
        let o = run(seed, steps, &setup(seed), &Faults::default());
        if let Some(v) = o.violation {
            panic!("{v}; replay with PAIROS_SIM_SEED={seed:#x} PAIROS_SIM_RUNS=1");
        }
        // Up and connected, the pair forms within a few seconds (the tail is lost and delayed
        // messages, and a peer that is still fencing).
        assert!(
            o.longest_leaderless <= LEADERLESS_BOUND,
            "seed {seed:#x}: {} steps up and connected without a primary; replay with PAIROS_SIM_SEED={seed:#x} PAIROS_SIM_RUNS=1",
            o.longest_leaderless
        );
        leaderless = leaderless.max(o.longest_leaderless);
        with_primary += o.steps_with_primary;
        changes += o.role_changes;
    }
    // The schedules exercise the rule: the pair forms, fails over and hands over.
    let share = with_primary as f64 / (runs * steps) as f64;
    eprintln!(
        "simulate: a primary in {:.0}% of steps, {changes} role changes, at most {leaderless} steps up and connected without one",
        share * 100.0
    );
    assert!(share > 0.3, "the pair rarely had a primary: {share}");
    assert!(changes > runs, "few role changes: {changes}");
}

#[test]
fn a_quiet_pair_forms_and_a_dead_primary_is_replaced() {
    // Power-ons and heals stay as they are: with nothing to undo they do nothing.
    let quiet = Faults {
        crash: 0,
        hang: 0,
        cut: 0,
        drop: 0,
        duplicate: 0,
        switchover: 0,
        fence_fails: 0,
        health: 0,
        maintenance: 0,
        witness_cut: 0,
        witness_restart: 0,
        ..Faults::default()
    };
    let o = run(7, 500, &config(), &quiet);
    assert_eq!(o.violation, None);
    assert!(o.steps_with_primary > 450, "the pair formed at once: {o:?}");
    // Crashes, with fences that work: a primary is back within the bound most of the time.
    // Crashes, with fences that work: the survivor acts within the bound, every time. The
    // bound: the last heartbeats still in flight (the largest delay), the dead time and the
    // secondary's delay, a fence's answer (at most 6 steps) and a tick, in steps of 100 ms.
    let cfg = config();
    let crashes = Faults { crash: 5, ..quiet.clone() };
    let bound = crashes.max_delay + 1 + (cfg.dead_time + cfg.fence_delay) / 100 + 6 + 2;
    for seed in 8..40 {
        let o = run(seed, 5_000, &cfg, &crashes);
        assert_eq!(o.violation, None);
        assert!(o.role_changes > 10, "{o:?}");
        assert!(o.longest_takeover > 0, "a primary crashed and was replaced: {o:?}");
        assert!(o.longest_takeover <= bound, "seed {seed}: {} steps > {bound}", o.longest_takeover);
    }
    // With a witness and no fence: the claim's time (the dead time, the delay and the claim
    // wait) or the dead primary's lease running out, whichever is longer, and the delays.
    let cfg = setup(1);
    let claim = (cfg.dead_time + cfg.fence_delay + cfg.claim_wait) / 100;
    let lease = (cfg.lease + cfg.renew) / 100;
    let bound = claim.max(lease) + 2 * (crashes.max_delay + 1) + 2;
    for seed in 40..70 {
        let o = run(seed, 5_000, &cfg, &crashes);
        assert_eq!(o.violation, None);
        assert!(o.longest_takeover > 0, "a primary crashed and was replaced: {o:?}");
        assert!(o.longest_takeover <= bound, "seed {seed}: {} steps > {bound}", o.longest_takeover);
    }
}

#[test]
fn without_a_fence_nobody_promotes_on_silence() {
    let cfg = Config { can_fence: false, ..config() };
    for seed in 0..300 {
        let o = run(seed, STEPS, &cfg, &Faults::default());
        assert_eq!(o.violation, None, "seed {seed:#x}");
    }
}

#[test]
fn the_simulator_catches_a_broken_rule() {
    // Promote on silence without a fence: a partition makes two primaries, and the simulator
    // must find one quickly.
    let broken = Config { unsafe_promote_on_silence: true, ..config() };
    let found = (0..200).find_map(|seed| run(seed, STEPS, &broken, &Faults::default()).violation);
    let v = found.expect("the broken rule was not caught in 200 schedules");
    assert!(v.contains("both nodes act"), "{v}");
    // Act on a witness's lease without saying the claim for the claim wait: a primary that
    // still hears its peer (one way) has no time to stand down.
    let broken = Config { unsafe_skip_claim_wait: true, ..setup(1) };
    let found = (0..2_000).find_map(|seed| run(seed, STEPS, &broken, &Faults::default()).violation);
    let v = found.expect("acting without the claim wait was not caught in 2,000 schedules");
    assert!(v.contains("both nodes act"), "{v}");
}

/// `PAIROS_SIM_TRACE=0x...` prints the last events (`PAIROS_SIM_TRACE_LINES`, 80 by default)
/// of that seed's schedule (for explaining a violation); without it, this does nothing.
#[test]
fn trace_a_seed_on_request() {
    let Some(seed) = env_u64("PAIROS_SIM_TRACE") else { return };
    let steps = env_u64("PAIROS_SIM_STEPS").unwrap_or(CAMPAIGN_STEPS);
    let mut trace = Some(Vec::new());
    let o = pairos_pair::sim::run_traced(seed, steps, &setup(seed), &Faults::default(), &mut trace);
    let trace = trace.unwrap_or_default();
    let shown = env_u64("PAIROS_SIM_TRACE_LINES").unwrap_or(80) as usize;
    for line in &trace[trace.len().saturating_sub(shown)..] {
        eprintln!("{line}");
    }
    eprintln!("{o:?}");
}
