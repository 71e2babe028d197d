//! `ci/lab`: drives a lab pair (two nodes with BMCs and watchdogs, a client on the public
//! network) for tests, benchmarks, scripts and newcomers. `up` starts a server that owns the
//! pair (its VMs, BMCs and namespaces) and outlives the command; the other commands ask it
//! over a unix socket beside the lab's folder. `down` stops it and removes what it made.

use std::io::{BufRead, BufReader, Read, Seek, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use pairos_lab::pair_lab::{LinkName, PairLab, PairLabOptions};
use pairos_lab::{image, paths, LabError, Netns};
use serde_json::{json, Value};

/// The lab's name: its namespaces are `plab-cli` and `plab-cli-client`.
const LAB: &str = "cli";
const CLIENT_NS: &str = "plab-cli-client";
/// How long `up` waits for the pair to form (an image build comes before this).
const UP_TIMEOUT: Duration = Duration::from_secs(20 * 60);

#[derive(Parser, Debug)]
#[command(
    name = "ci/lab",
    bin_name = "ci/lab",
    about = "Drive a lab pair: nodes a (node-1) and b (node-2) in QEMU, with BMCs, watchdogs and a client",
    long_about = "Drive a lab pair: nodes a (node-1) and b (node-2) in QEMU (TCG, OVMF), each with an \
                  ipmi_sim BMC that is its power and an i6300esb watchdog, a private link and a public \
                  network with a client namespace. `up` returns when the pair is formed (node a \
                  primary) and leaves a server running; `down` stops everything. Needs root."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Make the pair from one image and boot it; returns when the pair is formed.
    Up {
        /// An image folder made by `pairos build --out` (signed with the lab's test key).
        #[arg(long, value_name = "DIR", conflicts_with = "spec")]
        image: Option<PathBuf>,
        /// Build the image from this spec first (cached by its inputs).
        #[arg(long, value_name = "FILE")]
        spec: Option<PathBuf>,
        /// Nodes without BMCs: the pair cannot fence, so a silent peer is never replaced.
        #[arg(long)]
        no_bmc: bool,
        /// Run a witness for the pair (not built yet: refused).
        #[arg(long)]
        witness: bool,
    },
    /// Per node: state, role, MACs; the pair's address and who answers for it; the client
    /// namespace's name.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a shell command on a node's console; print its output and exit with its code.
    Exec {
        /// The node.
        node: NodeName,
        /// The command (its words are joined with spaces and run by the node's shell).
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Run a command in the client namespace on the public network.
    Client {
        /// The command and its arguments.
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// The node's VM dies at once (its QEMU is killed).
    Kill {
        /// The node.
        node: NodeName,
    },
    /// Stop the node's pair daemon (SIGSTOP); its watchdog then resets the node.
    Hang {
        /// The node.
        node: NodeName,
    },
    /// Take the node's port of a link down.
    Cut {
        /// The link.
        link: Link,
        /// The node.
        node: NodeName,
    },
    /// Bring ports up again: one (LINK NODE), or all of them.
    Heal {
        /// The link (all links if not given).
        link: Option<Link>,
        /// The node (with LINK).
        node: Option<NodeName>,
    },
    /// Power the node on or off through its BMC.
    Power {
        /// The node.
        node: NodeName,
        /// on or off.
        state: OnOff,
    },
    /// Set an emulated BMC sensor (`CPU Temp`, in degrees C: critical at 85).
    Sensor {
        /// The node.
        node: NodeName,
        /// The sensor's name (case, spaces and dashes do not matter).
        name: String,
        /// Its reading, 0 to 255.
        value: u8,
    },
    /// Stop everything; remove every namespace and file the lab made (the image cache stays).
    Down,
    /// The server behind `up` (not for people).
    #[command(hide = true)]
    Serve {
        /// The image folder.
        #[arg(long)]
        image: PathBuf,
        /// Nodes without BMCs.
        #[arg(long)]
        no_bmc: bool,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum NodeName {
    A,
    B,
}

impl NodeName {
    fn letter(self) -> char {
        match self {
            NodeName::A => 'a',
            NodeName::B => 'b',
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Link {
    Private,
    Public,
}

impl From<Link> for LinkName {
    fn from(l: Link) -> LinkName {
        match l {
            Link::Private => LinkName::Private,
            Link::Public => LinkName::Public,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum OnOff {
    On,
    Off,
}

fn socket_path() -> PathBuf {
    paths::work_root().join(format!("{LAB}.sock"))
}

fn server_log() -> PathBuf {
    paths::work_root().join(format!("{LAB}-server.log"))
}

fn spec_image_dir() -> PathBuf {
    paths::work_root().join(format!("{LAB}-image"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ci/lab: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Up { image, spec, no_bmc, witness } => up(image, spec, no_bmc, witness),
        Command::Serve { image, no_bmc } => {
            serve(&image, no_bmc).map(|()| ExitCode::SUCCESS).map_err(|e| e.to_string())
        }
        Command::Client { command } => {
            ask(&["ping".into()])?;
            let status = std::process::Command::new("ip")
                .args(["netns", "exec", CLIENT_NS])
                .args(&command)
                .status()
                .map_err(|e| format!("running {command:?} in {CLIENT_NS}: {e}"))?;
            Ok(ExitCode::from(status.code().unwrap_or(1).clamp(0, 255) as u8))
        }
        Command::Down => down(),
        Command::Status { json } => {
            let answer = ask(&["status".into()])?;
            let status = &answer["status"];
            if json {
                println!("{}", serde_json::to_string_pretty(status).expect("serialises"));
            } else {
                print!("{}", render_status(status));
            }
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            let args: Vec<String> = std::env::args().skip(1).collect();
            let answer = ask(&args)?;
            print!("{}", answer["out"].as_str().unwrap_or_default());
            let code = answer["code"].as_i64().unwrap_or(1);
            Ok(ExitCode::from(code.clamp(0, 255) as u8))
        }
    }
}

fn render_status(s: &Value) -> String {
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
    out += &format!(
        "pair address {}: answered by {}\nclient namespace: {}\n",
        s["address"].as_str().unwrap_or("?"),
        if answered.is_empty() { "nobody".to_owned() } else { answered.join(", ") },
        s["client_namespace"].as_str().unwrap_or("?"),
    );
    out
}

/// Sends `args` to the server; its answer (`{"code", "out"}` and more), or why not.
fn ask(args: &[String]) -> Result<Value, String> {
    let socket = socket_path();
    let mut stream = UnixStream::connect(&socket).map_err(|_| {
        format!("no lab pair is up (no server at {}): run `ci/lab up` first", socket.display())
    })?;
    let mut line = serde_json::to_string(args).expect("serialises");
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(|e| format!("asking the lab server: {e}"))?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(|e| format!("reading the lab server's answer: {e}"))?;
    let v: Value =
        serde_json::from_str(&answer).map_err(|e| format!("the lab server's answer {answer:?}: {e}"))?;
    if let Some(e) = v["error"].as_str() {
        return Err(e.to_owned());
    }
    Ok(v)
}

fn up(
    image: Option<PathBuf>,
    spec: Option<PathBuf>,
    no_bmc: bool,
    witness: bool,
) -> Result<ExitCode, String> {
    if witness {
        return Err("--witness: the witness (`pairos witness`) is not built yet".into());
    }
    if UnixStream::connect(socket_path()).is_ok() {
        return Err("a lab pair is already up: `ci/lab down` first".into());
    }
    let image = match (image, spec) {
        (Some(dir), _) => {
            if !dir.join("manifest.json").is_file() {
                return Err(format!("--image {}: not an image folder (no manifest.json)", dir.display()));
            }
            dir
        }
        (None, Some(spec)) => {
            eprintln!("ci/lab: building the image from {}", spec.display());
            image::build_image(Some(&spec), &spec_image_dir()).map_err(|e| e.to_string())?
        }
        (None, None) => {
            eprintln!("ci/lab: building the default image (cached by its inputs)");
            image::default_image().map_err(|e| e.to_string())?
        }
    };
    std::fs::create_dir_all(paths::work_root()).map_err(|e| e.to_string())?;
    let log_path = server_log();
    let log = std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let mut server = std::process::Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
    server.arg("serve").arg("--image").arg(&image);
    if no_bmc {
        server.arg("--no-bmc");
    }
    // A process group of its own: the server outlives this command and its terminal.
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
        shown = show_new(&log_path, shown);
        if let Ok(Some(status)) = child.try_wait() {
            show_new(&log_path, shown);
            return Err(format!("the lab server ended ({status}); its log: {}", log_path.display()));
        }
        if std::fs::read_to_string(&log_path).is_ok_and(|t| t.contains(READY)) {
            break;
        }
        if start.elapsed() > UP_TIMEOUT {
            return Err(format!("the pair did not form in {UP_TIMEOUT:?}; `ci/lab down` cleans up"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = ask(&["status".into()])?;
    print!("{}", render_status(&status["status"]));
    Ok(ExitCode::SUCCESS)
}

/// Prints the log's lines after byte `from`; returns where it stopped.
fn show_new(log: &Path, from: u64) -> u64 {
    let Ok(mut f) = std::fs::File::open(log) else { return from };
    let _ = f.seek(std::io::SeekFrom::Start(from));
    let mut text = String::new();
    let _ = f.read_to_string(&mut text);
    let Some(end) = text.rfind('\n') else { return from };
    for line in text[..end].lines() {
        eprintln!("ci/lab: {line}");
    }
    from + end as u64 + 1
}

const READY: &str = "the lab server is ready";

fn down() -> Result<ExitCode, String> {
    let socket = socket_path();
    if UnixStream::connect(&socket).is_ok() {
        ask(&["down".into()])?;
        let start = Instant::now();
        while socket.exists() && start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // Whatever a server that died left behind: its namespaces (and what runs in them), files.
    drop(Netns::adopt(CLIENT_NS));
    drop(Netns::adopt(&format!("plab-{LAB}")));
    for path in [paths::work_root().join(LAB), spec_image_dir()] {
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    for path in [socket, server_log()] {
        let _ = std::fs::remove_file(path);
    }
    eprintln!("ci/lab: the lab pair is down");
    Ok(ExitCode::SUCCESS)
}

fn serve(image: &Path, no_bmc: bool) -> Result<(), LabError> {
    let opts = PairLabOptions { name: LAB.into(), image: image.to_owned(), bmcs: !no_bmc };
    let mut pair = PairLab::up(&opts, &mut |msg| println!("{msg}"))?;
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
        let (answer, stop) = match serde_json::from_str::<Vec<String>>(&line) {
            Ok(args) => handle(&mut pair, &args),
            Err(e) => (json!({"error": format!("a request that is not a JSON list of words: {e}")}), false),
        };
        let _ = stream.write_all(answer.to_string().as_bytes());
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

/// One request: its answer, and whether the server stops after it.
fn handle(pair: &mut PairLab, args: &[String]) -> (Value, bool) {
    let ok = |out: String| json!({"code": 0, "out": out});
    let result: Result<Value, LabError> = match args.first().map(String::as_str) {
        Some("ping") => Ok(ok(String::new())),
        Some("status") => Ok(json!({"code": 0, "status": pair.status()})),
        Some("down") => return (ok(String::new()), true),
        _ => {
            let words = std::iter::once("ci/lab".to_owned()).chain(args.iter().cloned());
            match Cli::try_parse_from(words) {
                Err(e) => Ok(json!({"error": e.to_string()})),
                Ok(cli) => command(pair, cli.command),
            }
        }
    };
    match result {
        Ok(v) => (v, false),
        Err(e) => (json!({"error": e.to_string()}), false),
    }
}

fn command(pair: &mut PairLab, command: Command) -> Result<Value, LabError> {
    let done = |what: String| Ok::<Value, LabError>(json!({"code": 0, "out": format!("{what}\n")}));
    match command {
        Command::Exec { node, command } => {
            let (code, out) = pair.exec(node.letter(), &command.join(" "), Duration::from_secs(300))?;
            let out = if out.is_empty() { out } else { format!("{out}\n") };
            Ok(json!({"code": code, "out": out}))
        }
        Command::Kill { node } => {
            pair.kill(node.letter())?;
            done(format!("node {}: killed", node.letter()))
        }
        Command::Hang { node } => {
            pair.hang(node.letter())?;
            done(format!("node {}: its pair daemon is stopped (SIGSTOP)", node.letter()))
        }
        Command::Cut { link, node } => {
            pair.set_link(link.into(), node.letter(), false)?;
            done(format!("node {}: {link:?} port down", node.letter()))
        }
        Command::Heal { link, node } => match (link, node) {
            (Some(link), Some(node)) => {
                pair.set_link(link.into(), node.letter(), true)?;
                done(format!("node {}: {link:?} port up", node.letter()))
            }
            (None, None) => {
                pair.heal_all()?;
                done("every port up".into())
            }
            (Some(link), None) => {
                for letter in ['a', 'b'] {
                    pair.set_link(link.into(), letter, true)?;
                }
                done(format!("{link:?} ports up"))
            }
            (None, Some(_)) => Err(LabError::Setup("heal NODE needs a LINK: heal private|public a|b".into())),
        },
        Command::Power { node, state } => {
            pair.power(node.letter(), matches!(state, OnOff::On))?;
            done(format!("node {}: power {state:?}", node.letter()))
        }
        Command::Sensor { node, name, value } => {
            pair.sensor(node.letter(), &name, value)?;
            done(format!("node {}: {name} = {value}", node.letter()))
        }
        Command::Up { .. } => Err(LabError::Setup("a lab pair is already up: `ci/lab down` first".into())),
        Command::Status { .. } | Command::Client { .. } | Command::Down | Command::Serve { .. } => {
            Err(LabError::Setup("not a request for the server".into()))
        }
    }
}
