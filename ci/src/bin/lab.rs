//! `ci/lab`: drives a lab pair (two nodes with BMCs and watchdogs, a client on the public
//! network) for tests, benchmarks, scripts and newcomers. Its arguments, wired to the lab
//! server ([`pairos_lab::lab_server`]): `up` starts it, the other commands ask it, `down` stops
//! it and removes what it made.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use pairos_lab::lab_server::{self, Request, CLIENT_NS};
use pairos_lab::pair_lab::LinkName;
use pairos_lab::{image, postgres_pair};

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
        /// Build the image from this spec first (cached by its inputs). A spec that carries
        /// PostgreSQL (ci/specs/postgres.toml) also gets its volume `db` and its workload,
        /// answering at the pair's address on port 5432.
        #[arg(long, value_name = "FILE")]
        spec: Option<PathBuf>,
        /// Nodes without BMCs: the pair cannot fence, so a silent peer is never replaced.
        #[arg(long)]
        no_bmc: bool,
        /// Run a witness (`pairos witness run`) on the public network and name it in the
        /// pair's settings: with it, a silent peer is replaced without a fence.
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
        /// A witness for the pair.
        #[arg(long)]
        witness: bool,
        /// The image carries PostgreSQL: make its volume and workload.
        #[arg(long)]
        postgres: bool,
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

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(code.clamp(0, 255) as u8)
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    let request = match cli.command {
        Command::Up { image, spec, no_bmc, witness } => return up(image, spec, no_bmc, witness),
        Command::Serve { image, no_bmc, witness, postgres } => {
            let setup = lab_server::Setup { bmcs: !no_bmc, witness, postgres };
            lab_server::serve(&image, setup).map_err(|e| e.to_string())?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Down => {
            lab_server::down()?;
            eprintln!("ci/lab: the lab pair is down");
            return Ok(ExitCode::SUCCESS);
        }
        Command::Client { command } => {
            lab_server::ask(&Request::Ping)?;
            let status = std::process::Command::new("ip")
                .args(["netns", "exec", CLIENT_NS])
                .args(&command)
                .status()
                .map_err(|e| format!("running {command:?} in {CLIENT_NS}: {e}"))?;
            return Ok(exit_code(status.code().unwrap_or(1)));
        }
        Command::Status { json } => {
            let status = lab_server::ask(&Request::Status)?.status.unwrap_or_default();
            if json {
                println!("{}", serde_json::to_string_pretty(&status).expect("serialises"));
            } else {
                print!("{}", lab_server::render_status(&status));
            }
            return Ok(ExitCode::SUCCESS);
        }
        Command::Exec { node, command } => Request::Exec { node: node.letter(), command: command.join(" ") },
        Command::Kill { node } => Request::Kill { node: node.letter() },
        Command::Hang { node } => Request::Hang { node: node.letter() },
        Command::Cut { link, node } => Request::Cut { link: link.into(), node: node.letter() },
        Command::Heal { link, node } => {
            if link.is_none() && node.is_some() {
                return Err("heal NODE needs a LINK: ci/lab heal private|public a|b".into());
            }
            Request::Heal { link: link.map(Into::into), node: node.map(NodeName::letter) }
        }
        Command::Power { node, state } => {
            Request::Power { node: node.letter(), on: matches!(state, OnOff::On) }
        }
        Command::Sensor { node, name, value } => Request::Sensor { node: node.letter(), name, value },
    };
    let answer = lab_server::ask(&request)?;
    print!("{}", answer.out);
    Ok(exit_code(answer.code))
}

fn up(
    image: Option<PathBuf>,
    spec: Option<PathBuf>,
    no_bmc: bool,
    witness: bool,
) -> Result<ExitCode, String> {
    if lab_server::is_up() {
        return Err("a lab pair is already up: `ci/lab down` first".into());
    }
    let postgres = match &spec {
        Some(spec) => postgres_pair::carries_postgres(spec).map_err(|e| e.to_string())?,
        None => false,
    };
    let image = match (image, spec) {
        (Some(dir), _) => {
            if !dir.join("manifest.json").is_file() {
                return Err(format!("--image {}: not an image folder (no manifest.json)", dir.display()));
            }
            dir
        }
        (None, Some(spec)) => {
            eprintln!("ci/lab: building the image from {}", spec.display());
            image::build_image(Some(&spec), &lab_server::spec_image_dir()).map_err(|e| e.to_string())?
        }
        (None, None) => {
            eprintln!("ci/lab: building the default image (cached by its inputs)");
            image::default_image().map_err(|e| e.to_string())?
        }
    };
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let setup = lab_server::Setup { bmcs: !no_bmc, witness, postgres };
    lab_server::start(&exe, &image, setup, &mut |line| eprintln!("ci/lab: {line}"))?;
    let status = lab_server::ask(&Request::Status)?.status.unwrap_or_default();
    print!("{}", lab_server::render_status(&status));
    Ok(ExitCode::SUCCESS)
}
