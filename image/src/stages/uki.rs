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
    Ok(())
}
