//! The pairos lab: QEMU nodes booted from our own kernels and images, joined by links, driven
//! through their serial consoles. Integration and end-to-end tests share it.
//!
//! - [`Lab`] is one test's world: a network namespace named after the test (stale leftovers of
//!   an earlier run are cleared first), a work folder, and links (bridges) inside the namespace.
//! - [`Lab::start`] boots a [`VmSpec`] under TCG with SeaBIOS or OVMF; NICs are tap devices on
//!   the named links, at the PCI slots the `qemu-q35` board profile expects.
//! - [`Console`] captures a serial console to a file and waits for lines with a timeout, by
//!   polling; it also types commands and reads their exit codes.
//! - [`Lab::endpoint`] puts a host-side program (a server under test, a real client) on a link,
//!   in a namespace of its own.
//! - [`kernel`] and [`initramfs`] provide the Debian kernel (cached by package version) and a
//!   small initramfs with the `pairos` binary; [`image`] builds the default pairos image with
//!   `pairos build` (its stage cache makes a rebuild take seconds).
//! - [`witness`] runs `pairos witness` on a lab's public network.
//! - [`write_checker`] writes through the pair's address and proves that no acknowledged
//!   write is lost (the `write-checker` command); [`postgres_host`] runs a throwaway
//!   PostgreSQL on the host for its own tests.
//! - [`pair_lab`] is a pair of nodes with BMCs, watchdogs and a client, as the pair's lab
//!   scenarios and the `ci/lab` command use it; [`lab_server`] keeps one running for
//!   `ci/lab`.
//!
//! - [`browser`] drives headless Chromium in a namespace (the console's page);
//!   [`console_lab`] has the console's other lab tools (curl, alarm receivers, promtool).
//!
//! Everything that needs teardown is a guard whose `Drop` cleans up and never panics.

pub mod address_probe;
pub mod bmc;
pub mod browser;
pub mod checker_lab;
mod console;
pub mod console_lab;
mod error;
pub mod image;
pub mod initramfs;
pub mod kernel;
mod lab;
pub mod lab_server;
pub mod netns;
pub mod pair_host;
pub mod pair_lab;
pub mod paths;
pub mod postgres_host;
pub mod postgres_pair;
pub mod pxe;
mod qemu;
pub mod stats;
pub mod witness;
pub mod write_checker;

pub use console::Console;
pub use error::LabError;
pub use lab::{Endpoint, Lab};
pub use netns::Netns;
pub use qemu::{blank_disk, disk_from_image, DirectBoot, DiskBus, Firmware, Launch, NicModel, Vm, VmSpec};
