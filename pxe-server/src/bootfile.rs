//! What a network-booting client is told to load.
//!
//! 1. Firmware PXE (no iPXE yet) gets an iPXE binary over TFTP, chosen by option 93:
//!    `ipxe/undionly.kpxe` for BIOS, `ipxe/snponly.efi` for UEFI.
//! 2. iPXE asks again and gets the HTTP URL of its script: `recover-{bios,uefi}.ipxe` or
//!    `localboot-{bios,uefi}.ipxe`, by the policy's decision.
//! 3. UEFI HTTP boot clients get the recovery UKI's URL directly.

use std::net::Ipv4Addr;

use crate::client::ClientInfo;
use crate::policy::Decision;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFile {
    /// The bootfile name (DHCP `file` and option 67): a TFTP path or an HTTP URL.
    pub name: String,
    /// Whether the reply must say "HTTPClient" in option 60 (UEFI HTTP boot requires it).
    pub http_client: bool,
}

pub fn choose(client: &ClientInfo, decision: Decision, server: Ipv4Addr, http_port: u16) -> Option<BootFile> {
    let fw = if client.is_uefi() { "uefi" } else { "bios" };
    let http = |path: &str| format!("http://{server}:{http_port}/{path}");
    match decision {
        Decision::Ignore => None,
        _ if client.is_http_boot() => match decision {
            Decision::Recover => Some(BootFile { name: http("pairos-recover.efi"), http_client: true }),
            // A UEFI HTTP boot client that should boot its disk is simply not answered with a
            // boot file: the firmware then moves on to the next boot option, the disk.
            _ => None,
        },
        Decision::Recover if client.ipxe => {
            Some(BootFile { name: http(&format!("recover-{fw}.ipxe")), http_client: false })
        }
        Decision::LocalBoot if client.ipxe => {
            Some(BootFile { name: http(&format!("localboot-{fw}.ipxe")), http_client: false })
        }
        _ => {
            let file = if client.is_uefi() { "ipxe/snponly.efi" } else { "ipxe/undionly.kpxe" };
            Some(BootFile { name: file.to_owned(), http_client: false })
        }
    }
}

/// iPXE scripts that boot the local disk.
///
/// - BIOS: `sanboot --no-describe --drive 0x80` hands the first hard disk to the BIOS boot path.
///   `exit` alone would fall back to the next BIOS boot device, which may not be the disk. When
///   the disk does not boot (no boot sector: blank, wiped), the script says so to the server
///   ([`LOCAL_BOOT_FAILED`]), which may send the client on to the recovery boot at once.
/// - UEFI: `exit 1` returns to the firmware with an error, so that its boot manager tries the
///   next boot option (the disk). A plain `exit` returns success, and EDK2's BDS (OVMF, and the
///   vendor firmware built on it) then stops and opens its boot menu instead. iPXE cannot boot
///   a local disk under UEFI, so whether the disk started is learnt from the disk itself.
pub fn localboot_script(uefi: bool) -> &'static str {
    if uefi {
        "#!ipxe\necho pairos: booting the local disk (back to the firmware for its next boot option)\nexit 1\n"
    } else {
        "#!ipxe\necho pairos: booting the local disk\n\
         sanboot --no-describe --drive 0x80 || chain /local-boot-failed/bios/${netX/mac:hexhyp} || exit\n"
    }
}

/// The path prefix of a BIOS client's word that its local disk did not boot:
/// `/local-boot-failed/bios/52-54-00-12-34-56` (iPXE's `hexhyp` form: iPXE takes a colon in a
/// relative URI for a scheme, and refuses it, the lab found).
pub const LOCAL_BOOT_FAILED: &str = "local-boot-failed/";

/// The script answering [`LOCAL_BOOT_FAILED`]: on to the recovery boot if the policy says
/// `Recover`, otherwise back to the firmware.
pub fn local_boot_failed_script(decision: Decision, firmware: &str, why: &str) -> String {
    let why = why.replace(['\n', '\r'], " ");
    match decision {
        Decision::Recover => {
            format!(
                "#!ipxe\necho pairos: the local disk did not boot: {why}\nchain /recover-{firmware}.ipxe\n"
            )
        }
        _ => format!("#!ipxe\necho pairos: the local disk did not boot: {why}\nexit 1\n"),
    }
}
