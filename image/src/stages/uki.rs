//! Stage 5, UKI: the systemd-boot stub with the kernel, initramfs, command line, os-release
//! and kernel release added as PE sections, as the UKI specification lays them out. objcopy
//! places each new section after the stub's own, page-aligned; `objdump -h` checks the result.

use std::path::Path;

use pairos_host::Cmd;

use crate::stages::StageError;

const PAGE: u64 = 0x1000;

/// The end of the stub's last section (VMA + size), from `objdump -h`.
fn stub_end(stub: &Path) -> Result<u64, StageError> {
    let text = Cmd::new("objdump").arg("-h").arg(stub).run_text()?;
    let mut end = 0;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // "  0 .text  0000bff0  0000000000004000  0000000000004000  00000400  2**4"
        if f.len() >= 6 && f[0].parse::<u32>().is_ok() {
            let size = u64::from_str_radix(f[2], 16).ok();
            let vma = u64::from_str_radix(f[3], 16).ok();
            if let (Some(size), Some(vma)) = (size, vma) {
                end = end.max(vma + size);
            }
        }
    }
    if end == 0 {
        return Err(StageError::Parse { what: format!("objdump -h {}", stub.display()), text });
    }
    Ok(end)
}

#[derive(Debug)]
pub struct UkiParts<'a> {
    pub stub: &'a Path,
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    pub cmdline: &'a str,
    pub os_release: &'a str,
    pub uname: &'a str,
    /// SOURCE_DATE_EPOCH: the PE header's time stamp.
    pub epoch: u64,
}

/// Writes the UKI to `out`; `work` holds the small section files.
pub fn build(p: &UkiParts<'_>, work: &Path, out: &Path) -> Result<(), StageError> {
    std::fs::create_dir_all(work).map_err(StageError::io(work))?;
    let write = |name: &str, text: &str| -> Result<std::path::PathBuf, StageError> {
        let path = work.join(name);
        std::fs::write(&path, text).map_err(StageError::io(&path))?;
        Ok(path)
    };
    let sections = [
        (".osrel", write("osrel", p.os_release)?),
        (".cmdline", write("cmdline", p.cmdline)?),
        (".uname", write("uname", p.uname)?),
        (".linux", p.kernel.to_owned()),
        (".initrd", p.initrd.to_owned()),
    ];
    let mut vma = stub_end(p.stub)?.next_multiple_of(PAGE);
    let mut cmd = Cmd::new("objcopy");
    for (name, file) in &sections {
        let size = std::fs::metadata(file).map_err(StageError::io(file))?.len();
        cmd = cmd
            .arg("--add-section")
            .arg(format!("{name}={}", file.display()))
            .arg("--change-section-vma")
            .arg(format!("{name}={vma:#x}"));
        vma = (vma + size).next_multiple_of(PAGE);
    }
    cmd.arg(p.stub).arg(out).run()?;
    // objcopy stamps the PE header with the current time (binutils 2.40 ignores
    // SOURCE_DATE_EPOCH there); a reproducible UKI carries the build's epoch instead.
    let mut bytes = std::fs::read(out).map_err(StageError::io(out))?;
    set_pe_timestamp(&mut bytes, p.epoch).ok_or_else(|| StageError::Parse {
        what: format!("the PE header of {}", out.display()),
        text: String::new(),
    })?;
    std::fs::write(out, bytes).map_err(StageError::io(out))?;
    Ok(())
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Sets a PE file's COFF TimeDateStamp and recomputes its optional-header CheckSum.
pub fn set_pe_timestamp(b: &mut [u8], epoch: u64) -> Option<()> {
    let pe = u32_at(b, 0x3c)? as usize;
    if b.get(pe..pe + 4)? != b"PE\0\0" {
        return None;
    }
    let coff = pe + 4;
    let checksum_at = coff + 20 + 64;
    b.get_mut(coff + 4..coff + 8)?.copy_from_slice(&(epoch as u32).to_le_bytes());
    b.get_mut(checksum_at..checksum_at + 4)?.copy_from_slice(&[0; 4]);
    let checksum = pe_checksum(b);
    b[checksum_at..checksum_at + 4].copy_from_slice(&checksum.to_le_bytes());
    Some(())
}

/// The PE image checksum: a folded 16-bit sum of the file (checksum field zero) plus its length.
fn pe_checksum(b: &[u8]) -> u32 {
    let mut sum: u64 = 0;
    for word in b.chunks(2) {
        sum += u64::from(word[0]) | (u64::from(*word.get(1).unwrap_or(&0)) << 8);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    (sum as u32).wrapping_add(b.len() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pe_stamp_and_checksum_are_rewritten() {
        // A minimal PE: DOS header pointing at 0x40, "PE\0\0", a COFF and an optional header.
        let mut b = vec![0u8; 0x40 + 4 + 20 + 96];
        b[0] = b'M';
        b[1] = b'Z';
        b[0x3c] = 0x40;
        b[0x40..0x44].copy_from_slice(b"PE\0\0");
        b[0x48..0x4c].copy_from_slice(&0x6a3f_0000u32.to_le_bytes());
        set_pe_timestamp(&mut b, 1_767_225_600).expect("a PE file");
        assert_eq!(u32_at(&b, 0x48), Some(1_767_225_600));
        let stored = u32_at(&b, 0x44 + 20 + 64).expect("checksum");
        b[0x44 + 20 + 64..0x44 + 20 + 68].copy_from_slice(&[0; 4]);
        assert_eq!(stored, pe_checksum(&b));
        assert!(set_pe_timestamp(&mut [0u8; 16], 0).is_none());
    }
}
