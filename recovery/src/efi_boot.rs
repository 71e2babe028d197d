//! After a verified write, the disk boots next, whatever the firmware's boot order: a UEFI boot
//! entry for the image's ESP (`HD(n,GPT,guid,start,size)/\EFI\BOOT\BOOTX64.EFI`, the short form
//! that firmware expands by the partition's GUID, so it names the disk wherever it sits), then
//! `BootNext` set to it and it first in `BootOrder`, through efivarfs, as efibootmgr's `-c`,
//! `-n` and `-o` do for installers.
//!
//! `BootNext` is what counts: firmware uses it once at the next boot and removes it, and OVMF
//! rewrites `BootOrder` from QEMU's boot indexes at every boot. `BootOrder` is for firmware that
//! keeps it: there the disk comes first, and a disk that dies fails over to the network at once.
//!
//! The load option is written here rather than through a crate: efivar-rs panics on a drive
//! type it does not know and drops device paths it cannot parse, and the format is a few fields
//! (UEFI 2.10 §3.1.3 `EFI_LOAD_OPTION`, §10.3.5.1 hard drive and §10.3.5.4 file path nodes).
//! efivarfs marks global variables immutable; the flag is lifted for the write (rustix's safe
//! `FS_IOC_SETFLAGS`) and put back.

use std::path::{Path, PathBuf};

use rustix::fs::IFlags;
use uuid::Uuid;

/// Where efivarfs is mounted.
pub const EFIVARFS: &str = "/sys/firmware/efi/efivars";
/// The UEFI global variables' vendor GUID.
const GLOBAL: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";
/// Non-volatile, boot service and runtime access: how every boot variable is stored.
const ATTRIBUTES: u32 = 0x7;
/// `LOAD_OPTION_ACTIVE`.
const ACTIVE: u32 = 0x1;
/// The removable-media path the image's ESP holds the UKI at.
pub const LOADER: &str = "\\EFI\\BOOT\\BOOTX64.EFI";
/// The boot entry's name in the firmware's boot menu.
pub const DESCRIPTION: &str = "pairos";

#[derive(Debug, thiserror::Error)]
pub enum EfiBootError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("every boot entry number from Boot0000 to BootFFFF is taken")]
    NoFreeEntry,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EfiBootError + '_ {
    move |source| EfiBootError::Io { path: path.to_owned(), source }
}

/// The ESP on the disk just written, from its GPT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Esp {
    /// The partition's number (1 for the first entry of the table).
    pub number: u32,
    pub first_lba: u64,
    /// Its size in 512-byte sectors.
    pub sectors: u64,
    /// Its unique partition GUID.
    pub guid: Uuid,
}

/// One device path node: type, subtype, length (u16 LE, header included), data.
fn node(kind: u8, subtype: u8, data: &[u8]) -> Vec<u8> {
    let mut out = vec![kind, subtype];
    out.extend_from_slice(&((data.len() + 4) as u16).to_le_bytes());
    out.extend_from_slice(data);
    out
}

fn utf16z(text: &str) -> Vec<u8> {
    text.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect()
}

/// The `EFI_LOAD_OPTION` that boots `loader` from `esp`, active, named `description`.
pub fn load_option(esp: &Esp, description: &str, loader: &str) -> Vec<u8> {
    let mut hd = Vec::with_capacity(38);
    hd.extend_from_slice(&esp.number.to_le_bytes());
    hd.extend_from_slice(&esp.first_lba.to_le_bytes());
    hd.extend_from_slice(&esp.sectors.to_le_bytes());
    // The GUID as the firmware stores it: its first three fields little endian.
    hd.extend_from_slice(&esp.guid.to_bytes_le());
    hd.push(0x02); // partition format: GPT
    hd.push(0x02); // signature type: GUID
    let mut path = node(0x04, 0x01, &hd); // media, hard drive
    path.extend(node(0x04, 0x04, &utf16z(loader))); // media, file path
    path.extend(node(0x7f, 0xff, &[])); // end of the entire device path

    let mut out = ACTIVE.to_le_bytes().to_vec();
    out.extend_from_slice(&(path.len() as u16).to_le_bytes());
    out.extend(utf16z(description));
    out.extend(path);
    out
}

/// What [`boot_disk_next`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The boot entry's number (`Boot####`).
    pub entry: u16,
    /// The entry was made now (otherwise an identical one was there).
    pub created: bool,
    /// `BootOrder` as written.
    pub boot_order: Vec<u16>,
}

