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

use crate::error::io;
use crate::{paths, Lab, LabError, Netns};

pub const PAIR_ADDRESS: &str = "192.168.50.10";
pub const GATEWAY: &str = "192.168.50.1";
pub const CLIENT: &str = "192.168.50.100";
const BMC_USER: &str = "admin";
const BMC_PASSWORD: &str = "lab-bmc-secret";

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
    bmc: Option<Child>,
}

#[derive(Debug)]
pub struct HostPair {
    pub nodes: [HostNode; 2],
    pub client: Netns,
    pub daemon: Daemon,
    pub fencing: Fencing,
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
        Self::build(name, Daemon::Pairos, fencing, timing)
    }

    /// The same networks with keepalived on the nodes (a priority 150, b 100, adverts every
    /// 100 ms, no preemption), powered on.
    pub fn keepalived(name: &str) -> Result<HostPair, LabError> {
        Self::build(name, Daemon::Keepalived, Fencing::None, "")
    }

    fn build(name: &str, daemon: Daemon, fencing: Fencing, timing: &str) -> Result<HostPair, LabError> {
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
            write(&dir.join("bmc-peer.password"), BMC_PASSWORD)?;
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
        let mut pair = HostPair { nodes, client, daemon, fencing, lab };
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
                executable(
                    &script,
                    &format!(
                        "#!/bin/sh\n# Cuts the peer's power and waits until it is off (no power script: it is off).\npid=$(cat {0}/power.pid 2>/dev/null) || exit 0\nkill -TERM \"$pid\" 2>/dev/null\n# The power script removes its pid file last (a process that ended may linger as a\n# zombie of whoever started it).\nwhile [ -e {0}/power.pid ] && kill -0 \"$pid\" 2>/dev/null; do sleep 0.01; done\n",
                        peer.dir.display()
                    ),
                )?;
                format!("[fence]\nkind = \"command\"\nargv = [\"{}\"]\n", script.display())
            }
            Fencing::Ipmi => format!(
                "[fence]\nkind = \"ipmi\"\nhost = \"{}\"\nuser = \"{BMC_USER}\"\npassword_file = \"{}\"\n",
                Self::bmc_address(1 - i),
                me.dir.join("bmc-peer.password").display()
            ),
        };
        let config = format!(
            "node = \"node-{n}\"\npeer = \"node-{p}\"\npair_id = \"hostpair\"\nkey_file = \"{dir}/pair.key\"\n\
             state_dir = \"{dir}/state\"\nrun_dir = \"{dir}/run\"\npreferred = {preferred}\n\
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
            Daemon::Pairos => format!("ip netns exec {ns} {} pair run --config $dir/pair.toml", bin.display()),
            Daemon::Keepalived => {
                write(
                    &me.dir.join("keepalived.conf"),
                    &format!(
                        "global_defs {{
  router_id node_{n}
  vrrp_version 3
  script_user root
}}
                         vrrp_instance pair {{
  state BACKUP
  nopreempt
  interface pub
  virtual_router_id 51
                           priority {}
  advert_int 0.1
  virtual_ipaddress {{
    {PAIR_ADDRESS}/24 dev pub
  }}
}}
",
                        if i == 0 { 150 } else { 100 }
                    ),
                )?;
                format!(
                    "ip netns exec {ns} keepalived --dont-fork --log-console --vrrp --use-file $dir/keepalived.conf                      --pid $dir/keepalived.pid --vrrp_pid $dir/vrrp.pid"
                )
            }
        };
        executable(
            &me.dir.join("power.sh"),
            &format!(
                "#!/bin/sh\n\
                 # This node is on while this script runs; SIGTERM is a power cut.\n\
                 dir={dir}\n\
                 echo $$ > $dir/power.pid\n\
                 ip -n {ns} link set pub up; ip -n {ns} link set priv up\n\
                 off() {{\n  ip netns pids {ns} | xargs -r kill -9\n  ip -n {ns} address del {PAIR_ADDRESS}/24 dev pub 2>/dev/null\n  ip -n {ns} link set pub down; ip -n {ns} link set priv down\n  rm -f $dir/power.pid $dir/daemon.pid\n  exit 0\n}}\n\
                 trap off TERM INT\n\
                 boot=0\n\
                 while true; do\n  boot=$((boot+1))\n  {command} >>$dir/daemon.log 2>&1 &\n  child=$!\n  echo $child > $dir/daemon.pid\n  wait $child\n  echo \"power.sh: the daemon ended ($?); starting it again\" >>$dir/daemon.log\n  sleep 0.2\ndone\n",
                dir = me.dir.display(),
            ),
        )?;
        Ok(())
    }

    fn start_bmc(&mut self, i: usize) -> Result<(), LabError> {
        let ns = Netns::create(&format!("plab-{}-bmc{}", self.lab.name(), self.nodes[i].name))?;
        self.lab.attach(&ns, "public", "eth0", Some(&format!("{}/24", Self::bmc_address(i))))?;
        let dir = self.nodes[i].dir.join("bmc");
        std::fs::create_dir_all(dir.join("state")).map_err(io(&dir))?;
        let power = self.nodes[i].dir.join("power.sh");
        write(
            &dir.join("lan.conf"),
            &format!(
                "name \"node{}-bmc\"\nset_working_mc 0x20\n  startlan 1\n    addr {} 623\n    priv_limit admin\n\
                 \x20   allowed_auths_callback none md2 md5 straight\n    allowed_auths_user none md2 md5 straight\n\
                 \x20   allowed_auths_operator none md2 md5 straight\n    allowed_auths_admin none md2 md5 straight\n\
                 \x20   guid a123456789abcdefa123456789abcde{}\n  endlan\n  serial 15 127.0.0.1 9002 codec VM\n\
                 \x20 startcmd \"/bin/sh {}\"\n  startnow true\n  poweroff_wait 1\n  kill_wait 2\n\
                 \x20 user 1 true \"\" \"test\" user 10 none md2 md5 straight\n\
                 \x20 user 2 true \"{BMC_USER}\" \"{BMC_PASSWORD}\" admin 10 none md2 md5 straight\n",
                self.nodes[i].name,
                Self::bmc_address(i),
                i + 1,
                power.display()
            ),
        )?;
        write(
            &dir.join("bmc.emu"),
            "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\n\
             sel_enable 0x20 1000 0x0a\nmc_enable 0x20\n",
        )?;
        let child = ns
            .cmd("ipmi_sim")
            .args(["-c", &dir.join("lan.conf").to_string_lossy(), "-f"])
            .arg(dir.join("bmc.emu"))
            .arg("-s")
            .arg(dir.join("state"))
            .arg("-n")
            .spawn(Some(&dir.join("ipmi_sim.log")))?;
        self.nodes[i].bmc = Some(child);
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
        Ok(self
            .client
            .cmd("ipmitool")
            .args(["-I", "lanplus", "-C", "3", "-N", "1", "-R", "2", "-H", &Self::bmc_address(i), "-U", BMC_USER, "-E"])
            .args(args)
            .env("IPMI_PASSWORD", BMC_PASSWORD)
            .run_text()?)
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
            let s = |i: usize| if self.is_on(i) { self.status(i).unwrap_or_default() } else { serde_json::Value::Null };
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
            if let Some(mut b) = n.bmc.take() {
                b.kill();
            }
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
