//! A lab pair: nodes `a` (node-1) and `b` (node-2) from one image, preloaded as a hardware
//! partner would (the same pair key; the pair's settings with its address and, unless there
//! are none, both BMCs), joined by a private link and a public network, each with an i6300esb
//! watchdog. A client namespace sits on the public network.
//!
//! With BMCs, each node's BMC (`ipmi_sim` on the public network) is its power: it runs the
//! node's QEMU (`startcmd`), so "power off" really ends the VM and "power on" starts it again,
//! and the node reads the BMC's emulated `CPU Temp` sensor in-band through its KCS interface.
//!
//! The lab tests and the `ci/lab` command drive it through the same calls.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::bmc::{self, Bmc, BmcSpec};
use crate::error::io;
use crate::witness::{self, LabWitness};
use crate::{image, DiskBus, Endpoint, Firmware, Lab, LabError, NicModel, Vm, VmSpec};

pub const PAIR_ADDRESS: &str = "192.168.50.10";
pub const GATEWAY: &str = "192.168.50.1";
pub const CLIENT_ADDRESS: &str = "192.168.50.100";
/// How long a node may take from power on to its pair daemon running (OVMF, TCG).
pub const BOOT: Duration = Duration::from_secs(400);
const GIB: u64 = 1 << 30;
/// The lab's pairs wait 20 s, not a minute, between preventive moves, so that a campaign of
/// moves does not spend its time waiting.
pub const LAB_COOLDOWN_MS: u64 = 20_000;
/// A stuck volume is cycled after 30 s, not a minute, so that a stalled resync is seen in
/// the lab soon.
pub const LAB_RESYNC_STALL_MS: u64 = 30_000;
/// A node told to boot its disk whose disk has not started 100 s after its last network-boot
/// ask is reset, and offered recovery when it network-boots again (3 minutes by default): a
/// lab node (IPv4 network options only) boots its disk and joins within a minute under load.
pub const LAB_REJOIN_WAIT_MS: u64 = 100_000;
const KEY: &str = "5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e";

/// How a lab pair is made.
#[derive(Debug, Clone)]
pub struct PairLabOptions {
    /// The lab's name (its namespaces are `plab-NAME` and `plab-NAME-client`).
    pub name: String,
    /// The image folder (`pairos build --out`).
    pub image: PathBuf,
    /// Each node gets a BMC, and the pair fences through them.
    pub bmcs: bool,
    /// A witness (`pairos witness run`) on the public network, named in the pair's settings.
    pub witness: bool,
}

/// The link a cut or heal names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkName {
    Private,
    Public,
}

impl std::fmt::Display for LinkName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LinkName::Private => "private",
            LinkName::Public => "public",
        })
    }
}

impl LinkName {
    /// The NIC's index on a node: the private link's port is the first.
    fn nic(self) -> usize {
        match self {
            LinkName::Private => 0,
            LinkName::Public => 1,
        }
    }
}

/// One node of the pair.
#[derive(Debug)]
pub struct LabNode {
    /// `a` or `b`.
    pub letter: char,
    /// The pair's name for it: `node-1` or `node-2`.
    pub node: String,
    pub vm: Vm,
    /// The MACs of its private and public ports.
    pub macs: [String; 2],
    pub bmc: Option<Bmc>,
    /// The node's system disk.
    disk: PathBuf,
}

/// A running lab pair; everything stops and every namespace goes on drop (nodes first).
#[derive(Debug)]
pub struct PairLab {
    nodes: Vec<LabNode>,
    client: Endpoint,
    witness: Option<(LabWitness, Endpoint)>,
    lab: Lab,
}

