//! The pair's decision core: who may act as primary, as a pure state machine, and the seeded
//! simulator that checks it.
//!
//! [`core::Node`] takes [`core::Input`]s (ticks of its own clock, messages from its peer on
//! either link, a fence's answer, the operator's switchover) and returns [`core::Action`]s
//! (send, persist, act, stop acting, fence, alarm). It touches no socket, disk or clock: the
//! daemon feeds it and carries out what it says, in order, so a failover can be replayed from a
//! recorded input log. The rule it keeps: a node acts as primary only in an epoch it holds by
//! its peer's grant (given by a peer that is not acting, to this very incarnation), by a
//! fence that confirmed the peer powered off, or by a witness's lease after a claim its peer
//! could hear; silence alone is never authority. [`witness`] is the witness's own rule.
//!
//! [`sim`] drives two nodes through seeded random schedules of crashes, hangs, power cycles,
//! partitions of either link, delayed, duplicated and reordered messages, failing fences, and
//! witnesses that restart or cannot be reached, and checks after every event that two nodes never act at once.

pub mod core;
pub mod sim;
pub mod witness;
