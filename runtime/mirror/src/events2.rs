//! `drbdsetup events2`, read: each line a verb, an object and its `key:value` fields, as the
//! 8.4 tools print them (drbd-utils' `print_notifications`). [`Line::parse`] takes one line and
//! refuses anything else with an error that names it; [`Resources`] folds the lines into each
//! resource's state as it stands.
//!
//! ```text
//! exists resource name:data role:Secondary suspended:no
//! exists connection name:data peer-node-id:0 conn-name:peer connection:Connected role:Primary
//! exists device name:data volume:0 minor:0 disk:Inconsistent
//! exists peer-device name:data peer-node-id:0 conn-name:peer volume:0 replication:SyncTarget peer-disk:UpToDate
//! exists -
//! change peer-device name:data peer-node-id:0 conn-name:peer volume:0 replication:Established
//! call helper name:data peer-node-id:0 conn-name:peer helper:fence-peer
//! ```

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Exists,
    Create,
    Change,
    Destroy,
    Call,
    Response,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    Resource,
    Connection,
    Device,
    PeerDevice,
    Helper,
}

/// One line of events2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// `exists -`: the initial state is complete.
    InitialDone,
    Event {
        verb: Verb,
        object: Object,
        fields: BTreeMap<String, String>,
    },
}

impl Line {
    pub fn parse(line: &str) -> Result<Line, String> {
        let bad = |why: &str| format!("events2 line {line:?}: {why}");
        let mut words = line.split_whitespace();
        let verb = match words.next() {
            Some("exists") => Verb::Exists,
            Some("create") => Verb::Create,
            Some("change") => Verb::Change,
            Some("destroy") => Verb::Destroy,
            Some("call") => Verb::Call,
            Some("response") => Verb::Response,
            _ => return Err(bad("expected exists, create, change, destroy, call or response first")),
        };
        let object = match words.next() {
            Some("-") if verb == Verb::Exists => {
                return match words.next() {
                    None => Ok(Line::InitialDone),
                    Some(_) => Err(bad("expected nothing after `exists -`")),
                }
            }
            Some("resource") => Object::Resource,
            Some("connection") => Object::Connection,
            Some("device") => Object::Device,
            Some("peer-device") => Object::PeerDevice,
            Some("helper") => Object::Helper,
            _ => return Err(bad("expected resource, connection, device, peer-device or helper second")),
        };
        let mut fields = BTreeMap::new();
        for w in words {
            let (k, v) = w.split_once(':').ok_or_else(|| bad(&format!("field {w:?} is not key:value")))?;
            if k.is_empty() {
                return Err(bad(&format!("field {w:?} has no key")));
            }
            fields.insert(k.to_owned(), v.to_owned());
        }
        if !fields.contains_key("name") {
            return Err(bad("expected a name: field"));
        }
        Ok(Line::Event { verb, object, fields })
    }
}

/// One resource's state, as events2 last told it (a single volume per resource, as ours are).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resource {
    /// Primary or Secondary.
    pub role: String,
    pub suspended: String,
    /// The connection: Connected, Connecting, StandAlone, ...; empty without one.
    pub connection: String,
    pub peer_role: String,
    pub minor: Option<u32>,
    /// UpToDate, Inconsistent, Outdated, Diskless, ...
    pub disk: String,
    pub peer_disk: String,
    /// Established, SyncSource, SyncTarget, ...
    pub replication: String,
    /// A helper the kernel called and has not had an answer from (fence-peer, ...).
    pub helper: Option<String>,
    /// With `--statistics`: KiB that differ from the peer's side, and how far a resync is.
    pub out_of_sync_kib: u64,
    pub done_percent: Option<f64>,
    /// From `/proc/drbd` ([`crate::drbd::proc_counters`]) while a resync runs.
    pub rate_kib_s: Option<u64>,
    pub seconds_left: Option<u64>,
}

/// Every resource, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    pub resources: BTreeMap<String, Resource>,
    /// The initial state has been read (`exists -`).
    pub complete: bool,
}

