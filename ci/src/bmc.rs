//! Lab BMCs: OpenIPMI's `ipmi_sim`, answering IPMI over LAN on the public network. Its power
//! is either a QEMU node (connected over the BMC's VM serial port: "power off" makes QEMU exit
//! at once) or a command it starts for "power on" and stops for "power off" (`startcmd`). The
//! lab's user and password are fixed: the fences under test are configured with them.
//!
//! A BMC can also emulate a temperature sensor, `CPU Temp`, with an SDR record (so `ipmitool
//! sdr list` shows it, in-band on the node as over LAN) and thresholds: non-critical at 75,
//! critical at 85, non-recoverable at 95 degrees C. It reads its value from a file once a
//! second; [`Bmc::set_sensor`] writes it.

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
    /// Emulate the `CPU Temp` sensor.
    pub sensors: bool,
}

/// A running BMC; stopped on drop.
#[derive(Debug)]
pub struct Bmc {
    pub address: String,
    dir: std::path::PathBuf,
    _child: Child,
}

/// The emulated sensors: name, sensor number, and the value each starts with.
pub const SENSORS: &[(&str, u8, u8)] = &[("CPU Temp", 1, 40)];

fn sensor_file(dir: &Path, number: u8) -> std::path::PathBuf {
    dir.join(format!("sensor-{number}.value"))
}

/// The emulator's lines for sensor `number`, named `name`: a threshold-based temperature
/// sensor polled from `file`, and its full SDR record (IPMI 2.0, table 43-1).
fn sensor_emu(name: &str, number: u8, file: &Path) -> String {
    let id: Vec<u8> = name.bytes().collect();
    let mut sdr: Vec<u8> = vec![
        0x00,
        0x00,
        0x51,
        0x01,
        0, // record id, SDR version 1.5, full sensor, length (below)
        0x20,
        0x00,
        number, // owner: the BMC, LUN 0, the sensor number
        0x07,
        0x01,
        0x7f,
        0x48, // entity: system board 1; initialisation; thresholds readable and settable
        0x01,
        0x01, // a temperature, threshold-based
        0x80,
        0x0a,
        0x80,
        0x7a,
        0x38,
        0x38, // event masks; upper thresholds readable, settable
        0x00,
        0x01,
        0x00,
        0x00, // unsigned, degrees C, linear
        0x01,
        0x00,
        0x00,
        0x00,
        0x00,
        0x00, // M = 1, B = 0, no exponents
        0x00,
        40,
        70,
        10,
        0xff,
        0x00, // nominal, normal max and min, sensor max and min
        95,
        85,
        75,
        0,
        0,
        0, // upper non-recoverable, critical, non-critical; no lower ones
        0x02,
        0x02,
        0x00,
        0x00,
        0x00, // hysteresis 2 each way; reserved; OEM
        0xc0 | id.len() as u8,
    ];
    sdr.extend(&id);
    sdr[4] = (sdr.len() - 5) as u8;
    let bytes: Vec<String> = sdr.iter().map(|b| format!("{b:#04x}")).collect();
    format!(
        "sensor_add 0x20 0 {number} 0x01 0x01 poll 1000 file \"{file}\"\n\
         sensor_set_threshold 0x20 0 {number} settable 111000 95 85 75 0 0 0\n\
         sensor_set_event_support 0x20 0 {number} enable scanning per-state \
         000111111000000 000111111000000 000111111000000 000111111000000\n\
         main_sdr_add 0x20 {}\n",
        bytes.join(" "),
        file = file.display(),
    )
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

/// One management controller, with the emulated sensors when asked for.
fn emu_text(spec: &BmcSpec, dir: &Path) -> String {
    let mut emu = "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\n\
                   sel_enable 0x20 1000 0x0a\n"
        .to_owned();
    if spec.sensors {
        for &(name, number, _) in SENSORS {
            emu += &sensor_emu(name, number, &sensor_file(dir, number));
        }
    }
    emu + "mc_enable 0x20\n"
}

impl Bmc {
    /// Starts `spec`'s BMC in `ns`, its files in `dir`.
    pub fn start(ns: &Netns, dir: &Path, spec: &BmcSpec) -> Result<Bmc, LabError> {
        std::fs::create_dir_all(dir.join("state")).map_err(io(dir))?;
        let conf = dir.join("lan.conf");
        std::fs::write(&conf, lan_conf(spec, spec.vm_port as u8)).map_err(io(&conf))?;
        if spec.sensors {
            for &(_, number, value) in SENSORS {
                let file = sensor_file(dir, number);
                std::fs::write(&file, format!("{value}\n")).map_err(io(&file))?;
            }
        }
        let emu = dir.join("bmc.emu");
        std::fs::write(&emu, emu_text(spec, dir)).map_err(io(&emu))?;
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
        Ok(Bmc { address: spec.address.clone(), dir: dir.to_owned(), _child: child })
    }

    /// Sets the emulated sensor `name` (as in [`SENSORS`]; case, spaces, `-` and `_` do not
    /// matter) to `value`; the BMC reads it within a second.
    pub fn set_sensor(&self, name: &str, value: u8) -> Result<(), LabError> {
        let key =
            |s: &str| s.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_lowercase();
        let Some(&(_, number, _)) = SENSORS.iter().find(|(n, _, _)| key(n) == key(name)) else {
            let names: Vec<&str> = SENSORS.iter().map(|s| s.0).collect();
            return Err(LabError::Setup(format!("no sensor {name:?}: the lab BMC has {}", names.join(", "))));
        };
        let file = sensor_file(&self.dir, number);
        if !file.exists() {
            return Err(LabError::Setup(format!("this BMC emulates no sensors ({})", self.dir.display())));
        }
        std::fs::write(&file, format!("{value}\n")).map_err(io(&file))
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
