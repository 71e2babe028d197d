//! One test's lab: a namespace with links (bridges), a work folder, and endpoints.

use std::path::{Path, PathBuf};

use crate::error::io;
use crate::{paths, LabError, Netns};

/// A test's world. Create it first in a test so that it drops last: VMs and endpoints started
/// from it are gone before its namespace is deleted.
#[derive(Debug)]
pub struct Lab {
    name: String,
    dir: PathBuf,
    ns: Netns,
    links: Vec<String>,
    next_if: usize,
    vms: usize,
}

/// A host-side namespace attached to a link, for a program under test or a real client.
#[derive(Debug)]
pub struct Endpoint {
    pub ns: Netns,
    /// The address given to the endpoint's `eth0`, with its prefix (e.g. "10.77.0.1/24").
    pub cidr: String,
}

impl Endpoint {
    /// The address without its prefix.
    pub fn addr(&self) -> &str {
        self.cidr.split('/').next().unwrap_or(&self.cidr)
    }
}

impl Lab {
    /// A fresh lab for the test `name` (letters, digits, `-` and `_`). Leftovers of an earlier
    /// run of the same test (namespaces, processes, files) are cleared first.
    pub fn new(name: &str) -> Result<Lab, LabError> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(LabError::Setup(format!("lab name {name:?}: use letters, digits, - and _")));
        }
        let ns = Netns::create(&format!("plab-{name}"))?;
        // The links are cables: their bridges and ports say nothing of their own (no IPv6
        // link-local chatter), so a node hears only the stations at the other ends.
        ns.cmd("sysctl")
            .args(["-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])
            .run()?;
        let dir = paths::work_root().join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
        }
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(Lab { name: name.to_owned(), dir, ns, links: Vec::new(), next_if: 0, vms: 0 })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The test's work folder: consoles, disks and logs are kept here for a post-mortem.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    fn bridge(link: &str) -> String {
        format!("br-{link}")
    }

    /// Creates the link `name` (a bridge inside the lab namespace) if it does not exist yet.
    pub fn link(&mut self, name: &str) -> Result<(), LabError> {
        if self.links.iter().any(|l| l == name) {
            return Ok(());
        }
        if name.is_empty() || name.len() > 12 || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(LabError::Setup(format!("link name {name:?}: use up to 12 letters and digits")));
        }
        let br = Self::bridge(name);
        self.ns.ip(&["link", "add", &br, "type", "bridge", "stp_state", "0", "forward_delay", "0"])?;
        self.ns.ip(&["link", "set", &br, "up"])?;
        self.links.push(name.to_owned());
        Ok(())
    }

    /// A number for the next VM, unique within this lab (used in its MAC addresses).
    pub(crate) fn next_vm(&mut self) -> usize {
        self.vms += 1;
        self.vms
    }

    fn next_ifname(&mut self, prefix: &str) -> String {
        self.next_if += 1;
        format!("{prefix}{}", self.next_if)
    }

    /// A new tap device on `link`, for a VM's NIC; returns its name inside the lab namespace.
    pub(crate) fn tap(&mut self, link: &str) -> Result<String, LabError> {
        self.link(link)?;
        let tap = self.next_ifname("tap");
        self.ns.ip(&["tuntap", "add", "dev", &tap, "mode", "tap"])?;
        self.ns.ip(&["link", "set", &tap, "master", &Self::bridge(link), "up"])?;
        Ok(tap)
    }

    /// A namespace of its own on `link`, whose `eth0` has the address `cidr`.
    pub fn endpoint(&mut self, link: &str, name: &str, cidr: &str) -> Result<Endpoint, LabError> {
        let ns = Netns::create(&format!("plab-{}-{name}", self.name))?;
        self.attach(&ns, link, "eth0", Some(cidr))?;
        Ok(Endpoint { ns, cidr: cidr.to_owned() })
    }

    /// A namespace on `link` whose `eth0` has no address yet: a DHCP client's.
    pub fn client_endpoint(&mut self, link: &str, name: &str) -> Result<Endpoint, LabError> {
        let ns = Netns::create(&format!("plab-{}-{name}", self.name))?;
        self.attach(&ns, link, "eth0", None)?;
        Ok(Endpoint { ns, cidr: String::new() })
    }

    /// Adds an interface `ifname` on `link` to the namespace `ns`, with `cidr` if given.
    /// Returns the name of the cable's other end, on the bridge in the lab namespace: taking
    /// that down pulls the cable.
    pub fn attach(
        &mut self,
        ns: &Netns,
        link: &str,
        ifname: &str,
        cidr: Option<&str>,
    ) -> Result<String, LabError> {
        self.link(link)?;
        let outer = self.next_ifname("ve");
        let inner = format!("{outer}p");
        self.ns.ip(&["link", "add", &outer, "type", "veth", "peer", "name", &inner, "netns", ns.name()])?;
        self.ns.ip(&["link", "set", &outer, "master", &Self::bridge(link), "up"])?;
        ns.ip(&["link", "set", &inner, "name", ifname])?;
        if let Some(cidr) = cidr {
            ns.ip(&["addr", "add", cidr, "dev", ifname])?;
        }
        ns.ip(&["link", "set", ifname, "up"])?;
        Ok(outer)
    }
}
