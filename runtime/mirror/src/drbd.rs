//! DRBD's tools, as the node runs them: `drbdadm` with the pair's configuration file (it hands
//! off to its 8.4 tools by itself, the kernel's DRBD being 8.4), and `drbdsetup events2` for
//! the state. Each call says what it was doing when it fails.

use std::path::{Path, PathBuf};

use anyhow::Context;
use pairos_host::Cmd;

use super::events2::{Line, Resources};

/// The pair's DRBD configuration on a running node (rewritten from the pair's document).
pub const CONF: &str = "/run/pairos/drbd.conf";

#[derive(Debug, Clone)]
pub struct Drbd {
    conf: PathBuf,
}

impl Drbd {
    pub fn new(conf: &Path) -> Drbd {
        Drbd { conf: conf.to_owned() }
    }

    fn adm(&self) -> Cmd {
        Cmd::new("drbdadm").arg("-c").arg(&self.conf)
    }

    /// Whether `resource`'s backing device carries DRBD metadata (its generation identifiers
    /// can be read).
    pub fn has_metadata(&self, resource: &str) -> bool {
        self.adm().args(["get-gi", resource]).run().is_ok()
    }

    /// Writes fresh internal metadata on `resource`'s backing device (a new, blank volume only).
    pub fn create_md(&self, resource: &str) -> anyhow::Result<()> {
        self.adm()
            .args(["--force", "create-md", resource])
            .run()
            .with_context(|| format!("writing DRBD metadata for {resource}"))?;
        Ok(())
    }

    /// Brings `resource` to what the configuration says (attached, connecting): `adjust`
    /// does `up` for one that is down and changes only what differs for one that is up.
    pub fn adjust(&self, resource: &str) -> anyhow::Result<()> {
        self.adm().args(["adjust", resource]).run().with_context(|| format!("bringing {resource} up"))?;
        Ok(())
    }

    /// Makes this node's side primary; `force` only for a volume's first generation (a new
    /// volume on the node that made it, whose peer has never had data).
    pub fn primary(&self, resource: &str, force: bool) -> anyhow::Result<()> {
        let mut cmd = self.adm().arg("primary");
        if force {
            cmd = cmd.arg("--force");
        }
        cmd.arg(resource).run().with_context(|| format!("making {resource} primary"))?;
        Ok(())
    }

    pub fn secondary(&self, resource: &str) -> anyhow::Result<()> {
        self.adm()
            .args(["secondary", resource])
            .run()
            .with_context(|| format!("making {resource} secondary"))?;
        Ok(())
    }

    /// Marks this node's side of `resource` outdated (its peer goes on without it).
    pub fn outdate(&self, resource: &str) -> anyhow::Result<()> {
        self.adm().args(["outdate", resource]).run().with_context(|| format!("outdating {resource}"))?;
        Ok(())
    }

    /// Connects `resource` to its peer again (from StandAlone). `discard_my_data` makes this
    /// side the sync target of a split brain: what it wrote alone is overwritten by the
    /// peer's, so the caller keeps it first.
    pub fn connect(&self, resource: &str, discard_my_data: bool) -> anyhow::Result<()> {
        let mut cmd = self.adm().arg("connect");
        if discard_my_data {
            cmd = cmd.arg("--discard-my-data");
        }
        cmd.arg(resource).run().with_context(|| format!("connecting {resource}"))?;
        Ok(())
    }

    /// Makes `resource` as large as both sides' backing devices now allow (after both grew).
    pub fn resize(&self, resource: &str) -> anyhow::Result<()> {
        self.adm().args(["resize", resource]).run().with_context(|| format!("resizing {resource}"))?;
        Ok(())
    }

    /// Takes down a resource the configuration no longer names (drbdadm would not know it).
    pub fn down_unnamed(&self, resource: &str) -> anyhow::Result<()> {
        Cmd::new("drbdsetup")
            .args(["down", resource])
            .run()
            .with_context(|| format!("taking {resource} down"))?;
        Ok(())
    }

    /// The size DRBD offers on `minor` now, in bytes (`/sys/block/drbdN/size`, in sectors).
    pub fn device_size(minor: u32) -> Option<u64> {
        let text = std::fs::read_to_string(format!("/sys/block/drbd{minor}/size")).ok()?;
        text.trim().parse::<u64>().ok().map(|s| s * 512)
    }

    /// Drops `resource`'s connection (StandAlone).
    pub fn disconnect(&self, resource: &str) -> anyhow::Result<()> {
        self.adm()
            .args(["disconnect", resource])
            .run()
            .with_context(|| format!("disconnecting {resource}"))?;
        Ok(())
    }

    /// Drops `resource`'s connection at once, without asking the peer (`disconnect --force`:
    /// a hard state change). For a peer known to be gone: a plain disconnect waits for the
    /// peer's answer, and fails after the net timeout.
    pub fn force_disconnect(&self, resource: &str) -> anyhow::Result<()> {
        self.adm()
            .args(["disconnect", "--force", resource])
            .run()
            .with_context(|| format!("dropping {resource}'s connection"))?;
        Ok(())
    }

