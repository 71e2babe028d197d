//! `pairos workload`: define the pair's workloads. The command checks a definition on the
//! primary and changes the pair's configuration document; the peer adopts the new version.

use std::path::Path;

use anyhow::{bail, Context};

use crate::cli::{VolumeFolders, WorkloadCommand};
use crate::commands::volume::{document, on_the_primary, say_changed};
use crate::workloads::define::define;
use crate::Exit;
use pairos_mirror::document::PairConfig;
use pairos_workload::spec::{Workload, EXAMPLE};

pub fn run(cmd: WorkloadCommand) -> anyhow::Result<Exit> {
    match cmd {
        WorkloadCommand::Add(a) => add(&a.file, a.replace, &a.at),
        WorkloadCommand::Example => {
            print!("{EXAMPLE}");
            Ok(Exit::Success)
        }
        WorkloadCommand::List(a) => list(&a.at),
        WorkloadCommand::Remove(a) => remove(&a.name, &a.at),
        WorkloadCommand::Logs(a) => logs(&a.name, a.lines, &a.state),
        WorkloadCommand::Restart(a) => restart(&a.name, std::time::Duration::from_secs(a.wait), &a.at),
    }
}

fn add(file: &Path, replace: bool, a: &VolumeFolders) -> anyhow::Result<Exit> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let (name, _) = define(&a.state, &a.run_dir, &text, &file.display().to_string(), replace)?;
    let doc = document(a)?;
    say_changed(a.json, "workload", &name, &doc, if replace { "is defined anew" } else { "is added" })
}

fn remove(name: &str, a: &VolumeFolders) -> anyhow::Result<Exit> {
    on_the_primary(a, "removed")?;
    let mut doc = document(a)?;
    doc.remove_workload(name)?;
    doc.save(&a.state)?;
    say_changed(a.json, "workload", name, &doc, "is removed")
}

fn list(a: &VolumeFolders) -> anyhow::Result<Exit> {
    let doc = PairConfig::load(&a.state)?;
    let mut workloads: Vec<&Workload> = doc.workloads.iter().collect();
    workloads.sort_by_key(|w| (w.order, w.name.clone()));
    // What the runner sees, when the pair daemon runs here.
    let view = runner_view(&a.run_dir);
    if a.json {
        crate::output::json(&serde_json::json!({
            "version": doc.version, "workloads": workloads, "running": view,
        }))?;
        return Ok(Exit::Success);
    }
    println!("pair configuration version {}", doc.version);
    if let Some(v) = &view {
        for w in &v.workloads {
            let pid = w.pid.map(|p| format!(", pid {p}")).unwrap_or_default();
            let last = w.last_failure.as_ref().map(|f| format!("; last failure: {f}")).unwrap_or_default();
            println!("{}: {}{pid}; {} restarts left{last}", w.name, w.state, w.restarts_left);
        }
        if !v.last_change.is_empty() {
            let steps: Vec<String> = v.last_change.iter().map(|(s, ms)| format!("{s} {ms} ms")).collect();
            println!("last role change: {}", steps.join(", "));
        }
        for alarm in &v.alarms {
            println!("alarm: {alarm}");
        }
    }
    if workloads.is_empty() {
        println!("no workloads (pairos workload add FILE; pairos workload example shows one)");
    }
    for w in workloads {
        let mounts: Vec<String> =
            w.volumes.iter().map(|m| format!("{} on {}", m.volume, m.mount.display())).collect();
        let health = match (&w.health.tcp, &w.health.http, &w.health.command) {
            (Some(port), _, _) => format!("tcp {port}"),
            (_, Some(url), _) => format!("http {url}"),
            (_, _, Some(c)) => format!("command {}", c.join(" ")),
            _ => "none".into(),
        };
        println!(
            "{} (order {}): {} as {}; volumes: {}; {}; health: {health} every {} s; restarts: {} in {} min",
            w.name,
            w.order,
            w.command.join(" "),
            w.user,
            if mounts.is_empty() { "none".into() } else { mounts.join(", ") },
            if w.address { "on the pair's address" } else { "no address" },
            w.health.interval_s,
            w.restart.times,
            w.restart.within_minutes,
        );
    }
    Ok(Exit::Success)
}

/// What the runner sees now, when the pair daemon runs here.
fn runner_view(run_dir: &Path) -> Option<crate::workloads::runner::RunnerView> {
    let bytes = std::fs::read(run_dir.join(crate::workloads::runner::VIEW_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// What the runner says of workload `name` now.
fn running(run_dir: &Path, name: &str) -> Option<crate::workloads::runner::WorkloadView> {
    runner_view(run_dir)?.workloads.into_iter().find(|w| w.name == name)
}

fn restart(name: &str, wait: std::time::Duration, a: &VolumeFolders) -> anyhow::Result<Exit> {
    use crate::pair::daemon::control::{ask, Request};
    let doc = document(a)?;
    if doc.workload(name).is_none() {
        bail!("there is no workload {name} (pairos workload list shows the pair's)");
    }
    let before = running(&a.run_dir, name).and_then(|w| w.pid);
    match ask(&a.run_dir, Request::RestartWorkload(name.to_owned()))? {
        Ok(_) => {}
        Err(why) => bail!("{name} is not restarted: {why}"),
    }
    if !a.json {
        eprintln!("{name}: restarting (waiting up to {} s for it to be healthy)", wait.as_secs());
    }
    let start = std::time::Instant::now();
    loop {
        let now = running(&a.run_dir, name);
        if let Some(w) = now.as_ref().filter(|w| w.pid.is_some() && w.pid != before && w.state == "healthy") {
            if a.json {
                crate::output::json(&serde_json::json!({
                    "workload": name, "pid": w.pid, "state": w.state,
                    "seconds": start.elapsed().as_secs_f64(),
                }))?;
            } else {
                println!(
                    "{name} restarted: pid {}, healthy after {:.1} s",
                    w.pid.unwrap_or_default(),
                    start.elapsed().as_secs_f64()
                );
            }
            return Ok(Exit::Success);
        }
        if start.elapsed() > wait {
            let state = now.map_or_else(|| "not running".to_owned(), |w| w.state);
            bail!(
                "{name} was restarted and is not healthy after {} s (it is {state}; pairos workload logs {name} shows \
                 what it printed)",
                wait.as_secs()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

fn logs(name: &str, lines: usize, state: &Path) -> anyhow::Result<Exit> {
    let policy = crate::workloads::logs::on_node(state);
    let doc = PairConfig::load(state)?;
    let shown = crate::workloads::logs::tail(&policy, name, lines)
        .with_context(|| format!("reading {}", policy.file(name).display()))?;
    if shown.is_empty() {
        if doc.workload(name).is_none() {
            bail!("there is no workload {name}");
        }
        println!("workload {name} has printed nothing on this node ({})", policy.file(name).display());
    }
    for line in shown {
        println!("{line}");
    }
    Ok(Exit::Success)
}
