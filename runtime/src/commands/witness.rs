//! `pairos witness`: run the witness, make its key, show what it kept.

use std::io::Write;

use anyhow::Context;
use pairos_recovery::trust::PairKey;

use crate::cli::WitnessCommand;
use crate::witness::service::{self, Kept};
use crate::Exit;

pub fn run(cmd: WitnessCommand) -> anyhow::Result<Exit> {
    match cmd {
        WitnessCommand::Run(a) => {
            let text = std::fs::read_to_string(&a.key_file)
                .with_context(|| format!("reading the witness key {}", a.key_file.display()))?;
            let key = PairKey::from_hex(text.trim()).with_context(|| {
                format!("{}: expected 64 hex digits (`pairos witness key` makes one)", a.key_file.display())
            })?;
            service::serve(a.listen, &key, &a.state_dir, &mut |line| {
                println!("witness: {line}");
                let _ = std::io::stdout().flush();
            })?;
        }
        WitnessCommand::Key => {
            let key = PairKey::generate().context("reading random bytes for the key")?;
            println!("{}", key.to_hex());
        }
        WitnessCommand::Status(a) => {
            let kept = Kept::load(&a.state_dir)?;
            if a.json {
                crate::output::json(&kept)?;
            } else if kept.pairs.is_empty() {
                println!("no pair has asked this witness yet ({})", a.state_dir.display());
            } else {
                for (id, p) in &kept.pairs {
                    let who = match (&p.holder, p.held) {
                        (Some(h), true) => {
                            format!("{h} holds the lease for epoch {} ({} ms leases)", p.epoch, p.lease_ms)
                        }
                        (Some(h), false) => format!("{h} gave back the lease for epoch {}", p.epoch),
                        (None, _) => "nobody holds the lease".into(),
                    };
                    println!("pair {id}: {who}");
                }
            }
        }
    }
    Ok(Exit::Success)
}
