//! The pair runtime's pieces, as far as they exist: who this node is ([`identity`]), its
//! management address ([`management`]), its private link ([`private_link`]), the services it offers its peer there ([`services`]), and
//! the status it shows ([`status`]). Membership, roles and mirrors grow here.

pub mod boot_policy;
pub mod enrolment;
pub mod heartbeat;
pub mod identity;
pub mod management;
pub mod private_link;
pub mod services;
pub mod status;