impl Resources {
    /// Folds one parsed line in.
    pub fn apply(&mut self, line: &Line) {
        let (verb, object, f) = match line {
            Line::InitialDone => {
                self.complete = true;
                return;
            }
            Line::Event { verb, object, fields } => (*verb, *object, fields),
        };
        let name = f["name"].clone();
        if verb == Verb::Destroy && object == Object::Resource {
            self.resources.remove(&name);
            return;
        }
        let r = self.resources.entry(name).or_default();
        let set = |target: &mut String, key: &str| {
            if let Some(v) = f.get(key) {
                *target = v.clone();
            }
        };
        match (verb, object) {
            (Verb::Destroy, Object::Connection) => {
                r.connection.clear();
                r.peer_role.clear();
                r.peer_disk.clear();
                r.replication.clear();
            }
            (Verb::Destroy, Object::Device) => {
                r.disk.clear();
                r.minor = None;
            }
            (Verb::Destroy, _) => {}
            (_, Object::Resource) => {
                set(&mut r.role, "role");
                set(&mut r.suspended, "suspended");
            }
            (_, Object::Connection) => {
                set(&mut r.connection, "connection");
                set(&mut r.peer_role, "role");
            }
            (_, Object::Device) => {
                set(&mut r.disk, "disk");
                if let Some(m) = f.get("minor").and_then(|m| m.parse().ok()) {
                    r.minor = Some(m);
                }
            }
            (_, Object::PeerDevice) => {
                set(&mut r.peer_disk, "peer-disk");
                set(&mut r.replication, "replication");
                // Statistics come whole on each line that has them: none means in sync.
                if verb == Verb::Exists || f.contains_key("out-of-sync") {
                    r.out_of_sync_kib = f.get("out-of-sync").and_then(|v| v.parse().ok()).unwrap_or(0);
                }
                r.done_percent = f.get("done").and_then(|v| v.parse().ok());
            }
            (Verb::Call, Object::Helper) => r.helper = f.get("helper").cloned(),
            (_, Object::Helper) => r.helper = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INITIAL: &str = "\
exists resource name:data role:Secondary suspended:no
exists connection name:data peer-node-id:0 conn-name:peer connection:Connected role:Primary
exists device name:data volume:0 minor:0 disk:Inconsistent
exists peer-device name:data peer-node-id:0 conn-name:peer volume:0 replication:SyncTarget peer-disk:UpToDate resync-suspended:no
exists resource name:raw role:Primary suspended:no
exists device name:raw volume:0 minor:1 disk:UpToDate
exists -
";

    fn fold(text: &str) -> Resources {
        let mut r = Resources::default();
        for l in text.lines() {
            r.apply(&Line::parse(l).expect("a good line"));
        }
        r
    }

    #[test]
    fn the_initial_state_and_changes_fold_into_each_resource() {
        let mut r = fold(INITIAL);
        assert!(r.complete);
        let data = &r.resources["data"];
        assert_eq!((data.role.as_str(), data.peer_role.as_str()), ("Secondary", "Primary"));
        assert_eq!((data.disk.as_str(), data.peer_disk.as_str()), ("Inconsistent", "UpToDate"));
        assert_eq!((data.replication.as_str(), data.minor), ("SyncTarget", Some(0)));
        assert_eq!(r.resources["raw"].connection, "", "no connection yet");
        for l in [
            "change peer-device name:data peer-node-id:0 conn-name:peer volume:0 replication:Established",
            "change device name:data volume:0 disk:UpToDate",
            "call helper name:raw peer-node-id:0 conn-name:peer helper:fence-peer",
        ] {
            r.apply(&Line::parse(l).expect("a good line"));
        }
        assert_eq!(r.resources["data"].disk, "UpToDate");
        assert_eq!(r.resources["data"].replication, "Established");
        assert_eq!(r.resources["raw"].helper.as_deref(), Some("fence-peer"));
        r.apply(&Line::parse("response helper name:raw helper:fence-peer status:1024").expect("good"));
        assert_eq!(r.resources["raw"].helper, None);
        r.apply(&Line::parse("destroy connection name:data peer-node-id:0 conn-name:peer").expect("good"));
        assert_eq!(r.resources["data"].connection, "");
        r.apply(&Line::parse("destroy resource name:raw").expect("good"));
        assert!(!r.resources.contains_key("raw"));
        // Statistics: what is out of sync, and how far the resync is.
        let stats = "exists peer-device name:data peer-node-id:0 conn-name:peer volume:0 \
                     replication:SyncSource peer-disk:Inconsistent out-of-sync:20480 done:12.50";
        r.apply(&Line::parse(stats).expect("good"));
        assert_eq!(
            (r.resources["data"].out_of_sync_kib, r.resources["data"].done_percent),
            (20480, Some(12.5))
        );
    }

    #[test]
    fn a_malformed_line_is_refused_and_named() {
        for (line, says) in [
            ("", "expected exists"),
            ("exist resource name:x", "expected exists"),
            ("change disk name:x", "expected resource"),
            ("change device name:x disk", "not key:value"),
            ("change device disk:UpToDate", "name"),
            ("exists - more", "nothing after"),
            ("change device name:x :v", "no key"),
        ] {
            let e = Line::parse(line).expect_err(line);
            assert!(e.contains(says) && e.contains(&format!("{line:?}")), "{line:?}: {e}");
        }
    }
}
