//! What a DHCP client says about itself, as far as network boot cares.

use dhcproto::v4::{DhcpOption, Message, OptionCode};
use serde::Serialize;

/// RFC 4578 option 93 values we boot. dhcproto's enum uses older names for some of them, so
/// they are matched by number.
pub mod arch {
    pub const BIOS: u16 = 0;
    pub const EFI_IA32: u16 = 6;
    pub const EFI_X64: u16 = 7;
    pub const EFI_BC: u16 = 9;
    pub const EFI_X64_HTTP: u16 = 16;
}

/// Which program of a network-booting machine asked: one boot runs several, each with its own
/// DHCP exchange (the firmware's PXE, then the iPXE it loads; or the firmware's HTTP boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Asker {
    /// The firmware's own PXE client (option 60 `PXEClient`, not iPXE).
    Firmware,
    /// iPXE: loaded by the firmware's PXE, or the NIC's option ROM.
    Ipxe,
    /// The firmware's UEFI HTTP boot client (option 60 `HTTPClient`).
    HttpBoot,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientInfo {
    pub mac: [u8; 6],
    /// Option 93.
    pub arch: Option<u16>,
    /// Option 60, the vendor class (e.g. "PXEClient:Arch:00007:UNDI:003016").
    pub vendor_class: Option<String>,
    /// Option 94: UNDI interface type and version.
    pub undi: Option<(u8, u8, u8)>,
    /// Option 97: the machine UUID (type byte first).
    pub uuid: Option<Vec<u8>>,
    /// Option 77.
    pub user_class: Option<Vec<u8>>,
    /// Option 175 present, or user class "iPXE": iPXE is asking.
    pub ipxe: bool,
    /// The DHCP transaction id: a client's retransmissions and its REQUEST carry the DISCOVER's,
    /// so asks with one xid are one exchange, and a new xid is a new attempt.
    pub xid: u32,
}

impl ClientInfo {
    pub fn from_message(msg: &Message) -> Option<ClientInfo> {
        let chaddr = msg.chaddr();
        let mac: [u8; 6] = chaddr.get(..6)?.try_into().ok()?;
        let opts = msg.opts();
        let arch = match opts.get(OptionCode::ClientSystemArchitecture) {
            Some(DhcpOption::ClientSystemArchitecture(a)) => Some(u16::from(*a)),
            _ => None,
        };
        let vendor_class = match opts.get(OptionCode::ClassIdentifier) {
            Some(DhcpOption::ClassIdentifier(v)) => Some(String::from_utf8_lossy(v).into_owned()),
            _ => None,
        };
        let undi = match opts.get(OptionCode::ClientNetworkInterface) {
            Some(DhcpOption::ClientNetworkInterface(a, b, c)) => Some((*a, *b, *c)),
            _ => None,
        };
        let uuid = match opts.get(OptionCode::ClientMachineIdentifier) {
            Some(DhcpOption::ClientMachineIdentifier(u)) => Some(u.clone()),
            _ => None,
        };
        let user_class = match opts.get(OptionCode::UserClass) {
            Some(DhcpOption::UserClass(u)) => Some(u.clone()),
            _ => None,
        };
        let ipxe = opts.get(OptionCode::Unknown(175)).is_some()
            || user_class.as_deref().is_some_and(|u| u.windows(4).any(|w| w == b"iPXE"));
        Some(ClientInfo { mac, arch, vendor_class, undi, uuid, user_class, ipxe, xid: msg.xid() })
    }

    pub fn mac_string(&self) -> String {
        self.mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
    }

    /// A firmware network-boot client (option 60 says PXEClient or HTTPClient).
    pub fn is_netboot(&self) -> bool {
        self.vendor_class
            .as_deref()
            .is_some_and(|v| v.starts_with("PXEClient") || v.starts_with("HTTPClient"))
    }

    pub fn is_http_boot(&self) -> bool {
        self.vendor_class.as_deref().is_some_and(|v| v.starts_with("HTTPClient"))
    }

    /// Which of the network boot programs of a machine asked.
    pub fn asker(&self) -> Asker {
        if self.ipxe {
            Asker::Ipxe
        } else if self.is_http_boot() {
            Asker::HttpBoot
        } else {
            Asker::Firmware
        }
    }

    pub fn is_uefi(&self) -> bool {
        matches!(self.arch, Some(arch::EFI_IA32 | arch::EFI_X64 | arch::EFI_BC | arch::EFI_X64_HTTP))
    }
}
