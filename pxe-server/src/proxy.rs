//! ProxyDHCP (PXE specification 2.1, §2.2.5): for networks where another server hands out
//! addresses. We never offer an address here. A firmware or iPXE client's DISCOVER on port 67
//! gets an OFFER with no address but with the boot file, "PXEClient" and the PXE discovery
//! control option; its REQUEST to port 4011 gets the same boot file in an ACK. REQUESTs on port
//! 67 belong to the network's DHCP server and are never answered, nor is any client that is not
//! network booting.

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode};

use crate::bootfile;
use crate::client::ClientInfo;
use crate::dhcp::{add_boot, reply_to, Destination, Reply};
use crate::policy::{Decision, Policy};

#[derive(Debug)]
pub struct ProxyDhcp<P> {
    pub server_ip: Ipv4Addr,
    pub http_port: u16,
    pub policy: P,
}

/// Which port a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyPort {
    /// 67, broadcast, shared with the network's DHCP server.
    Dhcp,
    /// 4011, unicast to us: the PXE boot server port.
    BootServer,
}

impl<P: Policy> ProxyDhcp<P> {
    /// The reply to `req` arriving on `port`, if any.
    pub fn handle(&self, req: &Message, port: ProxyPort) -> Option<Reply> {
        if req.opcode() != Opcode::BootRequest {
            return None;
        }
        let client = ClientInfo::from_message(req)?;
        if !(client.is_netboot() || client.ipxe) {
            return None;
        }
        let (kind, reply_kind, to) = match (req.opts().msg_type()?, port) {
            (MessageType::Discover, ProxyPort::Dhcp) => {
                (MessageType::Discover, MessageType::Offer, Destination::Broadcast)
            }
            (MessageType::Request, ProxyPort::BootServer) => {
                (MessageType::Request, MessageType::Ack, Destination::Sender)
            }
            _ => return None,
        };
        let (decision, reason) = self.policy.decide(&client);
        let boot = bootfile::choose(&client, decision, self.server_ip, self.http_port)?;
        let mut m = reply_to(req, reply_kind, Ipv4Addr::UNSPECIFIED, self.server_ip, None);
        m.set_ciaddr(req.ciaddr());
        add_boot(&mut m, &client, &boot);
        if let Some(DhcpOption::ClientMachineIdentifier(uuid)) =
            req.opts().get(OptionCode::ClientMachineIdentifier)
        {
            m.opts_mut().insert(DhcpOption::ClientMachineIdentifier(uuid.clone()));
        }
        let what = if kind == MessageType::Discover { "proxy OFFER" } else { "proxy ACK (port 4011)" };
        let note = format!("{what} to {}: {decision:?} ({reason}), boot {}", client.mac_string(), boot.name);
        debug_assert!(decision != Decision::Ignore);
        Some(Reply { message: m, to, note })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dhcp::PXE_VENDOR_OPTIONS;
    use crate::policy::Fixed;
    use dhcproto::v4::{Architecture, UnknownOption};

    fn request(kind: MessageType, arch: Option<u16>, ipxe: bool) -> Message {
        let mut m = Message::default();
        m.set_opcode(Opcode::BootRequest).set_xid(7).set_chaddr(&[0x52, 0x54, 0, 0, 0, 9]);
        m.opts_mut().insert(DhcpOption::MessageType(kind));
        if let Some(a) = arch {
            m.opts_mut().insert(DhcpOption::ClientSystemArchitecture(Architecture::from(a)));
            m.opts_mut().insert(DhcpOption::ClassIdentifier(format!("PXEClient:Arch:{a:05}").into_bytes()));
            m.opts_mut().insert(DhcpOption::ClientMachineIdentifier(vec![0; 17]));
        }
        if ipxe {
            m.opts_mut().insert(DhcpOption::Unknown(UnknownOption::new(OptionCode::Unknown(175), vec![1])));
        }
        m
    }

    fn proxy(d: Decision) -> ProxyDhcp<Fixed> {
        ProxyDhcp { server_ip: Ipv4Addr::new(10, 5, 0, 2), http_port: 80, policy: Fixed(d) }
    }

    #[test]
    fn offers_a_boot_file_but_never_an_address() {
        let p = proxy(Decision::Recover);
        let r = p.handle(&request(MessageType::Discover, Some(7), false), ProxyPort::Dhcp).expect("offer");
        assert_eq!(r.message.opts().msg_type(), Some(MessageType::Offer));
        assert_eq!(r.message.yiaddr(), Ipv4Addr::UNSPECIFIED);
        assert!(r.message.opts().get(OptionCode::SubnetMask).is_none());
        assert!(r.message.opts().get(OptionCode::AddressLeaseTime).is_none());
        assert_eq!(r.message.fname_str().and_then(Result::ok), Some("ipxe/snponly.efi"));
        assert_eq!(
            r.message.opts().get(OptionCode::VendorExtensions),
            Some(&DhcpOption::VendorExtensions(PXE_VENDOR_OPTIONS.to_vec()))
        );
        assert!(r.message.opts().get(OptionCode::ClientMachineIdentifier).is_some(), "UUID echoed");

        let ack =
            p.handle(&request(MessageType::Request, Some(0), true), ProxyPort::BootServer).expect("ack");
        assert_eq!(ack.message.opts().msg_type(), Some(MessageType::Ack));
        assert_eq!(ack.to, Destination::Sender);
        assert_eq!(
            ack.message.fname_str().and_then(Result::ok),
            Some("http://10.5.0.2:80/recover-bios.ipxe")
        );
    }

    #[test]
    fn leaves_the_network_dhcp_server_alone() {
        let p = proxy(Decision::Recover);
        // A REQUEST on port 67 is for the network's DHCP server.
        assert!(p.handle(&request(MessageType::Request, Some(0), false), ProxyPort::Dhcp).is_none());
        // A DISCOVER on 4011 is not how PXE works.
        assert!(p.handle(&request(MessageType::Discover, Some(0), false), ProxyPort::BootServer).is_none());
        // A client that is not network booting is never answered.
        assert!(p.handle(&request(MessageType::Discover, None, false), ProxyPort::Dhcp).is_none());
        assert!(proxy(Decision::Ignore)
            .handle(&request(MessageType::Discover, Some(0), false), ProxyPort::Dhcp)
            .is_none());
    }
}