/// The node configuration a partner preloads on `node`.
fn node_config(node: &str, peer: &str, own: &str, bmcs: bool, witness: bool) -> String {
    let bmc = if bmcs {
        format!(
            r#", "bmc": {{"node-1": {{"host": "192.168.50.21", "user": "{user}"}},
                        "node-2": {{"host": "192.168.50.22", "user": "{user}"}}}}"#,
            user = bmc::USER
        )
    } else {
        String::new()
    };
    let (witnesses, witness_key) = if witness {
        (
            format!(r#", "witnesses": ["{}:7470"]"#, witness::ADDRESS),
            format!(r#", "witness_key": "{}""#, witness::KEY_HEX),
        )
    } else {
        (String::new(), String::new())
    };
    format!(
        r#"{{"pair_id": "pair-lab", "node_name": "{node}", "peer_name": "{peer}", "pair_key": "{KEY}",
            "management": {{"address": "{own}", "prefix": 24, "gateway": "{GATEWAY}", "dns": null}},
            "pair": {{"address": "{PAIR_ADDRESS}/24",
                      "management": {{"node-1": "192.168.50.11", "node-2": "192.168.50.12"}},
                      "timing": {{"cooldown_ms": {LAB_COOLDOWN_MS}, "resync_stall_ms": {LAB_RESYNC_STALL_MS},
                                 "rejoin_wait_ms": {LAB_REJOIN_WAIT_MS}}}{bmc}{witnesses}}},
            "bmc_password": "{password}"{witness_key}}}"#,
        password = bmc::PASSWORD,
    )
}

fn vm_spec(name: &str, disk: &Path, bmc_port: Option<u16>) -> VmSpec {
    let spec = VmSpec::new(name)
        .firmware(Firmware::Ovmf)
        .nic("private", NicModel::VirtioNet)
        .nic("public", NicModel::VirtioNet)
        .boot_disk(disk, DiskBus::Virtio)
        .then_boot_nic("private")
        .watchdog();
    match bmc_port {
        Some(port) => spec.bmc(port),
        None => spec,
    }
}

/// The node's `pairos pair status --json`, if it answers.
fn daemon_status(vm: &mut Vm) -> Option<Value> {
    json_of(vm, "pairos pair status --json", Duration::from_secs(20)).ok()
}

/// What `command` prints on the node, as JSON. The daemon's and the kernel's lines share the
/// console and can garble an answer: a garbled answer is asked for again, twice.
fn json_of(vm: &mut Vm, command: &str, timeout: Duration) -> Result<Value, LabError> {
    let mut last = String::new();
    for _ in 0..3 {
        let (code, out) = vm.run_tagged(command, timeout)?;
        if code == 0 {
            match serde_json::from_str::<Value>(out.trim()) {
                Ok(v) => return Ok(v),
                Err(e) => last = format!("{e}: {out}"),
            }
        } else {
            last = format!("exit code {code}: {out}");
        }
    }
    Err(LabError::Setup(format!("{command}: no JSON answer in three tries (last: {last})")))
}

/// Quotes `arg` for a POSIX shell.
fn shell_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

fn letter_index(letter: char) -> Result<usize, LabError> {
    match letter {
        'a' => Ok(0),
        'b' => Ok(1),
        _ => Err(LabError::Setup(format!("node {letter:?}: expected a or b"))),
    }
}

