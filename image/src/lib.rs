//! The pairos build pipeline: a spec becomes one signed image: `disk.raw` (+ `disk.bmap`), a PXE
//! boot set, a hybrid ISO, and `manifest.json` + `manifest.sig` covering all of it.
//!
//! Start reading at [`stages::build`]: it runs the stages in order (fetch, debootstrap, rootfs,
//! root-image, initramfs, uki, pxe, disk, iso, manifest), each a module of [`stages`], caching
//! the slow ones by input digest ([`cache`]). Shared with the rest of pairos:
//!
//! - [`layout`]: the disk layout and the Discoverable Partitions type GUIDs;
//! - [`manifest`]: the manifest format, the disk's chunk map, ed25519 signing and checking;
//! - [`manifest_record`]: the signed manifest a disk carries, so a node can serve its image;
//! - [`partition_table`]: writing a GPT (the build's, and a node's first-boot rewrite);
//! - [`spec`]: the build spec (TOML) and its embedded default;
//! - [`version`]: how image versions order, so that no node is taken back to an older one;
//! - [`debian`], [`kmod`], [`initramfs`]: packages through apt, module resolution, and the
//!   deterministic cpio writer (the lab uses them too).

pub mod bmap;
pub mod cache;
pub mod debian;
pub mod digest;
pub mod initramfs;
pub mod kmod;
pub mod layout;
pub mod manifest;
pub mod manifest_record;
pub mod partition_table;
pub mod spec;
pub mod stages;
pub mod version;
