//! `pairos console`: serve the web console, set its password, show its certificate.

use std::io::BufRead;

use anyhow::Context;

use crate::cli::ConsoleCommand;
use crate::console::{self, certificate, ConsoleConfig};
use crate::Exit;

fn say(line: String) {
    println!("{line}");
}

fn pair_key(file: &std::path::Path) -> anyhow::Result<pairos_recovery::trust::PairKey> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading the pair key {}", file.display()))?;
    pairos_recovery::trust::PairKey::from_hex(&text)
        .with_context(|| format!("{}: expected 64 hexadecimal digits", file.display()))
}

pub fn run(cmd: ConsoleCommand) -> anyhow::Result<Exit> {
    match cmd {
        ConsoleCommand::Serve(a) => {
            console::serve(
                ConsoleConfig {
                    pair_id: a.pair_id,
                    key_file: a.key_file,
                    run_dir: a.folders.run_dir,
                    state_dir: a.folders.state,
                    interface: a.interface,
                    listen: a.listen,
                    names: a.names,
                    peer: a.peer,
                },
                say,
            )?;
            Ok(Exit::Success)
        }
        ConsoleCommand::Password(a) => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            let password = line.trim_end_matches(['\n', '\r']);
            console::password::set(&a.folders.state, &a.folders.run_dir, password, a.replace)?;
            if a.folders.json {
                crate::output::json(&serde_json::json!({ "password_set": true }))?;
            } else {
                println!("console password set (argon2id, in the pair's document); the peer follows within seconds");
            }
            Ok(Exit::Success)
        }
        ConsoleCommand::Fingerprint(a) => {
            let key = pair_key(&a.key_file)?;
            let cert = certificate::derive(&key, &a.pair_id, &a.names)?;
            let fingerprint = certificate::fingerprint(&cert.cert_der);
            if a.pem {
                print!("{}", certificate::pem(&cert.cert_der));
            } else if a.json {
                crate::output::json(
                    &serde_json::json!({ "sha256": fingerprint, "spki_sha256": cert.spki_sha256 }),
                )?;
            } else {
                println!("certificate SHA-256 {fingerprint}\npublic key (SPKI) SHA-256 {}", cert.spki_sha256);
            }
            Ok(Exit::Success)
        }
    }
}