impl PairLab {
    /// Makes the pair and boots it; returns once both daemons run and node a is primary.
    /// `progress` hears what is being done.
    pub fn up(opts: &PairLabOptions, progress: &mut dyn FnMut(&str)) -> Result<PairLab, LabError> {
        let mut lab = Lab::new(&opts.name)?;
        lab.link("private")?;
        lab.link("public")?;
        // The gateway and the BMCs answer on the public bridge, and only there (with the
        // default arp_ignore, the lab namespace would answer for them on the private link too).
        lab.netns().cmd("sysctl").args(["-qw", "net.ipv4.conf.all.arp_ignore=1"]).run()?;
        lab.netns().ip(&["addr", "add", &format!("{GATEWAY}/24"), "dev", "br-public"])?;
        if opts.bmcs {
            for bmc in ["192.168.50.21/24", "192.168.50.22/24"] {
                lab.netns().ip(&["addr", "add", bmc, "dev", "br-public"])?;
            }
        }
        let client = lab.endpoint("public", "client", &format!("{CLIENT_ADDRESS}/24"))?;
        let witness = match opts.witness {
            true => {
                let at = lab.endpoint("public", "witness", &format!("{}/24", witness::ADDRESS))?;
                progress(&format!("the witness: pairos witness run on {}:7470", witness::ADDRESS));
                Some((LabWitness::start(&at.ns, &lab.dir().join("witness"))?, at))
            }
            false => None,
        };
        let mut nodes = Vec::new();
        for (i, letter) in ['a', 'b'].into_iter().enumerate() {
            let (node, peer) = if i == 0 { ("node-1", "node-2") } else { ("node-2", "node-1") };
            let disk = lab.dir().join(format!("{letter}.raw"));
            progress(&format!("node {letter} ({node}): writing its disk from {}", opts.image.display()));
            let own = format!("192.168.50.1{}", i + 1);
            image::preloaded_disk(
                &opts.image,
                &disk,
                10 * GIB,
                &node_config(node, peer, &own, opts.bmcs, opts.witness),
            )?;
            let vm_name = format!("node-{letter}");
            let (vm, bmc) = if opts.bmcs {
                let port = 9101 + i as u16;
                let launch = lab.prepare(vm_spec(&vm_name, &disk, Some(port)))?;
                let script = launch.dir.join("power.sh");
                let argv: Vec<String> = launch.args.iter().map(|a| shell_quote(a)).collect();
                let text = format!(
                    "#!/bin/sh\n# The power of lab node {letter}: its BMC runs this on power on.\nexec qemu-system-x86_64 {} >>{} 2>&1\n",
                    argv.join(" "),
                    shell_quote(&launch.dir.join("qemu.log").display().to_string())
                );
                std::fs::write(&script, text).map_err(io(&script))?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
                    .map_err(io(&script))?;
                let spec = BmcSpec {
                    name: format!("{node}-bmc"),
                    address: format!("192.168.50.2{}", i + 1),
                    vm_port: port,
                    power_command: Some(script.display().to_string()),
                    sensors: true,
                };
                progress(&format!("node {letter}: its BMC at {} powers it on", spec.address));
                let bmc = Bmc::start(lab.netns(), &lab.dir().join(format!("bmc-{letter}")), &spec)?;
                (lab.attach_powered(launch)?, Some(bmc))
            } else {
                progress(&format!("node {letter}: starting (no BMC)"));
                (lab.start(vm_spec(&vm_name, &disk, None))?, None)
            };
            let n = i + 1;
            let macs = [format!("52:54:00:12:{n:02x}:00"), format!("52:54:00:12:{n:02x}:01")];
            nodes.push(LabNode { letter, node: node.to_owned(), vm, macs, bmc, disk });
        }
        let mut pair = PairLab { nodes, client, witness, lab };
        for n in &mut pair.nodes {
            progress(&format!("node {}: booting (firmware, kernel, pairos run)", n.letter));
            n.vm.wait_for("pair: watchdog /dev/watchdog armed", BOOT)?;
        }
        progress("waiting for the pair to form");
        pair.formed_with_a(BOOT, progress)?;
        progress("the pair formed: node a (node-1) is primary");
        Ok(pair)
    }

