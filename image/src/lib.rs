//! The pairos build pipeline: a spec becomes a disk image, a PXE boot set and an ISO under one
//! signed manifest.
//!
//! The pipeline's stages arrive with `pairos build`. What is here are the parts every boot of a
//! pairos kernel needs, shared by the build and by the lab:
//!
//! - [`debian`] fetches Debian packages through the machine's apt and unpacks them (a cache keyed
//!   by package name and version);
//! - [`kmod`] resolves kernel modules and their dependencies from a kernel tree, in load order;
//! - [`initramfs`] writes a deterministic gzip-compressed cpio (newc) archive.

pub mod debian;
pub mod initramfs;
pub mod kmod;
