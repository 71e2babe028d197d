//! `pairos pair`: the operator's say in who belongs to the pair. The running node reads what
//! these write on each request, so they act at once.

use anyhow::{bail, Context};

use crate::cli::{EnrolmentMode, OnOff, PairCommand};
use crate::pair::daemon::{self, config::DaemonConfig, control, status};
use crate::pair::enrolment::{normal_mac, Mode};
use crate::pair::identity::{self, write_atomically};
use crate::pair::services;
use crate::Exit;

fn mac_arg(mac: &str) -> anyhow::Result<String> {
    normal_mac(mac).with_context(|| format!("{mac:?}: expected a MAC address like 52:54:00:12:34:56"))
}

pub fn run(cmd: PairCommand) -> anyhow::Result<Exit> {
    match cmd {
        PairCommand::Approve(a) => {
            let mac = services::approve(&a.approved, &a.mac)?;
            println!("approved {mac}: it enrols the next time it asks (within seconds)");
        }
        PairCommand::ForgetPeer(a) => {
            let mac = mac_arg(&a.mac)?;
            if !a.state.is_dir() {
                bail!("{}: no such state folder (is this a pairos node?)", a.state.display());
            }
            if identity::forget_peer(&a.state, &mac)? {
                println!("forgot {mac}: while the pair misses a node, it is offered recovery");
            } else {
                println!("{mac} was not a remembered peer; nothing changed");
            }
        }
        PairCommand::Enrolment(a) => {
            let mode = match a.mode {
                EnrolmentMode::Auto => Mode::Auto,
                EnrolmentMode::Approve => Mode::Approve,
            };
            if !a.state.is_dir() {
                bail!("{}: no such state folder (is this a pairos node?)", a.state.display());
            }
            let path = a.state.join(services::MODE_FILE);
            write_atomically(&path, &serde_json::to_vec(&mode).expect("serialises"))?;
            println!("enrolment: {}", serde_json::to_string(&mode).expect("serialises").trim_matches('"'));
        }
        PairCommand::Run(a) => {
            daemon::run(DaemonConfig::load(&a.config)?)?;
        }
        PairCommand::Status(a) => {
            let s = status::read(&status::status_path(&a.run_dir))?;
            // The volume manager's view beside it, when the node has volumes.
            let volumes = std::fs::read(crate::volumes::view::path(&a.run_dir))
                .ok()
                .and_then(|b| serde_json::from_slice::<crate::volumes::view::VolumesView>(&b).ok());
            if a.json {
                #[derive(serde::Serialize)]
                struct Shown<'a> {
                    #[serde(flatten)]
                    pair: &'a status::PairStatus,
                    volumes: Option<crate::volumes::view::VolumesView>,
                    console: Option<serde_json::Value>,
                }
                let console = std::fs::read(a.run_dir.join(crate::console::INFO_FILE))
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                crate::output::json(&Shown { pair: &s, volumes, console })?;
            } else {
                print!("{}", status::render(&s));
                if let Some(v) = volumes.filter(|v| !v.volumes.is_empty()) {
                    print!("volumes, {}", crate::volumes::view::render(&v));
                }
                print!("{}", crate::console::status_line(&a.run_dir).unwrap_or_default());
            }
        }
        PairCommand::Switchover(a) => return answer(control::ask(&a.run_dir, control::Request::Switchover)?),
        PairCommand::Maintenance(a) => {
            let on = a.state == OnOff::On;
            return answer(control::ask(&a.run_dir, control::Request::Maintenance(on))?);
        }
    }
    Ok(Exit::Success)
}

/// A `pair` command against the pair's console (`pairos --pair https://ADDRESS ...`).
pub fn remote(cmd: PairCommand, url: &str, cert: Option<&std::path::Path>) -> anyhow::Result<Exit> {
    use crate::console::remote::{password, Remote};
    let cert = cert.context(
        "--pair needs the pair's certificate: --pair-cert FILE (pairos console fingerprint --pem)",
    )?;
    let r = Remote::login(url, cert, &password()?)?;
    match cmd {
        PairCommand::Status(a) => {
            let state = r.get("/api/v1/state")?;
            if a.json {
                crate::output::json(&state)?;
            } else {
                let s: status::PairStatus = serde_json::from_value(state["pair"].clone())
                    .context("the console's answer has no pair status")?;
                print!("{}", status::render(&s));
                if let Ok(v) =
                    serde_json::from_value::<crate::volumes::view::VolumesView>(state["volumes"].clone())
                {
                    if !v.volumes.is_empty() {
                        print!("volumes, {}", crate::volumes::view::render(&v));
                    }
                }
                println!("served by {} at {url}", state["served_by"].as_str().unwrap_or("?"));
            }
            Ok(Exit::Success)
        }
        PairCommand::Switchover(_) => {
            let v = r.post("/api/v1/switchover", &serde_json::json!({}))?;
            println!("{}", v["done"].as_str().unwrap_or_default());
            Ok(Exit::Success)
        }
        PairCommand::Maintenance(a) => {
            let v = r.post("/api/v1/maintenance", &serde_json::json!({ "on": a.state == OnOff::On }))?;
            println!("{}", v["done"].as_str().unwrap_or_default());
            Ok(Exit::Success)
        }
        _ => bail!("with --pair, only `pair status`, `pair switchover` and `pair maintenance` run remotely"),
    }
}

/// Prints the daemon's answer; a refusal is a failure with its reason.
fn answer(a: Result<String, String>) -> anyhow::Result<Exit> {
    match a {
        Ok(text) => {
            println!("{text}");
            Ok(Exit::Success)
        }
        Err(why) => bail!("refused: {why}"),
    }
}
