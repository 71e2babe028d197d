//! `pairos pxe` on a lab link, for the tests of the network boot service and the PXE boots.

use std::path::Path;
use std::time::{Duration, Instant};

use pairos_host::Child;

use crate::{paths, Endpoint, LabError};

/// Starts `pairos pxe --interface eth0 --root ROOT ARGS…` in `server`'s namespace, logging to
/// `log`, and waits until DHCP (or proxyDHCP), TFTP and HTTP all serve.
pub fn start_pxe(server: &Endpoint, root: &Path, args: &[&str], log: &Path) -> Result<Child, LabError> {
    let mut child = server
        .ns
        .cmd(paths::pairos_bin()?.to_str().unwrap_or("pairos"))
        .args(["pxe", "--interface", "eth0", "--root"])
        .arg(root)
        .args(args)
        .spawn(Some(log))?;
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if ["DHCP serving", "TFTP serving", "HTTP serving"].iter().all(|m| text.contains(m)) {
            return Ok(child);
        }
        child.check_running()?;
        if start.elapsed() > Duration::from_secs(20) {
            return Err(LabError::Setup(format!("pairos pxe did not serve within 20 s; its log:\n{text}")));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// busybox udhcpc in `client`'s namespace, once (four tries), reporting what it was given
/// through a script in `work`: whether it got a lease, and its `BOUND ip= siaddr= boot_file=
/// serverid=` line or the error.
pub fn udhcpc(work: &Path, client: &Endpoint, extra: &[&str]) -> (bool, String) {
    let script = work.join("udhcpc-report.sh");
    let report = "#!/bin/sh\n[ \"$1\" = bound ] && \
                  echo \"BOUND ip=$ip siaddr=$siaddr boot_file=$boot_file serverid=$serverid\"\nexit 0\n";
    let written = std::fs::write(&script, report).and_then(|()| {
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
    });
    if let Err(e) = written {
        return (false, format!("{}: {e}", script.display()));
    }
    let out = client
        .ns
        .cmd("udhcpc")
        .args(["-i", "eth0", "-f", "-q", "-n", "-t", "4", "-T", "1", "-s"])
        .arg(&script)
        .args(extra)
        .run_text();
    match out {
        Ok(text) => (true, text),
        Err(e) => (false, e.to_string()),
    }
}

/// A stand-in PXE set (the files `pairos pxe` checks for), for tests that do not boot it; with
/// `extra` bytes of pseudo-random data in `big.bin` to transfer.
pub fn sample_pxe_root(root: &Path, extra: usize) -> std::io::Result<()> {
    std::fs::create_dir_all(root.join("ipxe"))?;
    for f in ["recover-bios.ipxe", "recover-uefi.ipxe"] {
        std::fs::write(root.join(f), "#!ipxe\nkernel vmlinuz\ninitrd initrd.img\nboot\n")?;
    }
    // xorshift: reproducible bytes that do not compress, cheaply.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut bytes = Vec::with_capacity(extra);
    while bytes.len() < extra {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    bytes.truncate(extra);
    std::fs::write(root.join("ipxe/undionly.kpxe"), &bytes[..extra.min(70_000)])?;
    std::fs::write(root.join("ipxe/snponly.efi"), &bytes[..extra.min(170_000)])?;
    std::fs::write(root.join("big.bin"), &bytes)?;
    Ok(())
}
