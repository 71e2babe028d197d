//! The kernel command line, as far as pairos reads it.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Boot the installed root and run the pair runtime.
    Run,
    /// Network-booted: image this node's disk from its peer.
    Recover,
    /// Booted from the ISO: install onto this node's disk.
    Install,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Run => "run",
            Mode::Recover => "recover",
            Mode::Install => "install",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootArgs {
    pub mode: Mode,
    pub root_hash: Option<[u8; 32]>,
}

#[derive(Debug, thiserror::Error)]
pub enum CmdlineError {
    #[error("pairos.mode={0:?}: expected run, recover or install")]
    Mode(String),
    #[error("roothash={0:?}: expected 64 hex digits")]
    RootHash(String),
}

pub fn parse(line: &str) -> Result<BootArgs, CmdlineError> {
    let mut args = BootArgs { mode: Mode::Run, root_hash: None };
    for word in line.split_whitespace() {
        if let Some(mode) = word.strip_prefix("pairos.mode=") {
            args.mode = match mode {
                "run" => Mode::Run,
                "recover" => Mode::Recover,
                "install" => Mode::Install,
                other => return Err(CmdlineError::Mode(other.to_owned())),
            };
        } else if let Some(hash) = word.strip_prefix("roothash=") {
            let parsed = pairos_image::layout::parse_root_hash(hash)
                .ok_or_else(|| CmdlineError::RootHash(hash.to_owned()))?;
            args.root_hash = Some(parsed);
        }
    }
    Ok(args)
}

pub fn read() -> anyhow::Result<BootArgs> {
    let line = std::fs::read_to_string("/proc/cmdline")?;
    Ok(parse(&line)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_root_hash_are_read() {
        let hash = "ab".repeat(32);
        let a = parse(&format!("console=ttyS0 roothash={hash} quiet")).expect("parse");
        assert_eq!(a.mode, Mode::Run);
        assert_eq!(a.root_hash, Some([0xab; 32]));
        assert_eq!(parse("pairos.mode=recover initrd=initrd.img").expect("parse").mode, Mode::Recover);
        assert!(parse("pairos.mode=rescue")
            .expect_err("bad mode")
            .to_string()
            .contains("expected run, recover"));
        assert!(parse("roothash=12").is_err());
    }
}
