//! Certified hardware for pairos.
//!
//! A pair is only as good as the two servers under it, so pairos runs on boards that were
//! certified, and each certified board is described as data: one TOML profile per board in
//! `boards/profiles/` (built into the binary, see [`profiles::builtin`]). This crate
//!
//! - parses and checks profiles ([`profile`]: the strict file format lives in [`wire`], the
//!   checked [`Profile`] that code uses is built from it with `TryFrom`);
//! - inventories the running machine from sysfs and procfs ([`probe`] → [`Inventory`]); the probe
//!   reads below a root folder, so a captured tree is probed exactly like the live machine;
//! - decides whether an inventory is a certified board ([`verdict`]), naming every requirement
//!   that was not met, in words, and which NICs and disk the profile assigns to which role.
//!
//! Start reading at [`verdict::check`].

pub mod inventory;
pub mod probe;
pub mod profile;
pub mod profiles;
pub mod verdict;
pub mod wire;

pub use inventory::Inventory;
pub use profile::{Profile, ProfileError};
pub use verdict::{check, Verdict};
