//! A pair of pair daemons on this host, each node a network namespace with a public and a
//! private port, and a client namespace on the public network: the pair's logic against real
//! sockets, ARP, `ip`, fences and (optionally) BMCs, in seconds rather than VM boots. The
//! benchmark against keepalived runs here too, in the same namespaces.
//!
//! A node's power is a small shell script (`power.sh`): while it runs, the node is on (its
//! ports up, its daemon running, started again if it ends, as PID 1 does on a node). Stopping
//! it (SIGTERM) is a power cut: the daemon is killed, the pair's address vanishes with the
//! node's memory, and its ports go dark. A node's BMC is OpenIPMI's `ipmi_sim` in a namespace
//! of its own on the public network, whose `startcmd` is that script; or, without BMCs, the
//! fence is a command that stops the script directly. A power cut kills every process in the
//! node's namespace, as a real one would.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pairos_host::{Child, Cmd};

use crate::bmc::{self, Bmc, BmcSpec};
use crate::error::io;
use crate::witness::{self, LabWitness};
use crate::{paths, Lab, LabError, Netns};

pub const PAIR_ADDRESS: &str = "192.168.50.10";
pub const GATEWAY: &str = "192.168.50.1";
pub const CLIENT: &str = "192.168.50.100";

/// What runs on the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Daemon {
    /// `pairos pair run`.
    Pairos,
    /// keepalived with VRRPv3 adverts every 100 ms, the reference for failover time (no
    /// fencing: VRRP has none).
    Keepalived,
}

/// How the nodes fence each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fencing {
    /// No fence configured: a silent peer is never replaced.
    None,
    /// A command that cuts the peer's power script at once.
    Command,
    /// The peer's BMC (`ipmi_sim`), through `ipmitool`.
    Ipmi,
}

#[derive(Debug)]
pub struct HostNode {
    /// `a` or `b`.
    pub name: &'static str,
    pub ns: Netns,
    /// The cable ends on the lab's bridges: take one down to pull that cable.
    pub public_cable: String,
    pub private_cable: String,
    pub public_mac: String,
    pub dir: PathBuf,
    /// The power script, when the harness runs it itself (no BMC).
    power: Option<Child>,
    bmc: Option<Bmc>,
}

#[derive(Debug)]
pub struct HostPair {
    pub nodes: [HostNode; 2],
    pub client: Netns,
    pub daemon: Daemon,
    pub fencing: Fencing,
    /// A witness on the public network, when the pair has one, and its namespace (removed
    /// after the witness stops).
    pub witness: Option<(LabWitness, Netns)>,
    /// Each node also serves the console (`pairos console serve` on its public port, 443).
    pub console: bool,
    /// Last: its drop deletes the lab namespace after everything in it stopped.
    pub lab: Lab,
}

fn write(path: &Path, text: &str) -> Result<(), LabError> {
    std::fs::write(path, text).map_err(io(path))
}

fn executable(path: &Path, text: &str) -> Result<(), LabError> {
    use std::os::unix::fs::PermissionsExt;
    write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(io(path))
}

impl HostPair {
    /// Builds the networks and the nodes with pair daemons, and powers both on. `timing` is the
    /// `[timing]` table of both daemons' configuration (TOML lines).
    pub fn up(name: &str, fencing: Fencing, timing: &str) -> Result<HostPair, LabError> {
        Self::build(name, Daemon::Pairos, fencing, timing, false, false)
    }

    /// [`HostPair::up`], each node also serving the console on its public port (as `pairos
    /// run` starts it on a node).
    pub fn up_with_console(name: &str, fencing: Fencing, timing: &str) -> Result<HostPair, LabError> {
        Self::build(name, Daemon::Pairos, fencing, timing, false, true)
    }

    /// [`HostPair::up`], with a witness (`pairos witness run`) at [`witness::ADDRESS`] on the
    /// public network, named in both daemons' configuration.
    pub fn up_witnessed(name: &str, fencing: Fencing, timing: &str) -> Result<HostPair, LabError> {
        Self::build(name, Daemon::Pairos, fencing, timing, true, false)
    }

