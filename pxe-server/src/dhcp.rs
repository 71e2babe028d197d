//! The DHCPv4 server's logic: DISCOVER, REQUEST, DECLINE, RELEASE and INFORM in, OFFER, ACK or
//! NAK out, with the PXE boot file the policy calls for. No sockets here: [`DhcpServer::handle`]
//! takes a parsed message and the time and returns the reply and where to send it.

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};

use crate::bootfile::{self, BootFile};
use crate::client::ClientInfo;
use crate::leases::{LeaseError, LeaseStore};
use crate::policy::{Decision, Policy};

/// How long an offered address is held for the client's REQUEST.
const OFFER_HOLD_SECS: u64 = 60;
/// How long a declined address is kept out of the pool.
const DECLINE_SECS: u64 = 600;

#[derive(Debug, Clone)]
pub struct DhcpConfig {
    /// Our address on the private link: server identifier, next-server, HTTP host.
    pub server_ip: Ipv4Addr,
    pub netmask: Ipv4Addr,
    pub lease_secs: u32,
    pub http_port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// 255.255.255.255:68 on the interface: the client has no address yet, or asked for it.
    Broadcast,
    /// The client's own address (it has one: RENEWING, INFORM).
    Unicast(Ipv4Addr),
    /// The address and port the request came from (proxyDHCP on port 4011).
    Sender,
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub message: Message,
    pub to: Destination,
    /// What was decided and why, for the log.
    pub note: String,
}

#[derive(Debug)]
pub struct DhcpServer<P> {
    pub config: DhcpConfig,
    pub leases: LeaseStore,
    pub policy: P,
}

fn requested_ip(msg: &Message) -> Option<Ipv4Addr> {
    match msg.opts().get(OptionCode::RequestedIpAddress) {
        Some(DhcpOption::RequestedIpAddress(ip)) => Some(*ip),
        _ => None,
    }
}

fn server_id(msg: &Message) -> Option<Ipv4Addr> {
    match msg.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(ip)) => Some(*ip),
        _ => None,
    }
}

/// A BOOTREPLY of `kind` to `req` from `server_ip`, with the server identifier (and the subnet
/// mask when `netmask` is given).
pub(crate) fn reply_to(
    req: &Message,
    kind: MessageType,
    yiaddr: Ipv4Addr,
    server_ip: Ipv4Addr,
    netmask: Option<Ipv4Addr>,
) -> Message {
    let mut m = Message::default();
    m.set_opcode(Opcode::BootReply)
        .set_xid(req.xid())
        .set_flags(req.flags())
        .set_chaddr(req.chaddr())
        .set_giaddr(req.giaddr())
        .set_yiaddr(yiaddr)
        .set_siaddr(server_ip);
    let opts = m.opts_mut();
    opts.insert(DhcpOption::MessageType(kind));
    opts.insert(DhcpOption::ServerIdentifier(server_ip));
    if let Some(mask) = netmask {
        opts.insert(DhcpOption::SubnetMask(mask));
    }
    m
}

/// Option 43 for PXE clients: PXE_DISCOVERY_CONTROL (tag 6) = 8, "download the boot file named
/// in this reply; no boot server discovery", then the end tag. Without it, UEFI PXE (EDK2) takes
/// the reply for a BINL offer and asks port 4011 for the boot file before it loads anything.
pub(crate) const PXE_VENDOR_OPTIONS: [u8; 4] = [6, 1, 8, 255];

/// Puts the boot file in `m`, as both the `file` field and option 67, with the vendor class
/// the client expects back (and, for PXE, the discovery control).
pub(crate) fn add_boot(m: &mut Message, client: &ClientInfo, boot: &BootFile) {
    m.set_fname_str(&boot.name);
    let opts = m.opts_mut();
    opts.insert(DhcpOption::BootfileName(boot.name.as_bytes().to_vec()));
    if boot.http_client {
        opts.insert(DhcpOption::ClassIdentifier(b"HTTPClient".to_vec()));
    } else if client.is_netboot() || client.ipxe {
        opts.insert(DhcpOption::ClassIdentifier(b"PXEClient".to_vec()));
        opts.insert(DhcpOption::VendorExtensions(PXE_VENDOR_OPTIONS.to_vec()));
    }
}

