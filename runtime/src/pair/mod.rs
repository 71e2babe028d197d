//! The pair runtime's pieces, as far as they exist: who this node is and the pair key
//! ([`identity`]), its management address ([`management`]), its private link
//! ([`private_link`]), heartbeats and what they say of the peer ([`heartbeat`]), who may join
//! ([`enrolment`]) and who is offered what at network boot ([`boot_policy`]), the services it
//! offers its peer ([`services`]) and the documents it tags for it ([`tagged`]), and the status
//! it shows ([`status`]). The pair daemon ([`daemon`]) decides the roles: its messages
//! ([`membership`]), the fence ([`fence`]) and the pair's address ([`arp`]) are its parts.
//! Mirrors grow here.

pub mod arp;
pub mod boot_policy;
pub mod daemon;
pub mod enrolment;
pub mod fence;
pub mod handover;
pub mod heartbeat;
pub mod identity;
pub mod management;
pub mod membership;
pub mod ports;
pub mod private_link;
pub mod sealed;
pub mod services;
pub mod status;
pub mod supervise;
pub mod tagged;
