//! Fencing: powering the peer off and confirming it is off, so that this node may act. Two
//! agents: the peer's BMC over IPMI (`ipmitool`, lanplus, the password in a file and handed over
//! in the environment, so it is never on a command line or in a log), and a command of the
//! operator's (or a test's) that exits 0 only once the peer is off.
//!
//! The answer is "off" only on a confirmation: `chassis power status` saying off. Anything else
//! (the BMC unreachable, a wrong password, a status that stays on) is a failed fence, and a
//! failed fence is no authority.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pairos_host::Cmd;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum FenceConfig {
    /// The peer's BMC, IPMI over LAN on the management network.
    Ipmi {
        host: String,
        #[serde(default = "ipmi_port")]
        port: u16,
        user: String,
        /// A file holding the password (mode 0600); read for each fence.
        password_file: PathBuf,
    },
    /// A command that powers the peer off and exits 0 only when it is off.
    Command { argv: Vec<String> },
}

fn ipmi_port() -> u16 {
    623
}

/// How long a BMC has to report the peer off after the power-off request.
const CONFIRM_WITHIN: Duration = Duration::from_secs(20);

impl FenceConfig {
    /// Where the fence goes, for logs and status (never the password).
    pub fn describe(&self) -> String {
        match self {
            FenceConfig::Ipmi { host, port, user, .. } => format!("IPMI {user}@{host}:{port}"),
            FenceConfig::Command { argv } => {
                format!("command {}", argv.first().map_or("(empty)", String::as_str))
            }
        }
    }

    /// `ipmitool` against the BMC, with the password from its file in the environment.
    fn ipmi(&self, args: &[&str]) -> Result<String, String> {
        let FenceConfig::Ipmi { host, port, user, password_file } = self else {
            return Err(format!("{}: not a BMC", self.describe()));
        };
        let password = std::fs::read_to_string(password_file)
            .map_err(|e| format!("reading the BMC password file {}: {e}", password_file.display()))?;
        // -N 1 -R 2: an unreachable BMC fails in seconds, not the default 20 s.
        Cmd::new("ipmitool")
            .args(["-I", "lanplus", "-C", "3", "-N", "1", "-R", "2", "-H", host, "-p"])
            .arg(port.to_string())
            .args(["-U", user, "-E"])
            .args(args)
            .env("IPMI_PASSWORD", password.trim_end_matches('\n'))
            .run_text()
            .map_err(|e| format!("{} ({}): {e}", self.describe(), args.join(" ")))
    }

    /// Powers the peer off; `Ok` only once it is confirmed off.
    pub fn fence(&self) -> Result<(), String> {
        match self {
            FenceConfig::Ipmi { .. } => {
                self.ipmi(&["chassis", "power", "off"])?;
                let start = Instant::now();
                loop {
                    let status = self.ipmi(&["chassis", "power", "status"])?;
                    if status.trim().ends_with("off") {
                        return Ok(());
                    }
                    if start.elapsed() > CONFIRM_WITHIN {
                        return Err(format!(
                            "{}: still {:?} {}s after power off",
                            self.describe(),
                            status.trim(),
                            CONFIRM_WITHIN.as_secs()
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            FenceConfig::Command { argv } => {
                let (program, args) = argv.split_first().ok_or("the fence command is empty")?;
                Cmd::new(program)
                    .args(args)
                    .run()
                    .map(|_| ())
                    .map_err(|e| format!("{}: {e}", self.describe()))
            }
        }
    }

    /// Resets the peer (a hard reset through its BMC: it boots again). Only a BMC can; a fence
    /// command only powers off.
    pub fn reset(&self) -> Result<(), String> {
        match self {
            FenceConfig::Ipmi { .. } => self.ipmi(&["chassis", "power", "reset"]).map(|_| ()),
            FenceConfig::Command { .. } => Err(format!("{} cannot reset the peer", self.describe())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_fence_confirms_only_on_success() {
        let ok = FenceConfig::Command { argv: vec!["true".into()] };
        assert_eq!(ok.fence(), Ok(()));
        let failed = FenceConfig::Command { argv: vec!["false".into()] };
        assert!(failed.fence().is_err());
        assert!(FenceConfig::Command { argv: vec![] }.fence().is_err());
    }

    #[test]
    fn an_ipmi_fence_without_its_password_file_fails_and_names_it() {
        let f = FenceConfig::Ipmi {
            host: "127.0.0.1".into(),
            port: 9,
            user: "admin".into(),
            password_file: "/nonexistent/bmc-password".into(),
        };
        let e = f.fence().expect_err("no password file");
        assert!(e.contains("/nonexistent/bmc-password"), "{e}");
        let e = f.reset().expect_err("no password file");
        assert!(e.contains("/nonexistent/bmc-password"), "{e}");
        let e = FenceConfig::Command { argv: vec!["true".into()] }.reset().expect_err("a command");
        assert!(e.contains("cannot reset"), "{e}");
        assert_eq!(f.describe(), "IPMI admin@127.0.0.1:9");
    }
}
