//! The server behind `ci/lab`: it owns one lab pair ([`PairLab`]: its VMs, BMCs and
//! namespaces) and outlives the command that started it. The commands ask it over a unix socket
//! beside the lab's folder, one JSON [`Request`] a connection, one JSON [`Answer`] back.

use std::io::{BufRead, BufReader, Read, Seek, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::pair_lab::{LinkName, PairLab, PairLabOptions};
use crate::{paths, LabError, Netns};

/// The lab's name: its namespaces are `plab-cli` and `plab-cli-client`.
pub const LAB: &str = "cli";
pub const CLIENT_NS: &str = "plab-cli-client";
pub const WITNESS_NS: &str = "plab-cli-witness";
/// How long starting waits for the pair to form.
const UP_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// The server's log line once it answers.
const READY: &str = "the lab server is ready";

pub fn socket_path() -> PathBuf {
    paths::work_root().join(format!("{LAB}.sock"))
}

pub fn server_log() -> PathBuf {
    paths::work_root().join(format!("{LAB}-server.log"))
}

/// Where an image built from a spec for the lab goes.
pub fn spec_image_dir() -> PathBuf {
    paths::work_root().join(format!("{LAB}-image"))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    Ping,
    Status,
    Exec {
        node: char,
        command: String,
    },
    Kill {
        node: char,
    },
    Hang {
        node: char,
    },
    Cut {
        link: LinkName,
        node: char,
    },
    /// One port (link and node), one link's ports on both nodes, or every port.
    Heal {
        link: Option<LinkName>,
        node: Option<char>,
    },
    Power {
        node: char,
        on: bool,
    },
    Sensor {
        node: char,
        name: String,
        value: u8,
    },
    Down,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Answer {
    /// The exit code for the command to end with.
    pub code: i32,
    /// What the command prints.
    pub out: String,
    /// [`PairLab::status`], for `Status`.
    pub status: Option<Value>,
    /// Why the request failed.
    pub error: Option<String>,
}

impl Answer {
    fn done(out: String) -> Answer {
        Answer { out: format!("{out}\n"), ..Answer::default() }
    }
}

/// Sends `request` to the server; its answer, or why not (no server, or the request failed).
pub fn ask(request: &Request) -> Result<Answer, String> {
    let socket = socket_path();
    let mut stream = UnixStream::connect(&socket).map_err(|_| {
        format!("no lab pair is up (no server at {}): run `ci/lab up` first", socket.display())
    })?;
    let mut line = serde_json::to_string(request).expect("serialises");
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(|e| format!("asking the lab server: {e}"))?;
    let mut text = String::new();
    stream.read_to_string(&mut text).map_err(|e| format!("reading the lab server's answer: {e}"))?;
    let answer: Answer =
        serde_json::from_str(&text).map_err(|e| format!("the lab server's answer {text:?}: {e}"))?;
    match answer.error {
        Some(e) => Err(e),
        None => Ok(answer),
    }
}

/// Whether a server answers.
pub fn is_up() -> bool {
    UnixStream::connect(socket_path()).is_ok()
}

/// Starts the server for a pair from `image` (as `exe serve …`, in a process group of its
/// own so it outlives the caller) and returns once the pair is formed. `show` hears the
/// server's progress lines.
/// What the lab pair is made with.
#[derive(Debug, Clone, Copy, Default)]
pub struct Setup {
    /// Each node has a BMC (its power, and the pair's fence).
    pub bmcs: bool,
    pub witness: bool,
    /// The image carries PostgreSQL: the pair gets its volume and workload
    /// ([`crate::postgres_pair`]).
    pub postgres: bool,
}

pub fn start(exe: &Path, image: &Path, setup: Setup, show: &mut dyn FnMut(&str)) -> Result<(), String> {
    if is_up() {
        return Err("a lab pair is already up: `ci/lab down` first".into());
    }
    std::fs::create_dir_all(paths::work_root()).map_err(|e| e.to_string())?;
    let log_path = server_log();
    let log = std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let mut server = std::process::Command::new(exe);
    server.arg("serve").arg("--image").arg(image);
    if !setup.bmcs {
        server.arg("--no-bmc");
    }
    if setup.witness {
        server.arg("--witness");
    }
    if setup.postgres {
        server.arg("--postgres");
    }
    let mut child = server
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting the lab server: {e}"))?;
    let mut shown = 0u64;
    let start = Instant::now();
    loop {
        shown = show_new(&log_path, shown, show);
        if let Ok(Some(status)) = child.try_wait() {
            show_new(&log_path, shown, show);
            return Err(format!("the lab server ended ({status}); its log: {}", log_path.display()));
        }
        if std::fs::read_to_string(&log_path).is_ok_and(|t| t.contains(READY)) {
            return Ok(());
        }
        if start.elapsed() > UP_TIMEOUT {
            return Err(format!("the pair did not form in {UP_TIMEOUT:?}; `ci/lab down` cleans up"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Shows the log's complete lines after byte `from`; returns where it stopped.
fn show_new(log: &Path, from: u64, show: &mut dyn FnMut(&str)) -> u64 {
    let Ok(mut f) = std::fs::File::open(log) else { return from };
    let _ = f.seek(std::io::SeekFrom::Start(from));
    let mut text = String::new();
    let _ = f.read_to_string(&mut text);
    let Some(end) = text.rfind('\n') else { return from };
    text[..end].lines().for_each(&mut *show);
    from + end as u64 + 1
}

/// Stops the server if one runs, then removes what a lab pair leaves: its namespaces (and
/// whatever still runs in them), its folder, socket, log and spec-built image.
pub fn down() -> Result<(), String> {
    let socket = socket_path();
    if is_up() {
        ask(&Request::Down)?;
        let start = Instant::now();
        while socket.exists() && start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    drop(Netns::adopt(CLIENT_NS));
    drop(Netns::adopt(WITNESS_NS));
    drop(Netns::adopt(&format!("plab-{LAB}")));
    for path in [paths::work_root().join(LAB), spec_image_dir()] {
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    for path in [socket, server_log()] {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// The server: makes the pair, then answers requests one at a time until `Down`.
pub fn serve(image: &Path, setup: Setup) -> Result<(), LabError> {
    let opts = PairLabOptions {
        name: LAB.into(),
        image: image.to_owned(),
        bmcs: setup.bmcs,
        witness: setup.witness,
    };
    let mut pair = PairLab::up(&opts, &mut |msg| println!("{msg}"))?;
    if setup.postgres {
        crate::postgres_pair::setup(&mut pair, &mut |msg| println!("{msg}"))?;
    }
    let socket = socket_path();
    let _ = std::fs::remove_file(&socket);
    let listener =
        UnixListener::bind(&socket).map_err(|e| LabError::Setup(format!("{}: {e}", socket.display())))?;
    println!("{READY}");
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut line = String::new();
        if BufReader::new(&stream).read_line(&mut line).is_err() {
            continue;
        }
        let request = serde_json::from_str::<Request>(&line);
        let stop = matches!(request, Ok(Request::Down));
        let answer = match request {
            Ok(r) => handle(&mut pair, r)
                .unwrap_or_else(|e| Answer { error: Some(e.to_string()), ..Answer::default() }),
            Err(e) => Answer { error: Some(format!("not a lab request: {e}")), ..Answer::default() },
        };
        let _ = stream.write_all(serde_json::to_string(&answer).expect("serialises").as_bytes());
        drop(stream);
        if stop {
            break;
        }
    }
    drop(pair);
    let _ = std::fs::remove_file(&socket);
    println!("the lab pair is stopped");
    Ok(())
}

fn handle(pair: &mut PairLab, request: Request) -> Result<Answer, LabError> {
    Ok(match request {
        Request::Ping | Request::Down => Answer::default(),
        Request::Status => Answer { status: Some(pair.status()), ..Answer::default() },
        Request::Exec { node, command } => {
            let (code, out) = pair.exec(node, &command, Duration::from_secs(300))?;
            let out = if out.is_empty() { out } else { format!("{out}\n") };
            Answer { code, out, ..Answer::default() }
        }
        Request::Kill { node } => {
            pair.kill(node)?;
            Answer::done(format!("node {node}: killed"))
        }
        Request::Hang { node } => {
            pair.hang(node)?;
            Answer::done(format!("node {node}: its pair daemon is stopped (SIGSTOP)"))
        }
        Request::Cut { link, node } => {
            pair.set_link(link, node, false)?;
            Answer::done(format!("node {node}: {link} port down"))
        }
        Request::Heal { link, node } => match (link, node) {
            (Some(link), Some(node)) => {
                pair.set_link(link, node, true)?;
                Answer::done(format!("node {node}: {link} port up"))
            }
            (Some(link), None) => {
                for node in ['a', 'b'] {
                    pair.set_link(link, node, true)?;
                }
                Answer::done(format!("{link} ports up"))
            }
            (None, _) => {
                pair.heal_all()?;
                Answer::done("every port up".into())
            }
        },
        Request::Power { node, on } => {
            pair.power(node, on)?;
            Answer::done(format!("node {node}: power {}", if on { "on" } else { "off" }))
        }
        Request::Sensor { node, name, value } => {
            pair.sensor(node, &name, value)?;
            Answer::done(format!("node {node}: {name} = {value}"))
        }
    })
}

/// The status as a person reads it.
pub fn render_status(s: &Value) -> String {
    let mut out = String::new();
    if let Some(nodes) = s["nodes"].as_object() {
        for (letter, n) in nodes {
            out += &format!(
                "node {letter} ({}): {}, {}; private {} public {}; BMC {}\n",
                n["node"].as_str().unwrap_or("?"),
                n["state"].as_str().unwrap_or("?"),
                n["role"].as_str().unwrap_or("?"),
                n["macs"]["private"].as_str().unwrap_or("?"),
                n["macs"]["public"].as_str().unwrap_or("?"),
                n["bmc"].as_str().unwrap_or("none"),
            );
        }
    }
    let answered: Vec<&str> = s["address_answered_by"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(w) = s["witness"].as_object() {
        let kept = &w["kept"]["pairs"]["pair-lab"];
        out += &format!(
            "witness {}: {}\n",
            w["address"].as_str().unwrap_or("?"),
            match (kept["holder"].as_str(), kept["held"].as_bool()) {
                (Some(h), Some(true)) => format!("{h} holds the lease for epoch {}", kept["epoch"]),
                (Some(h), _) => format!("{h} gave back the lease"),
                (None, _) => "no grant yet".into(),
            }
        );
    }
    out += &format!(
        "pair address {}: answered by {}\nclient namespace: {}\n",
        s["address"].as_str().unwrap_or("?"),
        if answered.is_empty() { "nobody".to_owned() } else { answered.join(", ") },
        s["client_namespace"].as_str().unwrap_or("?"),
    );
    out
}
