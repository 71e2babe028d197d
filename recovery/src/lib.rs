//! Self-healing: the verified, resumable, sparse-aware disk writer that `pairos install` and
//! `pairos recover` share, the recovery agent that images a blank node from its peer, and the
//! image service the peer serves it from.
//!
//! This crate is the home of the recovery issue; nothing is implemented here yet.