impl<P: Policy> DhcpServer<P> {
    fn reply(&self, req: &Message, kind: MessageType, yiaddr: Ipv4Addr) -> Message {
        let mask = (kind != MessageType::Nak).then_some(self.config.netmask);
        reply_to(req, kind, yiaddr, self.config.server_ip, mask)
    }

    fn destination(req: &Message) -> Destination {
        if !req.ciaddr().is_unspecified() && !req.flags().broadcast() {
            Destination::Unicast(req.ciaddr())
        } else {
            Destination::Broadcast
        }
    }

    /// The reply to `req` at unix time `now`, if any.
    pub fn handle(&mut self, req: &Message, now: u64) -> Result<Option<Reply>, LeaseError> {
        if req.opcode() != Opcode::BootRequest {
            return Ok(None);
        }
        let Some(client) = ClientInfo::from_message(req) else { return Ok(None) };
        let Some(kind) = req.opts().msg_type() else { return Ok(None) };
        let mac = client.mac_string();
        // Only firmware network boot clients are subject to the policy; an ordinary DHCP
        // client on the private link (a peer's OS) just gets an address.
        let (decision, reason) = if client.is_netboot() || client.ipxe {
            self.policy.decide(&client)
        } else if self.policy.serves_plain_clients() {
            (Decision::LocalBoot, "not a network boot client".into())
        } else {
            (Decision::Ignore, "not a network boot client".into())
        };
        if decision == Decision::Ignore {
            return Ok(None);
        }
        let boot = if client.is_netboot() || client.ipxe {
            bootfile::choose(&client, decision, self.config.server_ip, self.config.http_port)
        } else {
            None
        };
        // A network boot client with nothing to boot (a UEFI HTTP boot client told to boot its
        // disk) gets no offer at all, so that its firmware goes on to its next boot option.
        if (client.is_netboot() || client.ipxe) && boot.is_none() {
            tracing::info!(mac = %mac, ?decision, reason, "no offer: nothing to boot over the network");
            return Ok(None);
        }
        let lease = u64::from(self.config.lease_secs);
        let netboot = client.is_netboot() || client.ipxe;
        let note = |what: &str| {
            if netboot {
                format!(
                    "{what} to {mac}: {decision:?} ({reason}) [{:?} xid {:08x}]",
                    client.asker(),
                    client.xid
                )
            } else {
                format!("{what} to {mac}: address only ({reason})")
            }
        };

        let reply = match kind {
            MessageType::Discover => {
                let Some(ip) = self.leases.offer(&mac, requested_ip(req), now, OFFER_HOLD_SECS)? else {
                    return Ok(None);
                };
                let mut m = self.reply(req, MessageType::Offer, ip);
                m.opts_mut().insert(DhcpOption::AddressLeaseTime(self.config.lease_secs));
                if let Some(b) = &boot {
                    add_boot(&mut m, &client, b);
                }
                Some(Reply { message: m, to: Destination::Broadcast, note: note(&format!("OFFER {ip}")) })
            }
            MessageType::Request => {
                if server_id(req).is_some_and(|s| s != self.config.server_ip) {
                    // The client chose another server's offer; forget ours.
                    return Ok(None);
                }
                let ip = requested_ip(req).unwrap_or(req.ciaddr());
                if !ip.is_unspecified() && self.leases.bind(&mac, ip, now, lease)? {
                    let mut m = self.reply(req, MessageType::Ack, ip);
                    m.opts_mut().insert(DhcpOption::AddressLeaseTime(self.config.lease_secs));
                    if let Some(b) = &boot {
                        add_boot(&mut m, &client, b);
                    }
                    Some(Reply { message: m, to: Self::destination(req), note: note(&format!("ACK {ip}")) })
                } else {
                    let m = self.reply(req, MessageType::Nak, Ipv4Addr::UNSPECIFIED);
                    Some(Reply { message: m, to: Destination::Broadcast, note: note(&format!("NAK {ip}")) })
                }
            }
            MessageType::Decline => {
                if let Some(ip) = requested_ip(req) {
                    self.leases.decline(&mac, ip, now, DECLINE_SECS)?;
                }
                None
            }
            MessageType::Release => {
                self.leases.release(&mac, req.ciaddr())?;
                None
            }
            MessageType::Inform => {
                let mut m = self.reply(req, MessageType::Ack, Ipv4Addr::UNSPECIFIED);
                m.set_flags(Flags::default());
                Some(Reply { message: m, to: Self::destination(req), note: note("ACK (INFORM)") })
            }
            _ => None,
        };
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Fixed;
    use dhcproto::v4::{Architecture, UnknownOption};

    fn server(dir: &std::path::Path, decision: Decision) -> DhcpServer<Fixed> {
        let (leases, _) = LeaseStore::open(
            &dir.join("l.json"),
            Ipv4Addr::new(10, 77, 0, 100),
            Ipv4Addr::new(10, 77, 0, 150),
        )
        .expect("leases");
        DhcpServer {
            config: DhcpConfig {
                server_ip: Ipv4Addr::new(10, 77, 0, 1),
                netmask: Ipv4Addr::new(255, 255, 255, 0),
                lease_secs: 3600,
                http_port: 8080,
            },
            leases,
            policy: Fixed(decision),
        }
    }

    fn request(kind: MessageType, mac: u8, arch: Option<u16>, ipxe: bool) -> Message {
        let mut m = Message::default();
        m.set_opcode(Opcode::BootRequest).set_xid(42).set_chaddr(&[0x52, 0x54, 0, 0, 0, mac]);
        m.opts_mut().insert(DhcpOption::MessageType(kind));
        if let Some(a) = arch {
            m.opts_mut().insert(DhcpOption::ClientSystemArchitecture(Architecture::from(a)));
            m.opts_mut().insert(DhcpOption::ClassIdentifier(
                format!("PXEClient:Arch:{a:05}:UNDI:003016").into_bytes(),
            ));
        }
        if ipxe {
            m.opts_mut()
                .insert(DhcpOption::Unknown(UnknownOption::new(OptionCode::Unknown(175), vec![1, 1, 1])));
        }
        m
    }

    fn file(m: &Message) -> String {
        m.fname_str().and_then(Result::ok).unwrap_or_default().to_owned()
    }

    #[test]
    fn an_http_boot_client_told_to_boot_its_disk_gets_no_offer_at_all() {
        let d = tempfile::tempdir().expect("tempdir");
        let http = |s: &mut DhcpServer<Fixed>| {
            let mut m = request(MessageType::Discover, 3, Some(16), false);
            m.opts_mut().insert(DhcpOption::ClassIdentifier(b"HTTPClient:Arch:00016:UNDI:003001".to_vec()));
            s.handle(&m, 0).expect("ok")
        };
        assert!(
            http(&mut server(d.path(), Decision::LocalBoot)).is_none(),
            "no offer: on to the next option"
        );
        let recover = http(&mut server(d.path(), Decision::Recover)).expect("an offer");
        assert_eq!(file(&recover.message), "http://10.77.0.1:8080/pairos-recover.efi");
    }

    #[test]
    fn the_boot_chain_goes_firmware_to_ipxe_to_script() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut s = server(d.path(), Decision::Recover);
        let bios =
            s.handle(&request(MessageType::Discover, 1, Some(0), false), 0).expect("ok").expect("reply");
        assert_eq!(file(&bios.message), "ipxe/undionly.kpxe");
        assert_eq!(bios.message.siaddr(), Ipv4Addr::new(10, 77, 0, 1));
        let uefi =
            s.handle(&request(MessageType::Discover, 2, Some(7), false), 0).expect("ok").expect("reply");
        assert_eq!(file(&uefi.message), "ipxe/snponly.efi");
        let ipxe =
            s.handle(&request(MessageType::Discover, 2, Some(7), true), 0).expect("ok").expect("reply");
        assert_eq!(file(&ipxe.message), "http://10.77.0.1:8080/recover-uefi.ipxe");
        assert_eq!(uefi.message.yiaddr(), ipxe.message.yiaddr(), "the same client keeps its address");
    }

