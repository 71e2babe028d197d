//! The pair runtime's pieces, as far as they exist: who this node is and the pair key
//! ([`identity`]), its management address ([`management`]), its private link
//! ([`private_link`]), heartbeats and what they say of the peer ([`heartbeat`]), who may join
//! ([`enrolment`]) and who is offered what at network boot ([`boot_policy`]), the services it
//! offers its peer ([`services`]), and the status it shows ([`status`]). Roles and mirrors grow
//! here.

pub mod boot_policy;
pub mod enrolment;
pub mod heartbeat;
pub mod identity;
pub mod management;
pub mod ports;
pub mod private_link;
pub mod services;
pub mod status;
