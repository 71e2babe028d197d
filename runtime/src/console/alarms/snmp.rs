//! An SNMPv2c trap (RFC 3416) over UDP: `sysUpTime.0`, `snmpTrapOID.0` and the alarm's fields
//! under the documentation enterprise number (RFC 5612, 32473), BER-encoded by rasn.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};

use pairos_mirror::document::SnmpDestination;
use rasn::types::ObjectIdentifier;
use rasn_smi::v1::TimeTicks;
use rasn_smi::v2::{ApplicationSyntax, ObjectSyntax, SimpleSyntax};
use rasn_snmp::v2::{Pdu, Trap, VarBind, VarBindValue};

use super::Notice;

/// The enterprise the traps come from: `1.3.6.1.4.1.32473.1` (pairos under the documentation
/// number).
pub const ENTERPRISE: [u32; 8] = [1, 3, 6, 1, 4, 1, 32473, 1];
/// `snmpTrapOID.0` of a pairos alarm: `ENTERPRISE.0.1`.
const TRAP: [u32; 2] = [0, 1];
/// Its fields: `ENTERPRISE.2.N`.
const FIELDS: [(&str, u32); 5] = [("severity", 1), ("pair", 2), ("node", 3), ("text", 4), ("id", 5)];

pub fn target(text: &str) -> Result<SocketAddr, String> {
    text.to_socket_addrs()
        .map_err(|e| format!("{text:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{text:?}: no address"))
}

fn oid(parts: &[u32]) -> ObjectIdentifier {
    ObjectIdentifier::new_unchecked(parts.to_vec().into())
}

fn under(tail: &[u32]) -> ObjectIdentifier {
    oid(&[&ENTERPRISE[..], tail].concat())
}

fn string(s: &str) -> VarBindValue {
    VarBindValue::Value(ObjectSyntax::Simple(SimpleSyntax::String(s.as_bytes().to_vec().into())))
}

/// The trap's bytes.
pub fn encode(community: &str, n: &Notice, uptime_centis: u32, request_id: i32) -> Result<Vec<u8>, String> {
    let mut binds = vec![
        VarBind {
            name: oid(&[1, 3, 6, 1, 2, 1, 1, 3, 0]),
            value: VarBindValue::Value(ObjectSyntax::ApplicationWide(ApplicationSyntax::Ticks(TimeTicks(
                uptime_centis,
            )))),
        },
        VarBind {
            name: oid(&[1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0]),
            value: VarBindValue::Value(ObjectSyntax::Simple(SimpleSyntax::ObjectId(under(&TRAP)))),
        },
    ];
    let values = [&n.severity, &n.pair, &n.node, &n.text, &n.id];
    for ((_, i), v) in FIELDS.iter().zip(values) {
        binds.push(VarBind { name: under(&[2, *i]), value: string(v) });
    }
    let message = rasn_snmp::v2c::Message {
        version: 1.into(),
        community: community.as_bytes().to_vec().into(),
        data: Trap(Pdu { request_id, error_status: 0, error_index: 0, variable_bindings: binds }),
    };
    rasn::ber::encode(&message).map_err(|e| format!("encoding the trap: {e}"))
}

fn uptime_centis() -> u32 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0, |s| (s * 100.0) as u32)
}

pub fn send(s: &SnmpDestination, n: &Notice) -> Result<(), String> {
    let to = target(&s.target)?;
    let mut id = [0u8; 4];
    getrandom::getrandom(&mut id).map_err(|e| e.to_string())?;
    let bytes = encode(&s.community, n, uptime_centis(), i32::from_be_bytes(id) & i32::MAX)?;
    let bind = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let socket = UdpSocket::bind(bind).map_err(|e| format!("a UDP socket: {e}"))?;
    socket.send_to(&bytes, to).map(|_| ()).map_err(|e| format!("sending to {to}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trap_decodes_as_an_snmpv2c_trap_with_the_alarm() {
        let n = Notice {
            id: "0123456789ab".into(),
            severity: "critical".into(),
            pair: "p".into(),
            node: "node-2".into(),
            text: "the peer is silent".into(),
            time: 5,
        };
        let bytes = encode("public", &n, 1234, 77).expect("encodes");
        let back: rasn_snmp::v2c::Message<rasn_snmp::v2::Pdus> = rasn::ber::decode(&bytes).expect("decodes");
        assert_eq!(back.community.as_ref(), b"public");
        let rasn_snmp::v2::Pdus::Trap(Trap(pdu)) = back.data else { panic!("not a trap: {:?}", back.data) };
        assert_eq!(pdu.request_id, 77);
        assert_eq!(pdu.variable_bindings.len(), 7);
        assert_eq!(pdu.variable_bindings[5].value, string("the peer is silent"));
    }
}