    /// Network boot only: a policy that serves no ordinary DHCP client.
    struct NetbootOnly;
    impl Policy for NetbootOnly {
        fn decide(&self, _: &ClientInfo) -> (Decision, String) {
            (Decision::Recover, "test".into())
        }
        fn serves_plain_clients(&self) -> bool {
            false
        }
    }

    #[test]
    fn a_policy_can_refuse_plain_clients_and_still_serve_network_boot() {
        let d = tempfile::tempdir().expect("tempdir");
        let plain = request(MessageType::Discover, 4, None, false);
        let mut s = server(d.path(), Decision::Recover);
        assert!(s.handle(&plain, 0).expect("ok").is_some(), "by default a plain client gets an address");
        let DhcpServer { config, leases, .. } = s;
        let mut s = DhcpServer { config, leases, policy: NetbootOnly };
        assert!(s.handle(&plain, 0).expect("ok").is_none(), "a plain client gets nothing");
        let pxe = s.handle(&request(MessageType::Discover, 5, Some(7), false), 0).expect("ok");
        assert_eq!(pxe.map(|r| file(&r.message)).as_deref(), Some("ipxe/snponly.efi"));
    }

    #[test]
    fn localboot_clients_are_never_offered_recovery_and_ignored_ones_get_nothing() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut s = server(d.path(), Decision::LocalBoot);
        let r = s.handle(&request(MessageType::Discover, 3, Some(0), true), 0).expect("ok").expect("reply");
        assert_eq!(file(&r.message), "http://10.77.0.1:8080/localboot-bios.ipxe");
        let mut s = server(d.path(), Decision::Ignore);
        assert!(s.handle(&request(MessageType::Discover, 3, Some(0), true), 0).expect("ok").is_none());
    }

    #[test]
    fn request_ack_nak_and_release() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut s = server(d.path(), Decision::Recover);
        let offer = s.handle(&request(MessageType::Discover, 4, None, false), 0).expect("ok").expect("offer");
        let ip = offer.message.yiaddr();
        let mut req = request(MessageType::Request, 4, None, false);
        req.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
        req.opts_mut().insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 77, 0, 1)));
        let ack = s.handle(&req, 1).expect("ok").expect("ack");
        assert_eq!(ack.message.opts().msg_type(), Some(MessageType::Ack));
        assert_eq!(ack.message.yiaddr(), ip);
        assert!(ack.message.fname().is_none(), "a plain DHCP client gets no boot file");

        // Another client asking for that address is refused.
        let mut steal = request(MessageType::Request, 5, None, false);
        steal.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
        let nak = s.handle(&steal, 2).expect("ok").expect("nak");
        assert_eq!(nak.message.opts().msg_type(), Some(MessageType::Nak));

        // A request meant for another server is not ours to answer.
        req.opts_mut().insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 77, 0, 2)));
        assert!(s.handle(&req, 3).expect("ok").is_none());
    }

    #[test]
    fn replies_are_not_sent_for_non_requests() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut s = server(d.path(), Decision::Recover);
        let mut m = request(MessageType::Discover, 6, None, false);
        m.set_opcode(Opcode::BootReply);
        assert!(s.handle(&m, 0).expect("ok").is_none());
    }
}
