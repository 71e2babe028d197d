//! The caller's decision for each client. The server never decides by itself whether a node is
//! blank: the pair runtime knows which peer is missing, and a factory floor wants every client
//! recovered.

use serde::Serialize;

use crate::client::ClientInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// Serve the recovery boot.
    Recover,
    /// Serve a script that boots the client's local disk.
    LocalBoot,
    /// Do not answer.
    Ignore,
}

pub trait Policy: Send + Sync {
    /// The decision for `client`, and the reason, which the server logs.
    fn decide(&self, client: &ClientInfo) -> (Decision, String);

    /// Whether an ordinary DHCP client (not a network-booting firmware or iPXE) gets an
    /// address. A factory floor may want that; a pair never does, so that it can never act as
    /// a second DHCP server on a network it was cabled to by mistake.
    fn serves_plain_clients(&self) -> bool {
        true
    }

    /// iPXE says that the client with private-link MAC `mac` could not boot its local disk
    /// (the BIOS local boot script asks for this when `sanboot` fails). `Recover` sends the
    /// client on to the recovery boot at once; anything else sends it back to its firmware.
    fn local_boot_failed(&self, _mac: &str) -> (Decision, String) {
        (Decision::Ignore, "this server does not act on a failed local boot".into())
    }
}

/// One policy shared by the DHCP and HTTP services.
impl<P: Policy + ?Sized> Policy for std::sync::Arc<P> {
    fn decide(&self, client: &ClientInfo) -> (Decision, String) {
        (**self).decide(client)
    }

    fn serves_plain_clients(&self) -> bool {
        (**self).serves_plain_clients()
    }

    fn local_boot_failed(&self, mac: &str) -> (Decision, String) {
        (**self).local_boot_failed(mac)
    }
}

/// The same decision for every client (`pairos pxe --policy`).
#[derive(Debug, Clone, Copy)]
pub struct Fixed(pub Decision);

impl Policy for Fixed {
    fn decide(&self, _client: &ClientInfo) -> (Decision, String) {
        (self.0, "fixed policy of this server".into())
    }
}
