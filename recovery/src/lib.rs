//! Self-healing: the verified, resumable, sparse-aware disk writer that `pairos install` and
//! `pairos recover` share; to come, the recovery agent that images a blank node from its peer,
//! and the image service the peer serves it from.
//!
//! Start at [`writer::write_image`]. [`source`] gives an image's manifest and bytes from a
//! folder or over HTTP, [`classify`] says what a disk holds before anything touches it,
//! [`target`] opens the disk exclusively, and [`journal`] lets an interrupted write resume.

pub mod classify;
pub mod image_service;
pub mod journal;
pub mod own_image;
pub mod peer;
pub mod source;
pub mod target;
pub mod writer;