    /// Takes `resource` down (detached, disconnected).
    pub fn down(&self, resource: &str) -> anyhow::Result<()> {
        self.adm().args(["down", resource]).run().with_context(|| format!("taking {resource} down"))?;
        Ok(())
    }

    /// Every resource's state now (`drbdsetup events2 --now`); a line it cannot read is an
    /// error that names it. What is out of sync comes from `/proc/drbd` too (events2 reports
    /// it only while connected, and a disconnected side counts it all the same), and so do a
    /// running resync's rate and time left.
    pub fn state(&self) -> anyhow::Result<Resources> {
        let text = Cmd::new("drbdsetup")
            .args(["events2", "--now", "--statistics", "all"])
            .run_text()
            .context("reading DRBD's state")?;
        let mut state = read_state(&text)?;
        if let Ok(proc) = std::fs::read_to_string("/proc/drbd") {
            let counters = proc_counters(&proc);
            for r in state.resources.values_mut() {
                if let Some(c) = r.minor.and_then(|m| counters.get(&m)) {
                    r.out_of_sync_kib = r.out_of_sync_kib.max(c.out_of_sync_kib);
                    r.rate_kib_s = c.rate_kib_s;
                    r.seconds_left = c.seconds_left;
                    r.done_percent = r.done_percent.or(c.done_percent);
                }
            }
        }
        Ok(state)
    }
}

/// One minor's counters in `/proc/drbd`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcCounters {
    pub out_of_sync_kib: u64,
    /// While a resync runs: its rate now (`speed: N (avg) K/sec`), time left (`finish:`) and
    /// how much is done (`sync'ed: N%`; DRBD 8.4's events2 has no `done:`).
    pub rate_kib_s: Option<u64>,
    pub seconds_left: Option<u64>,
    pub done_percent: Option<f64>,
}

/// Each minor's counters, from `/proc/drbd`: a ` N: cs:...` line, then its counters with
/// `oos:KiB`, and during a resync `finish: H:MM:SS speed: N,NNN (N,NNN) K/sec`.
pub fn proc_counters(proc: &str) -> std::collections::BTreeMap<u32, ProcCounters> {
    let mut out = std::collections::BTreeMap::<u32, ProcCounters>::new();
    let mut minor = None;
    for line in proc.lines() {
        let t = line.trim_start();
        if let Some((n, rest)) = t.split_once(':') {
            if rest.trim_start().starts_with("cs:") {
                minor = n.parse().ok();
                if let Some(m) = minor {
                    out.entry(m).or_default();
                }
                continue;
            }
        }
        let Some(c) = minor.and_then(|m| out.get_mut(&m)) else { continue };
        let words: Vec<&str> = t.split_whitespace().collect();
        if let Some(kib) = words.iter().find_map(|w| w.strip_prefix("oos:")).and_then(|v| v.parse().ok()) {
            c.out_of_sync_kib = kib;
        }
        let after = |key: &str| words.iter().position(|w| *w == key).and_then(|i| words.get(i + 1));
        if let Some(finish) = after("finish:") {
            let parts: Option<Vec<u64>> = finish.split(':').map(|p| p.parse().ok()).collect();
            c.seconds_left = parts.map(|p| p.iter().fold(0, |acc, v| acc * 60 + v));
        }
        if let Some(done) = after("sync'ed:") {
            c.done_percent = done.strip_suffix('%').and_then(|d| d.parse().ok());
        }
        if let Some(speed) = after("speed:") {
            c.rate_kib_s = speed.replace(',', "").parse().ok();
        }
    }
    out
}

/// Folds the text of `events2 --now` into each resource's state.
pub fn read_state(text: &str) -> anyhow::Result<Resources> {
    let mut r = Resources::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        r.apply(&Line::parse(line).map_err(anyhow::Error::msg)?);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_out_of_sync_is_read_per_minor_from_proc_drbd() {
        let proc = "version: 8.4.11 (api:1/proto:86-101)\nsrcversion: F73C670A7EC572DB9CF3E5B \n\
 0: cs:WFConnection ro:Primary/Unknown ds:UpToDate/Outdated C r-----\n\
    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0\n\
 1: cs:WFConnection ro:Primary/Unknown ds:UpToDate/DUnknown C r-----\n\
    ns:0 nr:0 dw:20480 dr:0 al:8 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:20480\n";
        let c = proc_counters(proc);
        assert_eq!(c.get(&0), Some(&ProcCounters::default()));
        assert_eq!(c[&1].out_of_sync_kib, 20480);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn a_running_resync_has_a_rate_and_a_time_left() {
        let proc = " 1: cs:SyncSource ro:Primary/Secondary ds:UpToDate/Inconsistent C r-----\n\
    ns:30720 nr:0 dw:0 dr:31744 al:0 bm:0 lo:0 pe:2 ua:0 ap:0 ep:1 wo:f oos:231424\n\
\t[=>..................] sync'ed: 11.8% (226/256)M\n\
\tfinish: 0:01:12 speed: 3,072 (2,980) K/sec\n";
        let c = proc_counters(proc)[&1];
        assert_eq!(
            c,
            ProcCounters {
                out_of_sync_kib: 231424,
                rate_kib_s: Some(3072),
                seconds_left: Some(72),
                done_percent: Some(11.8)
            }
        );
    }
}
