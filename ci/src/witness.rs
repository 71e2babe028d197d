//! A witness for a lab pair: `pairos witness run` in a namespace of its own on the lab's public
//! network, with a key both nodes are given. It can be stopped and started again (its grants
//! stay in its state folder), as a customer's third box would be rebooted.

use std::path::{Path, PathBuf};

use pairos_host::{Child, Cmd};

use crate::error::io;
use crate::{paths, LabError, Netns};

/// The witness's address on the public network, and the key every lab pair shares with it.
pub const ADDRESS: &str = "192.168.50.30";
pub const KEY_HEX: &str = "6c61622d7769746e6573732d6b65792d6e6f742d612d7365637265742d2d2d21";

#[derive(Debug)]
pub struct LabWitness {
    ns_name: String,
    dir: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl LabWitness {
    /// Starts the witness in `ns` (already on the public network at [`ADDRESS`]), keeping its
    /// grants in `dir`.
    pub fn start(ns: &Netns, dir: &Path) -> Result<LabWitness, LabError> {
        std::fs::create_dir_all(dir.join("state")).map_err(io(dir))?;
        std::fs::write(dir.join("witness.key"), format!("{KEY_HEX}\n")).map_err(io(dir))?;
        let mut w = LabWitness { ns_name: ns.name().to_owned(), dir: dir.to_owned(), child: None, starts: 0 };
        w.resume()?;
        Ok(w)
    }

    /// Starts it again after [`LabWitness::stop`], from what it kept.
    pub fn resume(&mut self) -> Result<(), LabError> {
        let bin = paths::pairos_bin()?;
        let listen = format!("{ADDRESS}:7470");
        self.starts += 1;
        let child = Cmd::new("ip")
            .args(["netns", "exec", &self.ns_name])
            .arg(bin)
            .args(["witness", "run", "--listen", &listen, "--key-file"])
            .arg(self.dir.join("witness.key"))
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .spawn(Some(&self.dir.join(format!("witness-{}.log", self.starts))))?;
        self.child = Some(child);
        Ok(())
    }

    /// Stops it (SIGKILL: it keeps nothing in memory that it has not kept on disk).
    pub fn stop(&mut self) {
        self.child = None;
    }

    /// What it kept (`pairos witness status --json`).
    pub fn kept(&self) -> Result<serde_json::Value, LabError> {
        let bin = paths::pairos_bin()?;
        let text = Cmd::new(bin)
            .args(["witness", "status", "--json", "--state-dir"])
            .arg(self.dir.join("state"))
            .run_text()?;
        serde_json::from_str(&text).map_err(|e| LabError::Setup(format!("pairos witness status: {e}")))
    }
}