/// A global variable's file in the efivarfs at `vars`.
fn var_path(vars: &Path, name: &str) -> PathBuf {
    vars.join(format!("{name}-{GLOBAL}"))
}

/// A variable's value (without its attributes), if it exists.
fn read_var(vars: &Path, name: &str) -> Result<Option<Vec<u8>>, EfiBootError> {
    let path = var_path(vars, name);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(bytes.get(4..).unwrap_or_default().to_vec())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(&path)(e)),
    }
}

/// Writes a variable in one write (efivarfs takes the attributes and the value together),
/// lifting efivarfs's immutable flag from an existing one for the write.
fn write_var(vars: &Path, name: &str, value: &[u8]) -> Result<(), EfiBootError> {
    let path = var_path(vars, name);
    let mut bytes = ATTRIBUTES.to_le_bytes().to_vec();
    bytes.extend_from_slice(value);
    let kept = match std::fs::File::open(&path) {
        Ok(f) => {
            let flags = rustix::fs::ioctl_getflags(&f).unwrap_or(IFlags::empty());
            if flags.contains(IFlags::IMMUTABLE) {
                rustix::fs::ioctl_setflags(&f, flags - IFlags::IMMUTABLE)
                    .map_err(|e| io(&path)(std::io::Error::from(e)))?;
            }
            Some((f, flags))
        }
        Err(_) => None,
    };
    let written = std::fs::write(&path, &bytes).map_err(io(&path));
    if let Some((f, flags)) = kept {
        if flags.contains(IFlags::IMMUTABLE) {
            let _ = rustix::fs::ioctl_setflags(&f, flags);
        }
    }
    written
}

/// The numbers of the `Boot####` entries in `vars`.
fn entries(vars: &Path) -> Result<Vec<u16>, EfiBootError> {
    let suffix = format!("-{GLOBAL}");
    let mut found: Vec<u16> = std::fs::read_dir(vars)
        .map_err(io(vars))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let hex = name.strip_suffix(&suffix)?.strip_prefix("Boot")?;
            (hex.len() == 4).then(|| u16::from_str_radix(hex, 16).ok()).flatten()
        })
        .collect();
    found.sort_unstable();
    Ok(found)
}

/// Makes the firmware at `vars` (efivarfs) boot `esp`'s UKI next, and first from now on: reuses
/// an identical entry or makes one at the lowest free number, sets `BootNext` to it and puts it
/// first in `BootOrder`, keeping every other entry in its order.
pub fn boot_disk_next(vars: &Path, esp: &Esp) -> Result<Outcome, EfiBootError> {
    let option = load_option(esp, DESCRIPTION, LOADER);
    let numbers = entries(vars)?;
    let mut existing = None;
    for n in &numbers {
        if read_var(vars, &format!("Boot{n:04X}"))?.as_deref() == Some(option.as_slice()) {
            existing = Some(*n);
            break;
        }
    }
    let (entry, created) = match existing {
        Some(n) => (n, false),
        None => {
            let free = (0..=u16::MAX).find(|n| !numbers.contains(n)).ok_or(EfiBootError::NoFreeEntry)?;
            write_var(vars, &format!("Boot{free:04X}"), &option)?;
            (free, true)
        }
    };
    write_var(vars, "BootNext", &entry.to_le_bytes())?;
    let old: Vec<u16> = read_var(vars, "BootOrder")?
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let boot_order: Vec<u16> =
        std::iter::once(entry).chain(old.into_iter().filter(|n| *n != entry)).collect();
    let bytes: Vec<u8> = boot_order.iter().flat_map(|n| n.to_le_bytes()).collect();
    write_var(vars, "BootOrder", &bytes)?;
    Ok(Outcome { entry, created, boot_order })
}