    /// The same networks with keepalived on the nodes (a priority 150, b 100, adverts every
    /// 100 ms, no preemption), powered on.
    pub fn keepalived(name: &str) -> Result<HostPair, LabError> {
        Self::build(name, Daemon::Keepalived, Fencing::None, "", false, false)
    }

    fn build(
        name: &str,
        daemon: Daemon,
        fencing: Fencing,
        timing: &str,
        witnessed: bool,
        console: bool,
    ) -> Result<HostPair, LabError> {
        let mut lab = Lab::new(name)?;
        lab.link("public")?;
        lab.link("private")?;
        // The public network's gateway is the bridge itself.
        lab.netns().ip(&["addr", "add", &format!("{GATEWAY}/24"), "dev", "br-public"])?;
        let bin = paths::pairos_bin()?;
        let key_hex: String = (0..32).map(|i| format!("{:02x}", (i * 37 + 11) as u8)).collect();
        let mut nodes = Vec::new();
        for (i, name) in ["a", "b"].into_iter().enumerate() {
            let ns = Netns::create(&format!("plab-{}-{name}", lab.name()))?;
            ns.cmd("sysctl").args(["-qw", "net.ipv6.conf.all.disable_ipv6=1"]).run()?;
            let n = i + 1;
            let public_cable = lab.attach(&ns, "public", "pub", Some(&format!("192.168.50.1{n}/24")))?;
            let private_cable = lab.attach(&ns, "private", "priv", Some(&format!("10.77.0.{n}/24")))?;
            let public_mac = format!("02:00:00:00:0{n}:01");
            ns.ip(&["link", "set", "pub", "address", &public_mac])?;
            ns.ip(&["link", "set", "priv", "address", &format!("02:00:00:00:0{n}:02")])?;
            let dir = lab.dir().join(name);
            std::fs::create_dir_all(dir.join("state")).map_err(io(&dir))?;
            write(&dir.join("pair.key"), &key_hex)?;
            write(&dir.join("bmc-peer.password"), bmc::PASSWORD)?;
            nodes.push(HostNode {
                name,
                ns,
                public_cable,
                private_cable,
                public_mac,
                dir,
                power: None,
                bmc: None,
            });
        }
        let client = Netns::create(&format!("plab-{}-client", lab.name()))?;
        lab.attach(&client, "public", "eth0", Some(&format!("{CLIENT}/24")))?;
        let nodes: [HostNode; 2] = nodes.try_into().map_err(|_| LabError::Setup("two nodes".into()))?;
        let witness = match witnessed {
            true => {
                let ns = Netns::create(&format!("plab-{}-witness", lab.name()))?;
                lab.attach(&ns, "public", "eth0", Some(&format!("{}/24", witness::ADDRESS)))?;
                let w = LabWitness::start(&ns, &lab.dir().join("witness"))?;
                Some((w, ns))
            }
            false => None,
        };
        let mut pair = HostPair { nodes, client, daemon, fencing, witness, console, lab };
        for i in 0..2 {
            pair.write_node(i, &bin, timing)?;
        }
        if fencing == Fencing::Ipmi {
            for i in 0..2 {
                pair.start_bmc(i)?;
            }
        } else {
            for i in 0..2 {
                pair.power_on(i)?;
            }
        }
        Ok(pair)
    }

    fn bmc_address(i: usize) -> String {
        format!("192.168.50.2{}", i + 1)
    }