    /// Waits until the pair forms with node a primary. The preferred node a forms it, unless
    /// it was not ready for the hold time while b was (a slow boot on a loaded host): then b
    /// forms it, and is asked to switch over to a, as the scenarios start from a primary.
    fn formed_with_a(&mut self, within: Duration, progress: &mut dyn FnMut(&str)) -> Result<(), LabError> {
        let start = std::time::Instant::now();
        let mut asked: Option<std::time::Instant> = None;
        loop {
            let said = |n: &mut LabNode| n.vm.console().text().contains("pair: primary in epoch");
            let a_primary = said(&mut self.nodes[0]);
            if a_primary && asked.is_none() {
                return Ok(());
            }
            if asked.is_some() && daemon_status(&mut self.nodes[0].vm).is_some_and(|v| v["role"] == "primary")
            {
                return Ok(());
            }
            if said(&mut self.nodes[1]) && asked.is_none_or(|t| t.elapsed() > Duration::from_secs(20)) {
                progress("node b formed the pair (node a was slower to be ready): switching over to a");
                let _ = self.exec('b', "pairos pair switchover", Duration::from_secs(60));
                asked = Some(std::time::Instant::now());
            }
            if start.elapsed() > within {
                return self.nodes[0]
                    .vm
                    .wait_for("pair: primary in epoch", Duration::from_secs(1))
                    .map(|_| ());
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    pub fn client(&self) -> &Endpoint {
        &self.client
    }

    pub fn node(&mut self, letter: char) -> Result<&mut LabNode, LabError> {
        let i = letter_index(letter)?;
        Ok(&mut self.nodes[i])
    }

    /// Runs a shell command on the node's console; its exit code and output.
    pub fn exec(
        &mut self,
        letter: char,
        command: &str,
        timeout: Duration,
    ) -> Result<(i32, String), LabError> {
        self.node(letter)?.vm.run(command, timeout)
    }

    /// As [`PairLab::exec_tagged`], for a command that must succeed: its own lines, or an
    /// error that names the node, the command, its exit code and what it printed.
    pub fn run(&mut self, letter: char, command: &str, timeout: Duration) -> Result<String, LabError> {
        let (code, out) = self.exec_tagged(letter, command, timeout)?;
        if code != 0 {
            return Err(LabError::Setup(format!("node {letter}: `{command}` failed ({code}): {out}")));
        }
        Ok(out)
    }

    /// Writes `contents` to `path` on the node, through its console. The console's shell
    /// (busybox ash) drops a line longer than 1024 characters, so the file travels as base64
    /// in short lines.
    pub fn write_file(&mut self, letter: char, path: &str, contents: &[u8]) -> Result<(), LabError> {
        const LINE: usize = 512;
        let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, contents);
        let staged = format!("{path}.b64");
        self.run(letter, &format!("rm -f {staged}"), Duration::from_secs(30))?;
        for chunk in encoded.as_bytes().chunks(LINE) {
            let chunk = std::str::from_utf8(chunk).expect("base64 is ASCII");
            self.run(letter, &format!("echo {chunk} >> {staged}"), Duration::from_secs(30))?;
        }
        self.run(letter, &format!("base64 -d {staged} > {path} && rm {staged}"), Duration::from_secs(30))?;
        Ok(())
    }

    /// As [`PairLab::exec`], with only the command's own lines (the daemon's and the kernel's
    /// on the console left out).
    pub fn exec_tagged(
        &mut self,
        letter: char,
        command: &str,
        timeout: Duration,
    ) -> Result<(i32, String), LabError> {
        self.node(letter)?.vm.run_tagged(command, timeout)
    }

    /// What a shell command prints on the node, as JSON (asked again if the console's other
    /// lines garbled it).
    pub fn json(&mut self, letter: char, command: &str, timeout: Duration) -> Result<Value, LabError> {
        json_of(&mut self.node(letter)?.vm, command, timeout)
    }

    /// The node's VM dies at once.
    pub fn kill(&mut self, letter: char) -> Result<(), LabError> {
        self.node(letter)?.vm.kill();
        Ok(())
    }

    /// Stops the node's pair daemon (SIGSTOP): to its peer, and to its watchdog, it hangs.
    pub fn hang(&mut self, letter: char) -> Result<(), LabError> {
        let (code, out) =
            self.exec(letter, "kill -STOP $(cat /run/pairos/pair.pid)", Duration::from_secs(30))?;
        if code != 0 {
            return Err(LabError::Setup(format!("node {letter}: could not stop the pair daemon: {out}")));
        }
        Ok(())
    }

    /// Takes the node's port of `link` down (`up` false) or up again.
    pub fn set_link(&mut self, link: LinkName, letter: char, up: bool) -> Result<(), LabError> {
        let tap = self.node(letter)?.vm.tap(link.nic()).map(str::to_owned);
        let tap = tap.ok_or_else(|| LabError::Setup(format!("node {letter} has no {link:?} port")))?;
        self.lab.netns().ip(&["link", "set", &tap, if up { "up" } else { "down" }])?;
        Ok(())
    }

    /// Every port of both nodes up.
    pub fn heal_all(&mut self) -> Result<(), LabError> {
        for letter in ['a', 'b'] {
            for link in [LinkName::Private, LinkName::Public] {
                self.set_link(link, letter, true)?;
            }
        }
        Ok(())
    }

    fn bmc(&mut self, letter: char) -> Result<&Bmc, LabError> {
        self.node(letter)?.bmc.as_ref().ok_or_else(|| {
            LabError::Setup(format!("node {letter} has no BMC (the lab pair was made without BMCs)"))
        })
    }

    /// `ipmitool` against the node's BMC, from the lab's side of the public network.
    pub fn ipmi(&mut self, letter: char, args: &[&str]) -> Result<String, LabError> {
        let host = self.bmc(letter)?.address.clone();
        bmc::ipmitool(self.lab.netns(), &host, args)
    }

    /// Powers the node on or off through its BMC. On returns once the console is connected
    /// again (the guest then boots); off, once QEMU has ended.
    pub fn power(&mut self, letter: char, on: bool) -> Result<(), LabError> {
        if on {
            let socket = self.node(letter)?.vm.console().socket().to_owned();
            if self.node(letter)?.vm.running() {
                return Ok(());
            }
            // The last run's socket is stale; QEMU makes a new one when it starts.
            let _ = std::fs::remove_file(&socket);
            self.ipmi(letter, &["chassis", "power", "on"])?;
            self.node(letter)?.vm.reattach()
        } else {
            self.ipmi(letter, &["chassis", "power", "off"])?;
            let start = std::time::Instant::now();
            while self.node(letter)?.vm.running() {
                if start.elapsed() > Duration::from_secs(15) {
                    return Err(LabError::Setup(format!(
                        "node {letter}: still running 15 s after power off"
                    )));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(())
        }
    }

    /// Swaps the powered-off node's system disk for a blank one of the same size.
    pub fn swap_disk(&mut self, letter: char) -> Result<(), LabError> {
        let node = self.node(letter)?;
        if node.vm.running() {
            return Err(LabError::Setup(format!("node {letter}: its disk is swapped only while it is off")));
        }
        let size = std::fs::metadata(&node.disk).map_err(crate::error::io(&node.disk))?.len();
        crate::blank_disk(&node.disk, size)
    }

    /// Sets the node BMC's emulated sensor `name` to `value`.
    pub fn sensor(&mut self, letter: char, name: &str, value: u8) -> Result<(), LabError> {
        self.bmc(letter)?.set_sensor(name, value)
    }

    /// Which MACs answer an ARP request for the pair's address from the client, now.
    pub fn address_answers(&self) -> Vec<String> {
        let out = self
            .client
            .ns
            .cmd("arping")
            .args(["-c", "2", "-w", "2", "-I", "eth0", PAIR_ADDRESS])
            .run_text()
            .unwrap_or_default();
        let mut macs: Vec<String> = out
            .lines()
            .filter_map(|l| Some(l.split_once('[')?.1.split_once(']')?.0.to_lowercase()))
            .collect();
        macs.sort();
        macs.dedup();
        macs
    }

    /// How much node `letter`'s console has printed so far (a mark for [`PairLab::wait_console`]).
    pub fn console_len(&mut self, letter: char) -> Result<usize, LabError> {
        Ok(self.node(letter)?.vm.console().text().len())
    }

    /// Waits until node `letter`'s console, past `from`, shows a line with `needle`; returns
    /// that line.
    pub fn wait_console(
        &mut self,
        letter: char,
        from: usize,
        needle: &str,
        within: Duration,
    ) -> Result<String, LabError> {
        let start = std::time::Instant::now();
        loop {
            let text = self.node(letter)?.vm.console().text();
            if let Some(line) = text.get(from..).unwrap_or_default().lines().find(|l| l.contains(needle)) {
                return Ok(line.to_owned());
            }
            if start.elapsed() > within {
                let tail = self.node(letter)?.vm.console().tail(40);
                return Err(LabError::Setup(format!(
                    "node {letter}: no {needle:?} within {within:?}:\n{tail}"
                )));
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// Per node: whether it runs, its role as its pair daemon reports it, its MACs and BMC;
    /// the pair's address and who answers for it; the client namespace's name.
    pub fn status(&mut self) -> Value {
        let mut nodes = serde_json::Map::new();
        for i in 0..self.nodes.len() {
            let n = &mut self.nodes[i];
            let running = n.vm.running();
            let daemon = if running { daemon_status(&mut n.vm) } else { None };
            let role = match &daemon {
                Some(s) => s["role"].as_str().unwrap_or("unknown"),
                None if running => "unknown",
                None => "off",
            };
            let epoch = daemon.as_ref().map_or(Value::Null, |s| s["epoch"].clone());
            nodes.insert(
                n.letter.to_string(),
                json!({
                    "node": n.node,
                    "state": if running { "running" } else { "off" },
                    "role": role,
                    "epoch": epoch,
                    "macs": {"private": n.macs[0], "public": n.macs[1]},
                    "bmc": n.bmc.as_ref().map(|b| b.address.clone()),
                    "console": n.vm.console().log_path(),
                    "disk": n.disk,
                }),
            );
        }
        let witness = self.witness.as_ref().map(|(w, _)| {
            json!({"address": format!("{}:7470", witness::ADDRESS), "kept": w.kept().unwrap_or(Value::Null)})
        });
        json!({
            "nodes": nodes,
            "witness": witness,
            "address": PAIR_ADDRESS,
            "address_answered_by": self.address_answers(),
            "client_namespace": self.client.ns.name(),
            "lab_namespace": self.lab.netns().name(),
            "dir": self.lab.dir(),
        })
    }
}
