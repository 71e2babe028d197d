//! The node's own hardware as its BMC sees it: the readings of the sensors in the BMC's SDR
//! repository (temperatures, fans, power supplies), read in-band through the local IPMI
//! interface (`ipmitool sdr list` over `/dev/ipmi0`). A sensor past its critical threshold
//! lowers the node's health, so the role moves to a healthier peer before the hardware fails.
//! Runs on a thread of its own, since a BMC can be slow to answer.

use std::sync::mpsc::Sender;
use std::time::Duration;

/// What a critical sensor takes off the health score: enough to move the role to a healthy
/// peer (the margin is 100), less than a lost public network (500), which matters more to the
/// clients than a hot CPU.
pub const CRITICAL_PENALTY: u32 = 300;

/// One poll's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sensors {
    /// Every sensor that is past a critical or non-recoverable threshold, as
    /// `NAME: READING (STATE)`; empty when all are well.
    Read { critical: Vec<String> },
    /// The BMC could not be read; why.
    Unreadable(String),
}

impl Sensors {
    pub fn penalty(&self) -> u32 {
        match self {
            Sensors::Read { critical } if !critical.is_empty() => CRITICAL_PENALTY,
            _ => 0,
        }
    }
}

/// The sensors past a critical (`cr`) or non-recoverable (`nr`) threshold in the output of
/// `ipmitool sdr list`: one `NAME | READING | STATE` row per sensor. Rows of another shape
/// (a heading, a warning) are skipped; `ns` (no reading) and `nc` (non-critical) are not
/// critical.
pub fn critical(sdr_list: &str) -> Vec<String> {
    sdr_list
        .lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('|').map(str::trim).collect();
            match cols.as_slice() {
                [name, reading, state] if matches!(*state, "cr" | "nr") => {
                    Some(format!("{name}: {reading} ({state})"))
                }
                _ => None,
            }
        })
        .collect()
}

/// One sensor as `ipmitool sdr list` shows it, for the console's drawing of the node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reading {
    pub name: String,
    pub reading: String,
    /// `ok`, `nc` (non-critical), `cr` (critical), `nr` (non-recoverable) or `ns` (no reading).
    pub state: String,
}

/// Every row of `ipmitool sdr list`.
pub fn readings(sdr_list: &str) -> Vec<Reading> {
    sdr_list
        .lines()
        .filter_map(|line| match line.split('|').map(str::trim).collect::<Vec<_>>().as_slice() {
            [name, reading, state] if !name.is_empty() && state.len() == 2 => {
                Some(Reading { name: (*name).into(), reading: (*reading).into(), state: (*state).into() })
            }
            _ => None,
        })
        .collect()
}

/// Where the daemon keeps the last readings (in its run folder), for the console.
pub const READINGS_FILE: &str = "sensors.json";

/// How often the sensors are read. One `ipmitool sdr list` costs a third of a second of CPU on
/// a small node (most of it the program's start), so a read every second took a quarter of an
/// idle node's CPU. A BMC applies its own hysteresis to thresholds and refreshes readings every
/// few seconds, so five seconds loses nothing; the core's hold time and cooldown still keep a
/// flapping sensor to one move.
pub const EVERY: Duration = Duration::from_secs(5);

/// Runs `command` (which prints `ipmitool sdr list`) every `every` and sends what it found,
/// wrapped by `wrap`, whenever that changes; every reading goes to `readings_file` each time.
/// Ends when the receiver is gone.
pub fn spawn<W: Send + 'static>(
    command: Vec<String>,
    every: Duration,
    to: Sender<W>,
    wrap: fn(Sensors) -> W,
    readings_file: Option<std::path::PathBuf>,
) {
    std::thread::Builder::new()
        .name("pair-sensors".into())
        .spawn(move || {
            let mut last = None;
            loop {
                let (now, rows) = read_all(&command);
                if let Some(f) = &readings_file {
                    let _ = pairos_host::write_atomically(f, &serde_json::to_vec(&rows).expect("serialises"));
                }
                if last.as_ref() != Some(&now) {
                    if to.send(wrap(now.clone())).is_err() {
                        return;
                    }
                    last = Some(now);
                }
                std::thread::sleep(every);
            }
        })
        .expect("a thread starts");
}

#[cfg(test)]
fn read(command: &[String]) -> Sensors {
    read_all(command).0
}

/// The verdict, and every reading (none when unreadable).
fn read_all(command: &[String]) -> (Sensors, Vec<Reading>) {
    let Some((program, args)) = command.split_first() else {
        return (Sensors::Unreadable("no sensor command configured".into()), Vec::new());
    };
    let verdict = match std::process::Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            return (Sensors::Read { critical: critical(&text) }, readings(&text));
        }
        Ok(out) => Sensors::Unreadable(format!(
            "`{}` exited with {}: {}",
            command.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Sensors::Unreadable(format!("cannot run {program}: {e}")),
    };
    (verdict, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn critical_and_non_recoverable_rows_count() {
        let out = "CPU Temp         | 90 degrees C      | cr\n\
                   Fan 1            | 3000 RPM          | ok\n\
                   PSU 2            | 0 Watts           | nr\n\
                   Inlet Temp       | 30 degrees C      | nc\n\
                   DIMM Temp        | no reading        | ns\n";
        assert_eq!(critical(out), ["CPU Temp: 90 degrees C (cr)", "PSU 2: 0 Watts (nr)"]);
        assert!(critical("CPU Temp | 40 degrees C | ok\n").is_empty());
    }

    #[test]
    fn every_row_is_a_reading() {
        let r = readings("CPU Temp | 40 degrees C | ok\nheading\nPSU 1 | 0x01 | nr\n");
        assert_eq!(r.len(), 2);
        assert_eq!((r[1].name.as_str(), r[1].state.as_str()), ("PSU 1", "nr"));
    }

    #[test]
    fn other_lines_are_skipped() {
        assert!(critical("Get HPM.x Capabilities request failed, compcode = d4\n| cr\nx | y\n").is_empty());
        assert!(critical("").is_empty());
    }

    #[test]
    fn only_a_critical_reading_costs_health() {
        assert_eq!(Sensors::Read { critical: vec!["CPU Temp: 90 (cr)".into()] }.penalty(), CRITICAL_PENALTY);
        assert_eq!(Sensors::Read { critical: vec![] }.penalty(), 0);
        assert_eq!(Sensors::Unreadable("no BMC".into()).penalty(), 0, "an unreadable BMC is an alarm only");
    }

    #[test]
    fn a_failing_command_is_unreadable_with_its_reason() {
        let s = read(&["sh".into(), "-c".into(), "echo no device >&2; exit 1".into()]);
        assert!(matches!(&s, Sensors::Unreadable(why) if why.contains("no device")), "{s:?}");
        let s = read(&["printf".into(), "CPU Temp | 95 degrees C | cr\\n".into()]);
        assert_eq!(s, Sensors::Read { critical: vec!["CPU Temp: 95 degrees C (cr)".into()] });
    }
}