/// Whether this boot came from the first entry of the firmware's `BootOrder` (`BootCurrent`
/// is `BootOrder`'s first): a node running from its disk says by this that its firmware boots
/// the disk first, so that a network boot of it means its disk did not boot. `None` when the
/// variables are not there (BIOS, or no efivarfs).
pub fn booted_first(vars: &Path) -> Option<bool> {
    let current = read_var(vars, "BootCurrent").ok()??;
    let order = read_var(vars, "BootOrder").ok()??;
    let (current, first) = (current.get(..2)?, order.get(..2)?);
    Some(current == first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esp() -> Esp {
        Esp {
            number: 1,
            first_lba: 2048,
            sectors: 524_288,
            guid: Uuid::parse_str("c12a7328-f81f-11d2-ba4b-00a0c93ec93b").expect("a GUID"),
        }
    }

    #[test]
    fn the_load_option_is_laid_out_as_the_uefi_spec_says() {
        let o = load_option(&esp(), "pairos", LOADER);
        assert_eq!(&o[..4], &[1, 0, 0, 0], "active");
        let path_len = u16::from_le_bytes([o[4], o[5]]) as usize;
        let desc = utf16z("pairos");
        assert_eq!(&o[6..6 + desc.len()], desc.as_slice());
        let path = &o[6 + desc.len()..];
        assert_eq!(path.len(), path_len, "the file path list's length covers the rest");
        // Hard drive node: 42 bytes.
        assert_eq!(&path[..4], &[0x04, 0x01, 42, 0]);
        assert_eq!(&path[4..8], &1u32.to_le_bytes());
        assert_eq!(&path[8..16], &2048u64.to_le_bytes());
        assert_eq!(&path[16..24], &524_288u64.to_le_bytes());
        // The ESP type GUID's well-known mixed-endian bytes (as in every GPT).
        assert_eq!(
            &path[24..40],
            &[0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b]
        );
        assert_eq!(&path[40..42], &[2, 2], "GPT, GUID signature");
        let file = utf16z(LOADER);
        assert_eq!(&path[42..46], &[0x04, 0x04, (file.len() + 4) as u8, 0]);
        assert_eq!(&path[46..46 + file.len()], file.as_slice());
        assert_eq!(&path[46 + file.len()..], &[0x7f, 0xff, 4, 0], "the end node");
    }

    fn var(dir: &Path, name: &str) -> Vec<u8> {
        std::fs::read(var_path(dir, name)).expect("written")
    }

    #[test]
    fn the_disk_boots_next_and_first_and_nothing_else_moves() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vars = dir.path();
        // What OVMF made: entries 0 to 2, in the order 1, 0, 2.
        for n in 0..3u16 {
            write_var(vars, &format!("Boot{n:04X}"), format!("entry {n}").as_bytes()).expect("write");
        }
        write_var(vars, "BootOrder", &[1, 0, 0, 0, 2, 0]).expect("write");
        let out = boot_disk_next(vars, &esp()).expect("done");
        assert_eq!(out, Outcome { entry: 3, created: true, boot_order: vec![3, 1, 0, 2] });
        assert_eq!(var(vars, "BootNext"), [7, 0, 0, 0, 3, 0], "attributes, then the entry");
        assert_eq!(var(vars, "BootOrder"), [7, 0, 0, 0, 3, 0, 1, 0, 0, 0, 2, 0]);
        assert_eq!(&var(vars, "Boot0003")[4..], load_option(&esp(), DESCRIPTION, LOADER).as_slice());
        assert_eq!(&var(vars, "Boot0001")[4..], b"entry 1", "others untouched");

        // Again (a second imaging): the same entry, not another.
        write_var(vars, "BootOrder", &[1, 0, 3, 0]).expect("write");
        let again = boot_disk_next(vars, &esp()).expect("done");
        assert_eq!(again, Outcome { entry: 3, created: false, boot_order: vec![3, 1] });
        // Another ESP (a swapped disk): a new entry.
        let other = Esp { guid: Uuid::from_u128(7), ..esp() };
        assert_eq!(boot_disk_next(vars, &other).expect("done").entry, 4);
    }

    #[test]
    fn a_boot_from_the_first_entry_is_seen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vars = dir.path();
        assert_eq!(booted_first(vars), None, "no variables: BIOS");
        write_var(vars, "BootOrder", &[2, 0, 1, 0]).expect("write");
        write_var(vars, "BootCurrent", &[2, 0]).expect("write");
        assert_eq!(booted_first(vars), Some(true));
        write_var(vars, "BootCurrent", &[1, 0]).expect("write");
        assert_eq!(booted_first(vars), Some(false), "booted the second entry (or by BootNext)");
    }

    #[test]
    fn no_efivarfs_is_a_clear_error() {
        let e = boot_disk_next(Path::new("/nonexistent/efivars"), &esp()).expect_err("no efivarfs");
        assert!(e.to_string().starts_with("/nonexistent/efivars: "), "{e}");
    }
}
