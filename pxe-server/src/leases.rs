//! Address leases: a pool on the private-link subnet, kept in a JSON file that is replaced
//! atomically (written beside, synced, renamed), so that a client gets the same address after
//! a restart. A lease file that does not parse is set aside and reported, never trusted.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("lease file {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Offered,
    Bound,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lease {
    pub ip: Ipv4Addr,
    /// Unix time when the lease ends.
    pub expires: u64,
    pub state: State,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LeaseFile {
    /// By MAC address, "aa:bb:cc:dd:ee:ff".
    leases: BTreeMap<String, Lease>,
    /// Addresses a client declined (someone else uses them), until the given time.
    declined: BTreeMap<Ipv4Addr, u64>,
}

#[derive(Debug)]
pub struct LeaseStore {
    path: PathBuf,
    first: u32,
    last: u32,
    data: LeaseFile,
}

/// What loading found, for the caller to log.
#[derive(Debug, PartialEq, Eq)]
pub enum Loaded {
    Fresh,
    Restored(usize),
    /// The file did not parse; it was moved to the given path.
    SetAside {
        moved_to: PathBuf,
        error: String,
    },
}

impl LeaseStore {
    /// Opens the store for the pool `first..=last`, reading `path` if it exists.
    pub fn open(path: &Path, first: Ipv4Addr, last: Ipv4Addr) -> Result<(LeaseStore, Loaded), LeaseError> {
        let io = |source| LeaseError::Io { path: path.to_owned(), source };
        let (data, loaded) = match std::fs::read(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (LeaseFile::default(), Loaded::Fresh),
            Err(e) => return Err(io(e)),
            Ok(bytes) => match serde_json::from_slice::<LeaseFile>(&bytes) {
                Ok(d) => {
                    let n = d.leases.len();
                    (d, Loaded::Restored(n))
                }
                Err(e) => {
                    let moved_to = path.with_extension("corrupt");
                    std::fs::rename(path, &moved_to).map_err(io)?;
                    (LeaseFile::default(), Loaded::SetAside { moved_to, error: e.to_string() })
                }
            },
        };
        Ok((LeaseStore { path: path.to_owned(), first: first.into(), last: last.into(), data }, loaded))
    }

    fn save(&self) -> Result<(), LeaseError> {
        let io = |source| LeaseError::Io { path: self.path.clone(), source };
        let tmp = self.path.with_extension("tmp");
        let bytes = serde_json::to_vec_pretty(&self.data).expect("leases serialise");
        let f = std::fs::File::create(&tmp).map_err(io)?;
        std::io::Write::write_all(&mut &f, &bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }

    pub fn get(&self, mac: &str) -> Option<&Lease> {
        self.data.leases.get(mac)
    }

    fn in_pool(&self, ip: Ipv4Addr) -> bool {
        (self.first..=self.last).contains(&u32::from(ip))
    }

    fn taken(&self, ip: Ipv4Addr, by_other_than: &str, now: u64) -> bool {
        self.data.declined.get(&ip).is_some_and(|&until| until > now)
            || self.data.leases.iter().any(|(m, l)| m != by_other_than && l.ip == ip && l.expires > now)
    }

    /// An address for `mac`: its current lease's, the one it asks for if free, or the first
    /// free one. Holds it for `hold` seconds, in memory only: as in dnsmasq, only bound leases
    /// are written, so a burst of DISCOVERs costs no disk I/O. None when the pool is exhausted.
    pub fn offer(
        &mut self,
        mac: &str,
        requested: Option<Ipv4Addr>,
        now: u64,
        hold: u64,
    ) -> Result<Option<Ipv4Addr>, LeaseError> {
        let ip = if let Some(l) = self.data.leases.get(mac).filter(|l| !self.taken(l.ip, mac, now)) {
            l.ip
        } else if let Some(r) = requested.filter(|r| self.in_pool(*r) && !self.taken(*r, mac, now)) {
            r
        } else {
            match (self.first..=self.last).map(Ipv4Addr::from).find(|ip| !self.taken(*ip, mac, now)) {
                Some(ip) => ip,
                None => return Ok(None),
            }
        };
        let keep = self
            .data
            .leases
            .get(mac)
            .is_some_and(|l| l.ip == ip && l.state == State::Bound && l.expires > now);
        if !keep {
            // Lapsed offers go, so that DISCOVERs from many MACs cannot grow the table.
            self.data.leases.retain(|_, l| l.state != State::Offered || l.expires > now);
            self.data.leases.insert(mac.to_owned(), Lease { ip, expires: now + hold, state: State::Offered });
        }
        Ok(Some(ip))
    }

    /// Binds `ip` to `mac` for `secs` if that is allowed; false means NAK.
    pub fn bind(&mut self, mac: &str, ip: Ipv4Addr, now: u64, secs: u64) -> Result<bool, LeaseError> {
        if !self.in_pool(ip) || self.taken(ip, mac, now) {
            return Ok(false);
        }
        match self.data.leases.get(mac) {
            Some(l) if l.ip == ip => {}
            // A client we never offered to (INIT-REBOOT from another server's lease) only gets
            // the address if it is free; the `taken` check above said it is.
            _ if !self.data.leases.contains_key(mac) => {}
            _ => return Ok(false),
        }
        self.data.leases.insert(mac.to_owned(), Lease { ip, expires: now + secs, state: State::Bound });
        self.save()?;
        Ok(true)
    }

    pub fn release(&mut self, mac: &str, ip: Ipv4Addr) -> Result<(), LeaseError> {
        if self.data.leases.get(mac).is_some_and(|l| l.ip == ip) {
            // Keep the entry as expired: the client gets the same address next time.
            if let Some(l) = self.data.leases.get_mut(mac) {
                l.expires = 0;
            }
            self.save()?;
        }
        Ok(())
    }

    /// The client found `ip` in use: never hand it out for `secs`.
    pub fn decline(&mut self, mac: &str, ip: Ipv4Addr, now: u64, secs: u64) -> Result<(), LeaseError> {
        if self.in_pool(ip) {
            self.data.declined.insert(ip, now + secs);
            if self.data.leases.get(mac).is_some_and(|l| l.ip == ip) {
                self.data.leases.remove(mac);
            }
            self.save()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> LeaseStore {
        LeaseStore::open(&dir.join("leases.json"), Ipv4Addr::new(10, 0, 0, 10), Ipv4Addr::new(10, 0, 0, 12))
            .expect("open")
            .0
    }

    #[test]
    fn a_client_keeps_its_address_across_restarts() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut s = store(d.path());
        let ip = s.offer("aa", None, 100, 60).expect("offer").expect("free");
        assert!(s.bind("aa", ip, 100, 3600).expect("bind"));
        let other = s.offer("bb", Some(ip), 100, 60).expect("offer").expect("free");
        assert_ne!(other, ip, "a bound address is not offered to another client");
        drop(s);
        let (mut s, loaded) = LeaseStore::open(
            &d.path().join("leases.json"),
            Ipv4Addr::new(10, 0, 0, 10),
            Ipv4Addr::new(10, 0, 0, 12),
        )
        .expect("reopen");
        assert_eq!(
            loaded,
            Loaded::Restored(1),
            "the bound lease is kept; the mere offer to bb is not written"
        );
        assert_eq!(s.offer("aa", None, 200, 60).expect("offer"), Some(ip));
        s.release("aa", ip).expect("release");
        assert_eq!(s.offer("aa", None, 300, 60).expect("offer"), Some(ip), "same address after release");
    }

    #[test]
    fn declines_and_exhaustion() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut s = store(d.path());
        let ip = s.offer("aa", None, 0, 60).expect("offer").expect("free");
        s.decline("aa", ip, 0, 600).expect("decline");
        assert_ne!(s.offer("aa", None, 1, 60).expect("offer"), Some(ip));
        assert!(s.offer("bb", None, 1, 60).expect("offer").is_some());
        assert_eq!(s.offer("cc", None, 1, 60).expect("offer"), None, "three addresses, one declined");
        assert!(!s.bind("dd", Ipv4Addr::new(10, 0, 0, 200), 1, 60).expect("bind"), "outside the pool");
    }

    #[test]
    fn a_corrupt_file_is_set_aside() {
        let d = tempfile::tempdir().expect("tempdir");
        let path = d.path().join("leases.json");
        std::fs::write(&path, b"{ not json").expect("write");
        let (s, loaded) =
            LeaseStore::open(&path, Ipv4Addr::new(10, 0, 0, 10), Ipv4Addr::new(10, 0, 0, 12)).expect("open");
        assert!(
            matches!(loaded, Loaded::SetAside { ref moved_to, .. } if moved_to.ends_with("leases.corrupt")),
            "{loaded:?}"
        );
        assert_eq!(std::fs::read(d.path().join("leases.corrupt")).expect("kept"), b"{ not json");
        assert!(s.get("aa").is_none());
    }
}
