//! Self-healing: the verified, resumable, sparse-aware disk writer that `pairos install`, the
//! installer and the recovery agent share, and the peer side that a recovering node images
//! itself from.
//!
//! Start at [`writer::write_image`]. [`source`] gives an image's manifest and bytes from a
//! folder or over HTTP, [`classify`] says what a disk holds before anything touches it,
//! [`target`] opens the disk exclusively, and [`journal`] lets an interrupted write resume on
//! the same disk ([`disk_identity`]) and no other.
//! [`efi_boot`] makes the written disk the firmware's next boot.
//! [`own_image`] makes a node's own disk an image source, [`image_service`] serves it over
//! HTTP, and [`peer`] is what the recovering node and its peer say to each other. The agent's
//! steps (link, board check, write, identity, reboot) run in the initramfs and are wired in
//! the runtime crate, which owns early boot.

pub mod classify;
pub mod disk_identity;
pub mod efi_boot;
pub mod image_service;
pub mod journal;
pub mod own_image;
pub mod peer;
pub mod source;
pub mod target;
pub mod trust;
pub mod writer;
