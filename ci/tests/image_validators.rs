//! The default image, checked by independent tools: sgdisk, fsck.vfat, mtools, unsquashfs,
//! veritysetup, bmaptool, objdump, xorriso and openssl. None of them shares code with pairos.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use pairos_host::Cmd;
use pairos_image::digest::sha256_file;
use pairos_image::manifest::Manifest;
use pairos_lab::{image, LabError};

/// Copies `len` bytes at `offset` of `disk` into `out`.
fn extract(disk: &Path, offset: u64, len: u64, out: &Path) -> PathBuf {
    let mut f = std::fs::File::open(disk).expect("open disk");
    f.seek(SeekFrom::Start(offset)).expect("seek");
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf).expect("read");
    std::fs::write(out, buf).expect("write");
    out.to_owned()
}

fn sh(cmd: Cmd) -> String {
    cmd.run_text().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn independent_tools_accept_every_artifact() -> Result<(), LabError> {
    let out = image::default_image()?;
    let m = Manifest::parse(&std::fs::read(out.join("manifest.json")).expect("read")).expect("manifest");
    let disk = out.join("disk.raw");
    let tmp = tempfile::tempdir().expect("tempdir");
    let t = tmp.path();

    // The manifest's signature, by openssl with the public key beside it.
    let verified = sh(Cmd::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
        .arg(out.join("signing-key.pub"))
        .arg("-in")
        .arg(out.join("manifest.json"))
        .arg("-sigfile")
        .arg(out.join("manifest.sig")));
    assert!(verified.contains("Signature Verified Successfully"), "{verified}");
    for a in &m.artifacts {
        assert_eq!(sha256_file(&out.join(&a.path)).expect("hash"), a.sha256, "{}", a.path);
    }

    // The partition table.
    let sgdisk = sh(Cmd::new("sgdisk").arg("-v").arg(&disk));
    assert!(sgdisk.contains("No problems found"), "{sgdisk}");
    let print = sh(Cmd::new("sgdisk").arg("-p").arg(&disk));
    for name in ["esp", "root-a", "verity-a", "root-b", "verity-b"] {
        assert!(print.contains(name), "{name} missing:\n{print}");
    }

    // The ESP, and the UKI in it.
    let esp_part = m.disk.layout.partition("esp").expect("esp");
    let esp = extract(&disk, esp_part.offset(), esp_part.size(), &t.join("esp.img"));
    sh(Cmd::new("fsck.vfat").arg("-n").arg(&esp));
    let uki = t.join("BOOTX64.EFI");
    sh(Cmd::new("mcopy").arg("-i").arg(&esp).arg("::/EFI/BOOT/BOOTX64.EFI").arg(&uki));
    for efi in [uki.clone(), out.join("pxe/pairos-recover.efi")] {
        let sections = sh(Cmd::new("objdump").arg("-h").arg(&efi));
        let mut spans = Vec::new();
        for name in [".osrel", ".cmdline", ".uname", ".linux", ".initrd"] {
            let line = sections
                .lines()
                .find(|l| l.split_whitespace().nth(1) == Some(name))
                .unwrap_or_else(|| panic!("{} has no {name}:\n{sections}", efi.display()));
            let f: Vec<&str> = line.split_whitespace().collect();
            let (size, vma) =
                (u64::from_str_radix(f[2], 16).expect("size"), u64::from_str_radix(f[3], 16).expect("vma"));
            spans.push((vma, vma + size));
        }
        spans.sort();
        assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "UKI sections overlap: {spans:x?}");
    }
    let cmdline = t.join("cmdline");
    sh(Cmd::new("objcopy").args(["-O", "binary", "--only-section=.cmdline"]).arg(&uki).arg(&cmdline));
    let cmdline = std::fs::read_to_string(&cmdline).expect("cmdline");
    assert!(cmdline.contains(&format!("roothash={}", m.root_hash)), "{cmdline}");

    // The BIOS boot: syslinux's GPT boot code in the MBR, the ESP marked legacy-BIOS-bootable,
    // and syslinux in the ESP booting the same kernel and initramfs with the UKI's command line.
    let info = sh(Cmd::new("sgdisk").args(["-i", "1"]).arg(&disk));
    assert!(info.contains("Attribute flags: 0000000000000004"), "{info}");
    let mbr = std::fs::read(&disk).expect("disk")[..440].to_vec();
    assert_eq!(mbr, std::fs::read("/usr/lib/syslinux/mbr/gptmbr.bin").expect("gptmbr.bin"), "MBR boot code");
    // ldlinux.sys is hidden and a system file, as syslinux installs it: `-a` lists it.
    let listing = sh(Cmd::new("mdir").arg("-a").arg("-i").arg(&esp).arg("::/syslinux"));
    for f in ["ldlinux  sys", "ldlinux  c32", "syslinux cfg"] {
        assert!(listing.contains(f), "{f} in the ESP's /syslinux:\n{listing}");
    }
    let syslinux_cfg = t.join("syslinux.cfg");
    sh(Cmd::new("mcopy").arg("-i").arg(&esp).arg("::/syslinux/syslinux.cfg").arg(&syslinux_cfg));
    let syslinux_cfg = std::fs::read_to_string(&syslinux_cfg).expect("syslinux.cfg");
    assert!(
        syslinux_cfg.contains(&format!("APPEND {}", cmdline.trim_end_matches('\0').trim())),
        "{syslinux_cfg}"
    );
    for f in ["/pairos/pxe/vmlinuz", "/pairos/pxe/initrd.img"] {
        assert!(syslinux_cfg.contains(f), "{f}: {syslinux_cfg}");
        sh(Cmd::new("mcopy").arg("-i").arg(&esp).arg(format!("::{f}")).arg(t.join("x")).arg("-o"));
    }

    // The root filesystem and its hash tree.
    let root_part = m.disk.layout.partition("root-a").expect("root-a");
    let verity_part = m.disk.layout.partition("verity-a").expect("verity-a");
    let root = extract(&disk, root_part.offset(), root_part.size(), &t.join("root.img"));
    let verity = extract(&disk, verity_part.offset(), verity_part.size(), &t.join("verity.img"));
    let sq = sh(Cmd::new("unsquashfs").arg("-s").arg(&root));
    assert!(sq.contains("Compression zstd"), "{sq}");
    sh(Cmd::new("veritysetup").arg("verify").arg(&root).arg(&verity).arg(&m.root_hash));

    // bmaptool flashes the image through the bmap, checking every range, to the same bytes.
    let flashed = t.join("flashed.raw");
    sh(Cmd::new("bmaptool").arg("copy").arg("--bmap").arg(out.join("disk.bmap")).arg(&disk).arg(&flashed));
    assert_eq!(sha256_file(&flashed).expect("hash"), sha256_file(&disk).expect("hash"));

    // The ISO has a UEFI El Torito boot image and carries the disk.
    let report = sh(Cmd::new("xorriso")
        .args(["-indev"])
        .arg(out.join("pairos.iso"))
        .args(["-report_el_torito", "plain"]));
    assert!(report.contains("El Torito boot img :   1  UEFI"), "{report}");
    let listing = sh(Cmd::new("xorriso").arg("-indev").arg(out.join("pairos.iso")).args(["-ls", "/image"]));
    for f in ["disk.raw", "disk.bmap", "manifest.json", "manifest.sig"] {
        assert!(listing.contains(f), "{f} not on the ISO:\n{listing}");
    }
    Ok(())
}
