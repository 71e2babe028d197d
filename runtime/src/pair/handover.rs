//! What a node hands the peer that images itself from it, and how the newcomer takes it.
//!
//! The survivor gives, with the enrolment's token: the newcomer's identity, the pair key, the
//! pair's settings (`pair.json`), the newcomer's own management address (its address from the
//! settings, with the survivor's prefix, gateway and DNS), the BMC password and the witness key.
//! The newcomer checks all of it as a partner's preload is checked ([`Preload::check`]), and
//! writes it into its new state partition with the same files: a self-imaged node starts the
//! pair daemon at its first boot, as a preloaded one does.
//!
//! The pair keeps one BMC password (`bmc.password`, the peer's BMC's): a survivor hands over
//! the one it has, which opens the survivor's BMC when both BMCs share it, as the partner's
//! preload of a pair sets them.

use std::path::Path;

use anyhow::Context;
use pairos_recovery::peer::{NewcomerConfig, NodeConfig};
use pairos_recovery::trust::PairKey;

use super::daemon::settings::{PairSettings, BMC_PASSWORD_FILE, WITNESS_KEY_FILE};
use super::identity::{self, Preload};
use super::management::{parse_cidr, Management};

/// A secret file beside the settings, if there is one.
fn secret(state_dir: &Path, name: &str) -> anyhow::Result<Option<String>> {
    let path = state_dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim_end_matches('\n').to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// What this node (`me`, with its state in `state_dir`) gives the newcomer that becomes its
/// peer.
pub fn for_newcomer(me: &NodeConfig, key: &PairKey, state_dir: &Path) -> anyhow::Result<NewcomerConfig> {
    let node = identity::for_peer(me);
    let settings = PairSettings::load(state_dir)?;
    let management = match &settings {
        Some(s) => {
            let address = *s
                .management
                .get(&node.node_name)
                .with_context(|| format!("pair.json: no management address for {}", node.node_name))?;
            let (_, prefix) = parse_cidr(&s.address).map_err(anyhow::Error::msg)?;
            let own = Management::load(state_dir)?;
            Some(Management {
                address,
                prefix: own.as_ref().map_or(prefix, |m| m.prefix),
                gateway: own.as_ref().and_then(|m| m.gateway),
                dns: own.as_ref().and_then(|m| m.dns),
            })
        }
        None => None,
    };
    Ok(NewcomerConfig {
        node,
        pair_key: key.to_hex(),
        pair: settings.map(|s| serde_json::to_value(s).expect("settings serialise")),
        management: management.map(|m| serde_json::to_value(m).expect("an address serialises")),
        bmc_password: secret(state_dir, BMC_PASSWORD_FILE)?,
        witness_key: secret(state_dir, WITNESS_KEY_FILE)?,
    })
}

/// The newcomer's side: what the peer gave, checked, as the files of a preload. Nothing is
/// written before this succeeds.
pub fn take(given: NewcomerConfig) -> anyhow::Result<Preload> {
    let pair = given.pair.map(serde_json::from_value::<PairSettings>).transpose().context(
        "the peer's pair settings: expected address, management, optional bmc, witnesses and timing",
    )?;
    let management =
        given.management.map(serde_json::from_value::<Management>).transpose().context(
            "the peer's management address for this node: expected address, prefix, gateway and dns",
        )?;
    let preload = Preload {
        pair_id: given.node.pair_id,
        node_name: given.node.node_name,
        peer_name: given.node.peer_name,
        management,
        pair_key: Some(given.pair_key),
        pair,
        bmc_password: given.bmc_password,
        witness_key: given.witness_key,
    };
    preload.check().context("the configuration the peer gave")?;
    Ok(preload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> NodeConfig {
        NodeConfig { pair_id: "p-1".into(), node_name: "node-1".into(), peer_name: "node-2".into() }
    }

    fn file(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).expect("a test file");
    }

    #[test]
    fn a_newcomer_gets_the_whole_configuration_and_writes_the_same_files_as_a_preload() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let key = PairKey::generate().expect("randomness");
        file(
            dir.path(),
            "pair.json",
            r#"{"address": "192.168.50.10/24",
                "management": {"node-1": "192.168.50.11", "node-2": "192.168.50.12"},
                "bmc": {"node-1": {"host": "192.168.50.21", "user": "admin"},
                        "node-2": {"host": "192.168.50.22", "user": "admin"}},
                "witnesses": ["192.168.50.30"]}"#,
        );
        file(
            dir.path(),
            "management.json",
            r#"{"address": "192.168.50.11", "prefix": 24, "gateway": "192.168.50.1", "dns": null}"#,
        );
        file(dir.path(), "bmc.password", "s3cret\n");
        file(dir.path(), "witness.key", &format!("{}\n", "cd".repeat(32)));

        let given = for_newcomer(&me(), &key, dir.path()).expect("handed over");
        // It travels as JSON.
        let given: NewcomerConfig =
            serde_json::from_slice(&serde_json::to_vec(&given).expect("serialises")).expect("parses");
        let files = take(given).expect("taken").files();
        let get = |name: &str| {
            let (_, bytes) = files.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("{name}"));
            String::from_utf8(bytes.clone()).expect("text")
        };
        let node: NodeConfig = serde_json::from_str(&get("node.json")).expect("parses");
        assert_eq!(node, identity::for_peer(&me()));
        assert_eq!(get("pair.key").trim(), key.to_hex());
        let settings: PairSettings = serde_json::from_str(&get("pair.json")).expect("parses");
        assert_eq!(settings.witnesses, ["192.168.50.30"]);
        assert_eq!(settings.bmc["node-1"].host, "192.168.50.21");
        let m: Management = serde_json::from_str(&get("management.json")).expect("parses");
        assert_eq!((m.address.to_string(), m.prefix), ("192.168.50.12".into(), 24));
        assert_eq!(m.gateway.map(|g| g.to_string()).as_deref(), Some("192.168.50.1"));
        assert_eq!(get("bmc.password"), "s3cret");
        assert_eq!(get("witness.key").trim(), "cd".repeat(32));
    }

    #[test]
    fn a_node_without_settings_hands_over_its_identity_and_key_only() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let key = PairKey::generate().expect("randomness");
        let given = for_newcomer(&me(), &key, dir.path()).expect("handed over");
        assert_eq!((&given.pair, &given.management, &given.bmc_password), (&None, &None, &None));
        let names: Vec<&str> =
            take(given).expect("taken").files().iter().map(|(n, _)| *n).collect::<Vec<_>>();
        assert_eq!(names, ["node.json", "pair.key"]);
    }

    #[test]
    fn a_bad_handover_is_refused_whole() {
        let key = PairKey::generate().expect("randomness");
        let good = NewcomerConfig {
            node: identity::for_peer(&me()),
            pair_key: key.to_hex(),
            pair: None,
            management: None,
            bmc_password: None,
            witness_key: None,
        };
        let cases = [
            (NewcomerConfig { pair_key: "12".into(), ..good.clone() }, "pair_key: expected 64 hex digits"),
            (
                NewcomerConfig { pair: Some(serde_json::json!({"address": "nowhere"})), ..good.clone() },
                "the peer's pair settings",
            ),
            (
                NewcomerConfig {
                    pair: Some(serde_json::json!({"address": "10.0.0.1/24",
                        "management": {"node-1": "10.0.0.2", "node-2": "10.0.0.3"}, "witnesses": ["10.0.0.9"]})),
                    ..good.clone()
                },
                "no witness_key",
            ),
            (
                NewcomerConfig { management: Some(serde_json::json!({"address": 7})), ..good.clone() },
                "management address for this node",
            ),
            (
                NewcomerConfig {
                    node: NodeConfig { node_name: "node-3".into(), ..good.node.clone() },
                    ..good.clone()
                },
                "node-1 and node-2",
            ),
        ];
        for (given, says) in cases {
            let err = format!("{:#}", take(given).expect_err("refused"));
            assert!(err.contains(says), "{err}");
        }
    }
}