    /// The node's daemon configuration and power script.
    fn write_node(&self, i: usize, bin: &Path, timing: &str) -> Result<(), LabError> {
        let (me, peer) = (&self.nodes[i], &self.nodes[1 - i]);
        let (n, p) = (i + 1, 2 - i);
        let fence = match self.fencing {
            Fencing::None => String::new(),
            Fencing::Command => {
                let script = me.dir.join("fence-peer.sh");
                let peer_dir = peer.dir.display();
                let lines = [
                    "#!/bin/sh".to_owned(),
                    "# Cuts the peer's power and waits until it is off (no power script: it is off).".into(),
                    format!("pid=$(cat {peer_dir}/power.pid 2>/dev/null) || exit 0"),
                    "kill -TERM \"$pid\" 2>/dev/null".into(),
                    "# The power script removes its pid file last (a process that ended may linger as a".into(),
                    "# zombie of whoever started it).".into(),
                    format!("while [ -e {peer_dir}/power.pid ] && kill -0 \"$pid\" 2>/dev/null; do sleep 0.01; done\n"),
                ];
                executable(&script, &lines.join("\n"))?;
                format!("[fence]\nkind = \"command\"\nargv = [\"{}\"]\n", script.display())
            }
            Fencing::Ipmi => format!(
                "[fence]\nkind = \"ipmi\"\nhost = \"{}\"\nuser = \"{}\"\npassword_file = \"{}\"\n",
                Self::bmc_address(1 - i),
                bmc::USER,
                me.dir.join("bmc-peer.password").display()
            ),
        };
        let witnesses = match &self.witness {
            Some(_) => {
                write(&me.dir.join("witness.key"), witness::KEY_HEX)?;
                format!(
                    "witnesses = [\"{}:7470\"]\nwitness_key_file = \"{}\"\n",
                    witness::ADDRESS,
                    me.dir.join("witness.key").display()
                )
            }
            None => String::new(),
        };
        let config = format!(
            "node = \"node-{n}\"\npeer = \"node-{p}\"\npair_id = \"hostpair\"\nkey_file = \"{dir}/pair.key\"\n\
             state_dir = \"{dir}/state\"\nrun_dir = \"{dir}/run\"\npreferred = {preferred}\n{witnesses}\
             [timing]\n{timing}\n\
             [private]\ninterface = \"priv\"\naddress = \"10.77.0.{n}\"\npeer = \"10.77.0.{p}\"\n\
             [public]\ninterface = \"pub\"\naddress = \"192.168.50.1{n}\"\npeer = \"192.168.50.1{p}\"\ngateway = \"{GATEWAY}\"\n\
             [pair_address]\naddress = \"{PAIR_ADDRESS}\"\nprefix = 24\n{fence}",
            dir = me.dir.display(),
            preferred = i == 0,
        );
        write(&me.dir.join("pair.toml"), &config)?;
        let ns = me.ns.name();
        let command = match self.daemon {
            Daemon::Pairos => {
                format!("ip netns exec {ns} {} pair run --config $dir/pair.toml", bin.display())
            }
            Daemon::Keepalived => {
                let priority = if i == 0 { 150 } else { 100 };
                let conf = [
                    "global_defs {".to_owned(),
                    format!("  router_id node_{n}"),
                    "  vrrp_version 3".into(),
                    "  script_user root".into(),
                    "}".into(),
                    "vrrp_instance pair {".into(),
                    "  state BACKUP".into(),
                    "  nopreempt".into(),
                    "  interface pub".into(),
                    "  virtual_router_id 51".into(),
                    format!("  priority {priority}"),
                    "  advert_int 0.1".into(),
                    format!("  virtual_ipaddress {{\n    {PAIR_ADDRESS}/24 dev pub\n  }}"),
                    "}\n".into(),
                ];
                write(&me.dir.join("keepalived.conf"), &conf.join("\n"))?;
                format!(
                    "ip netns exec {ns} keepalived --dont-fork --log-console --vrrp --use-file $dir/keepalived.conf \
                     --pid $dir/keepalived.pid --vrrp_pid $dir/vrrp.pid"
                )
            }
        };
        let dir = me.dir.display();
        // The console, kept running as `pairos run` keeps it; its loop is killed with the power,
        // and ends by itself when the power script is gone (killed without its trap).
        let console = match self.console {
            true => format!(
                "while kill -0 $$ 2>/dev/null; do ip netns exec {ns} {bin} console serve --pair-id hostpair --key-file $dir/pair.key \
                 --state $dir/state --run-dir $dir/run --interface pub --listen 0.0.0.0:443 \
                 --name {PAIR_ADDRESS} --name 192.168.50.11 --name 192.168.50.12 --peer 192.168.50.1{p}:7443 \
                 >>$dir/console.log 2>&1; sleep 0.2; done &\n\
                 echo $! > $dir/console-loop.pid",
                bin = bin.display()
            ),
            false => String::new(),
        };
        let script = [
            "#!/bin/sh".to_owned(),
            "# This node is on while this script runs; SIGTERM is a power cut.".into(),
            format!("dir={dir}"),
            "echo $$ > $dir/power.pid".into(),
            format!("ip -n {ns} link set pub up; ip -n {ns} link set priv up"),
            console,
            "off() {".into(),
            "  [ -e $dir/console-loop.pid ] && kill -9 $(cat $dir/console-loop.pid) 2>/dev/null".into(),
            format!("  ip netns pids {ns} | xargs -r kill -9"),
            format!("  ip -n {ns} address del {PAIR_ADDRESS}/24 dev pub 2>/dev/null"),
            format!("  ip -n {ns} link set pub down; ip -n {ns} link set priv down"),
            "  rm -f $dir/power.pid $dir/daemon.pid $dir/console-loop.pid".into(),
            "  exit 0".into(),
            "}".into(),
            "trap off TERM INT".into(),
            "while true; do".into(),
            format!("  {command} >>$dir/daemon.log 2>&1 &"),
            "  child=$!".into(),
            "  echo $child > $dir/daemon.pid".into(),
            "  wait $child".into(),
            "  echo \"power.sh: the daemon ended ($?); starting it again\" >>$dir/daemon.log".into(),
            "  sleep 0.2".into(),
            "done\n".into(),
        ];
        executable(&me.dir.join("power.sh"), &script.join("\n"))?;
        Ok(())
    }

