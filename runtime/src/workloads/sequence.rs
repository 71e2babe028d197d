//! The order of a role change, written once. Becoming primary: promote the workloads'
//! volumes, check and mount their file systems, take the pair's address, start the workloads
//! in order (each healthy before the next starts), then ready. Giving the role up: the same
//! backwards (stop the workloads in reverse order, unmount, demote, release the address).
//! Each step is timed, so that every failover can be explained afterwards; the first step
//! that fails stops the sequence and is named.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pairos_mirror::document::PairConfig;
use pairos_workload::spec::Workload;

/// One step of taking the role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Promote { volume: String },
    Mount { volume: String, device: String, at: PathBuf },
    Address,
    Start { workload: String },
    Healthy { workload: String },
    Ready,
}

/// One step of giving the role up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopStep {
    Stop { workload: String },
    Unmount { at: PathBuf },
    Demote { volume: String },
    ReleaseAddress,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Promote { volume } => write!(f, "promote {volume}"),
            Step::Mount { volume, at, .. } => write!(f, "check and mount {volume} on {}", at.display()),
            Step::Address => write!(f, "take the pair's address"),
            Step::Start { workload } => write!(f, "start {workload}"),
            Step::Healthy { workload } => write!(f, "wait until {workload} is healthy"),
            Step::Ready => write!(f, "ready"),
        }
    }
}

impl std::fmt::Display for StopStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopStep::Stop { workload } => write!(f, "stop {workload}"),
            StopStep::Unmount { at } => write!(f, "unmount {}", at.display()),
            StopStep::Demote { volume } => write!(f, "demote {volume}"),
            StopStep::ReleaseAddress => write!(f, "release the pair's address"),
        }
    }
}

/// The workloads in the order they start (by `order`, then name).
pub fn start_order(doc: &PairConfig) -> Vec<&Workload> {
    let mut w: Vec<&Workload> = doc.workloads.iter().collect();
    w.sort_by(|a, b| (a.order, &a.name).cmp(&(b.order, &b.name)));
    w
}

/// The steps of taking the role, for the pair's document.
pub fn take_over(doc: &PairConfig) -> Vec<Step> {
    let order = start_order(doc);
    let mut steps = Vec::new();
    let mut promoted: Vec<&str> = Vec::new();
    for w in &order {
        for m in &w.volumes {
            if !promoted.contains(&m.volume.as_str()) {
                promoted.push(&m.volume);
                steps.push(Step::Promote { volume: m.volume.clone() });
            }
        }
    }
    for w in &order {
        for m in &w.volumes {
            let minor = doc.volumes.iter().find(|v| v.name.as_str() == m.volume).map(|v| v.minor);
            let device = minor.map_or_else(|| "(no such volume)".into(), |n| format!("/dev/drbd{n}"));
            steps.push(Step::Mount { volume: m.volume.clone(), device, at: m.mount.clone() });
        }
    }
    steps.push(Step::Address);
    for w in &order {
        steps.push(Step::Start { workload: w.name.clone() });
        steps.push(Step::Healthy { workload: w.name.clone() });
    }
    steps.push(Step::Ready);
    steps
}

/// The steps of giving the role up: everything `take_over` does, undone in reverse order.
pub fn give_up(doc: &PairConfig) -> Vec<StopStep> {
    let mut steps = Vec::new();
    for step in take_over(doc).into_iter().rev() {
        match step {
            Step::Start { workload } => steps.push(StopStep::Stop { workload }),
            Step::Mount { at, .. } => steps.push(StopStep::Unmount { at }),
            Step::Promote { volume } => steps.push(StopStep::Demote { volume }),
            Step::Address => steps.push(StopStep::ReleaseAddress),
            Step::Healthy { .. } | Step::Ready => {}
        }
    }
    // The address goes last: clients keep reaching this node until nothing serves here.
    if let Some(i) = steps.iter().position(|s| *s == StopStep::ReleaseAddress) {
        let a = steps.remove(i);
        steps.push(a);
    }
    steps
}

/// A step done, and how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub step: String,
    pub took: Duration,
}

/// Runs steps in order with `act`, calling `done` after each; stops at the first that fails
/// and returns it with its error.
pub fn run<S: std::fmt::Display>(
    steps: &[S],
    mut act: impl FnMut(&S) -> Result<(), String>,
    mut done: impl FnMut(Done),
) -> Result<(), String> {
    for step in steps {
        let start = Instant::now();
        act(step).map_err(|e| format!("{step}: {e}"))?;
        done(Done { step: step.to_string(), took: start.elapsed() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> PairConfig {
        let mut doc = PairConfig::default();
        doc.add("db".parse().expect("name"), 64 << 20, "node-1").expect("added");
        doc.add("www".parse().expect("name"), 64 << 20, "node-1").expect("added");
        let w = |toml: &str| Workload::from_toml(toml, "t").expect("parses");
        doc.add_workload(
            w("name = \"web\"\norder = 20\ncommand = [\"/bin/true\"]\nvolumes = [{ volume = \"www\", mount = \"/srv/www\" }, { volume = \"db\", mount = \"/srv/shared\" }]\nhealth = { tcp = 80 }"),
            false,
        )
        .expect("added");
        doc.add_workload(
            w("name = \"pg\"\norder = 10\ncommand = [\"/bin/true\"]\nvolumes = [{ volume = \"db\", mount = \"/srv/db\" }]\nhealth = { tcp = 5432 }"),
            false,
        )
        .expect("added");
        doc
    }

    #[test]
    fn taking_the_role_promotes_mounts_addresses_then_starts_in_order() {
        let shown: Vec<String> = take_over(&doc()).iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "promote db",
                "promote www",
                "check and mount db on /srv/db",
                "check and mount www on /srv/www",
                "check and mount db on /srv/shared",
                "take the pair's address",
                "start pg",
                "wait until pg is healthy",
                "start web",
                "wait until web is healthy",
                "ready",
            ]
        );
        assert!(take_over(&doc()).contains(&Step::Mount {
            volume: "db".into(),
            device: "/dev/drbd0".into(),
            at: "/srv/db".into()
        }));
        // A pair without workloads still takes its address and says ready.
        assert_eq!(take_over(&PairConfig::default()), [Step::Address, Step::Ready]);
    }

    #[test]
    fn giving_it_up_undoes_everything_backwards_and_the_address_goes_last() {
        let shown: Vec<String> = give_up(&doc()).iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "stop web",
                "stop pg",
                "unmount /srv/shared",
                "unmount /srv/www",
                "unmount /srv/db",
                "demote www",
                "demote db",
                "release the pair's address",
            ]
        );
    }

    #[test]
    fn the_first_failing_step_stops_the_sequence_and_is_named() {
        let steps = take_over(&doc());
        let mut done = Vec::new();
        let e = run(
            &steps,
            |s| {
                if matches!(s, Step::Healthy { workload } if workload == "pg") {
                    Err("tcp 5432: refused".into())
                } else {
                    Ok(())
                }
            },
            |d| done.push(d.step),
        )
        .expect_err("pg is not healthy");
        assert_eq!(e, "wait until pg is healthy: tcp 5432: refused");
        assert_eq!(done.last().map(String::as_str), Some("start pg"), "nothing after the failing step ran");
    }
}
