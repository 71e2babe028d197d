//! The witness: a small service on a third machine that grants one node of a pair at a time a
//! lease ([`service`], `pairos witness run`), the wire between it and the nodes ([`protocol`]),
//! and the pair daemon's side of it ([`client`]). The rule it answers by is the decision
//! core's own ([`pairos_pair::witness`]), so the simulator checks the same rule.

pub mod client;
pub mod protocol;
pub mod service;
