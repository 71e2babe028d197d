//! Lab BMCs: OpenIPMI's `ipmi_sim`, answering IPMI over LAN on the public network. Its power
//! is either a QEMU node (connected over the BMC's VM serial port: "power off" makes QEMU exit
//! at once) or a command it starts for "power on" and stops for "power off" (`startcmd`). The
//! lab's user and password are fixed: the fences under test are configured with them.

use std::path::Path;

use pairos_host::Child;

use crate::error::io;
use crate::{LabError, Netns};

pub const USER: &str = "admin";
pub const PASSWORD: &str = "lab-bmc-secret";

#[derive(Debug, Clone)]
pub struct BmcSpec {
    pub name: String,
    /// The LAN address it answers on (it must be on one of the namespace's interfaces).
    pub address: String,
    /// The TCP port on 127.0.0.1 where a QEMU node's `ipmi-bmc-extern` connects.
    pub vm_port: u16,
    /// A command that is the node's power (started at once and by "power on").
    pub power_command: Option<String>,
}

/// A running BMC; stopped on drop.
#[derive(Debug)]
pub struct Bmc {
    pub address: String,
    _child: Child,
}

/// The `lan.conf` for `spec` (OpenIPMI's format; the sample's authentication lines).
fn lan_conf(spec: &BmcSpec, guid: u8) -> String {
    let auths = ["callback", "user", "operator", "admin"]
        .map(|level| format!("    allowed_auths_{level} none md2 md5 straight"))
        .join("\n");
    let power = match &spec.power_command {
        Some(cmd) => format!("  startcmd \"{cmd}\"\n  startnow true"),
        None => "  startnow false".to_owned(),
    };
    format!(
        "name \"{name}\"\nset_working_mc 0x20\n  startlan 1\n    addr {address} 623\n    priv_limit admin\n{auths}\n\
         \x20   guid a123456789abcdefa123456789abcd{guid:02x}\n  endlan\n\
         \x20 serial 15 127.0.0.1 {port} codec VM\n{power}\n  poweroff_wait 1\n  kill_wait 2\n\
         \x20 user 1 true \"\" \"test\" user 10 none md2 md5 straight\n\
         \x20 user 2 true \"{USER}\" \"{PASSWORD}\" admin 10 none md2 md5 straight\n",
        name = spec.name,
        address = spec.address,
        port = spec.vm_port,
    )
}

/// One management controller with no sensors of its own (chassis control is what is used).
const EMU: &str = "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\n\
                   sel_enable 0x20 1000 0x0a\nmc_enable 0x20\n";

impl Bmc {
    /// Starts `spec`'s BMC in `ns`, its files in `dir`.
    pub fn start(ns: &Netns, dir: &Path, spec: &BmcSpec) -> Result<Bmc, LabError> {
        std::fs::create_dir_all(dir.join("state")).map_err(io(dir))?;
        let conf = dir.join("lan.conf");
        std::fs::write(&conf, lan_conf(spec, spec.vm_port as u8)).map_err(io(&conf))?;
        let emu = dir.join("bmc.emu");
        std::fs::write(&emu, EMU).map_err(io(&emu))?;
        let child = ns
            .cmd("ipmi_sim")
            .arg("-c")
            .arg(&conf)
            .arg("-f")
            .arg(&emu)
            .arg("-s")
            .arg(dir.join("state"))
            .arg("-n")
            .spawn(Some(&dir.join("ipmi_sim.log")))?;
        Ok(Bmc { address: spec.address.clone(), _child: child })
    }
}

/// `ipmitool` against the BMC at `host`, from `ns`.
pub fn ipmitool(ns: &Netns, host: &str, args: &[&str]) -> Result<String, LabError> {
    Ok(ns
        .cmd("ipmitool")
        .args(["-I", "lanplus", "-C", "3", "-N", "1", "-R", "2", "-H", host, "-U", USER, "-E"])
        .args(args)
        .env("IPMI_PASSWORD", PASSWORD)
        .run_text()?)
}