    fn start_bmc(&mut self, i: usize) -> Result<(), LabError> {
        let ns = Netns::create(&format!("plab-{}-bmc{}", self.lab.name(), self.nodes[i].name))?;
        self.lab.attach(&ns, "public", "eth0", Some(&format!("{}/24", Self::bmc_address(i))))?;
        let spec = BmcSpec {
            name: format!("node-{}-bmc", i + 1),
            address: Self::bmc_address(i),
            vm_port: 9002,
            power_command: Some(format!("/bin/sh {}", self.nodes[i].dir.join("power.sh").display())),
            sensors: false,
        };
        self.nodes[i].bmc = Some(Bmc::start(&ns, &self.nodes[i].dir.join("bmc"), &spec)?);
        // The BMC's namespace lives as long as the pair.
        std::mem::forget(ns);
        self.wait_power(i, true, Duration::from_secs(10))
    }

    /// Whether node `i` is powered on (its power script runs).
    pub fn is_on(&self, i: usize) -> bool {
        std::fs::read_to_string(self.nodes[i].dir.join("power.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
            .is_some_and(|pid| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok())
    }

    fn wait_power(&self, i: usize, on: bool, timeout: Duration) -> Result<(), LabError> {
        let start = Instant::now();
        while self.is_on(i) != on {
            if start.elapsed() > timeout {
                return Err(LabError::Setup(format!(
                    "node {} did not power {} within {timeout:?}",
                    self.nodes[i].name,
                    if on { "on" } else { "off" }
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Powers node `i` on: through its BMC, or by starting its power script.
    pub fn power_on(&mut self, i: usize) -> Result<(), LabError> {
        if self.fencing == Fencing::Ipmi {
            self.ipmi(i, &["chassis", "power", "on"])?;
        } else {
            let dir = &self.nodes[i].dir;
            let child = Cmd::new("sh").arg(dir.join("power.sh")).spawn(Some(&dir.join("power.log")))?;
            self.nodes[i].power = Some(child);
        }
        self.wait_power(i, true, Duration::from_secs(10))
    }

    /// Cuts node `i`'s power at once (the VM dies): its daemon, its address and its links.
    pub fn kill(&mut self, i: usize) -> Result<(), LabError> {
        let pid = std::fs::read_to_string(self.nodes[i].dir.join("power.pid")).map_err(io("power.pid"))?;
        Cmd::new("kill").args(["-TERM", pid.trim()]).run()?;
        self.wait_power(i, false, Duration::from_secs(5))
    }

    /// Through the BMC, from the client's side of the public network.
    pub fn ipmi(&self, i: usize, args: &[&str]) -> Result<String, LabError> {
        bmc::ipmitool(&self.client, &Self::bmc_address(i), args)
    }

    /// Sends `signal` to every process of node `i` (its daemon and the daemon's children).
    fn signal_all(&self, i: usize, signal: &str) -> Result<(), LabError> {
        let pids = Cmd::new("ip").args(["netns", "pids", self.nodes[i].ns.name()]).run_text()?;
        for pid in pids.split_whitespace() {
            let _ = Cmd::new("kill").args([signal, pid]).run();
        }
        Ok(())
    }

    /// SIGSTOP (or SIGCONT) node `i`'s daemon: it hangs, and what it holds stays held.
    pub fn hang(&self, i: usize, stop: bool) -> Result<(), LabError> {
        self.signal_all(i, if stop { "-STOP" } else { "-CONT" })
    }

    /// SIGKILL node `i`'s daemon (the node stays up; its power script starts the daemon again,
    /// as a supervisor would).
    pub fn kill_daemon(&self, i: usize) -> Result<(), LabError> {
        self.signal_all(i, "-KILL")
    }

    /// Pulls (or plugs back) node `i`'s cable on `link` (`public` or `private`).
    pub fn cable(&self, i: usize, link: &str, up: bool) -> Result<(), LabError> {
        let n = &self.nodes[i];
        let cable = if link == "public" { &n.public_cable } else { &n.private_cable };
        self.lab.netns().ip(&["link", "set", cable, if up { "up" } else { "down" }])?;
        Ok(())
    }

    /// `pairos pair ARGS` against node `i`'s daemon.
    pub fn pair_cmd(&self, i: usize, args: &[&str]) -> Result<String, LabError> {
        let bin = paths::pairos_bin()?;
        Ok(Cmd::new(bin)
            .arg("pair")
            .args(args)
            .arg("--run-dir")
            .arg(self.nodes[i].dir.join("run"))
            .run_text()?)
    }

    /// Node `i`'s status as JSON.
    pub fn status(&self, i: usize) -> Result<serde_json::Value, LabError> {
        let path = self.nodes[i].dir.join("run/pair.json");
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        serde_json::from_slice(&bytes).map_err(|e| LabError::Setup(format!("{}: {e}", path.display())))
    }

    /// Waits until `check` holds of both nodes' statuses (a node that is off counts as
    /// `Null`), or fails with both statuses.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&serde_json::Value, &serde_json::Value) -> bool,
    ) -> Result<(), LabError> {
        let start = Instant::now();
        loop {
            let s = |i: usize| {
                if self.is_on(i) {
                    self.status(i).unwrap_or_default()
                } else {
                    serde_json::Value::Null
                }
            };
            let (a, b) = (s(0), s(1));
            if check(&a, &b) {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(LabError::Setup(format!(
                    "waited {timeout:?} for {what}; node a: {a}\nnode b: {b}\nlogs in {}",
                    self.lab.dir().display()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The role in a status (`Null` for a node that is off).
pub fn role(s: &serde_json::Value) -> &str {
    s["role"].as_str().unwrap_or("off")
}

impl Drop for HostPair {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            drop(n.bmc.take());
            if let Ok(pid) = std::fs::read_to_string(n.dir.join("power.pid")) {
                let _ = Cmd::new("kill").args(["-TERM", pid.trim()]).run();
            }
            if let Some(mut p) = n.power.take() {
                p.kill();
            }
        }
        // The BMC namespaces.
        for n in ["a", "b"] {
            drop(Netns::adopt(&format!("plab-{}-bmc{n}", self.lab.name())));
        }
    }
}
