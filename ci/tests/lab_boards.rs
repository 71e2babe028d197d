//! Lab scenario: our kernel boots in a q35 VM with the `pairos` binary, and `pairos boards check`
//! inside it identifies the board. The VM's sysfs is captured and checked on the host too.
//!
//! Set PAIROS_UPDATE_FIXTURES=1 to copy the capture over boards/tests/fixtures/sysfs/qemu-q35.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pairos_boards::profiles;
use pairos_host::Cmd;
use pairos_lab::{
    blank_disk, initramfs, kernel, paths, DirectBoot, DiskBus, Firmware, Lab, LabError, NicModel, Vm, VmSpec,
};
use serde_json::Value;

const BOOT: Duration = Duration::from_secs(240);
const COMMAND: Duration = Duration::from_secs(120);
const GIB: u64 = 1 << 30;

/// Boots a shell VM with the qemu-q35 profile's modules; `build` adds NICs and disks.
fn boot(lab: &mut Lab, memory_mib: u32, build: impl FnOnce(VmSpec) -> VmSpec) -> Result<Vm, LabError> {
    let kernel = kernel::debian_kernel()?;
    let all = profiles::builtin().expect("built-in profiles");
    let q35 = profiles::find(&all, "qemu-q35").expect("qemu-q35 profile");
    let initrd = initramfs::shell_initramfs(&kernel, q35, &lab.dir().join("initrd.img"))?;
    let spec = VmSpec::new("node").memory_mib(memory_mib).exit_on_reboot().direct_boot(DirectBoot {
        kernel: kernel.vmlinuz(),
        initrd: Some(initrd),
        append: "console=ttyS0 panic=-1 quiet".into(),
    });
    let mut vm = lab.start(build(spec))?;
    vm.wait_for("lab-init: ready", BOOT)?;
    Ok(vm)
}

/// The JSON document in a command's console output.
fn json_in(output: &str) -> Value {
    let start = output.find('{').unwrap_or_else(|| panic!("no JSON in output:\n{output}"));
    let end = output.rfind('}').expect("closing brace");
    serde_json::from_str(&output[start..=end]).unwrap_or_else(|e| panic!("bad JSON ({e}):\n{output}"))
}

fn host_check(root: &Path) -> (i32, Value) {
    let out = std::process::Command::new(paths::pairos_bin().expect("pairos binary"))
        .args(["boards", "check", "--json", "--sysfs"])
        .arg(root)
        .output()
        .expect("run pairos");
    (out.status.code().unwrap_or(-1), serde_json::from_slice(&out.stdout).expect("JSON verdict"))
}

#[test]
fn an_ovmf_q35_vm_is_certified_as_qemu_q35_and_its_capture_agrees() -> Result<(), LabError> {
    let mut lab = Lab::new("boards-q35")?;
    let system = lab.dir().join("system.raw");
    let capture = lab.dir().join("capture.raw");
    blank_disk(&system, 8 * GIB)?;
    blank_disk(&capture, 64 << 20)?;
    let mut vm = boot(&mut lab, 1024, |s| {
        s.firmware(Firmware::Ovmf)
            .nic("private", NicModel::VirtioNet)
            .nic("public", NicModel::E1000e)
            .disk(&system, DiskBus::Virtio)
            .disk(&capture, DiskBus::Virtio)
    })?;

    let (rc, out) = vm.run("pairos boards check --json", COMMAND)?;
    let live = json_in(&out);
    assert_eq!(rc, 0, "pairos boards check inside the VM:\n{out}");
    assert_eq!(live["profile"], "qemu-q35");
    assert_eq!(live["certified"], true);
    assert_eq!(live["system_disk"], "vda");
    assert!(live["private_nic"].is_string() && live["public_nic"].is_string(), "{live}");

    // The console is byte-exact: a long output read back equals the host's, several times over.
    let host_list = Cmd::new(paths::pairos_bin()?).args(["boards", "list", "--json"]).run_text()?;
    for _ in 0..3 {
        let (rc, out) = vm.run("pairos boards list --json", COMMAND)?;
        assert_eq!(rc, 0);
        assert_eq!(out.trim_end(), host_list.trim_end(), "console output differs from the host's");
    }

    let (rc, out) =
        vm.run("sh /capture-sysfs.sh /tmp/cap && tar -C /tmp/cap -cf /dev/vdb . && sync", COMMAND)?;
    assert_eq!(rc, 0, "capture inside the VM:\n{out}");
    vm.kill();

    let captured = lab.dir().join("captured");
    std::fs::create_dir_all(&captured).expect("mkdir");
    Cmd::new("tar").arg("-xf").arg(&capture).arg("-C").arg(&captured).run()?;
    let (rc, offline) = host_check(&captured);
    assert_eq!(rc, 0, "{offline}");
    for key in ["profile", "certified", "private_nic", "public_nic", "system_disk"] {
        assert_eq!(offline[key], live[key], "the capture disagrees with the live probe on {key}");
    }

    if std::env::var_os("PAIROS_UPDATE_FIXTURES").is_some() {
        let fixture =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../boards/tests/fixtures/sysfs/qemu-q35");
        let _ = std::fs::remove_dir_all(&fixture);
        std::fs::create_dir_all(&fixture).expect("fixture dir");
        Cmd::new("cp").arg("-a").arg(captured.join(".")).arg(&fixture).run()?;
    }
    Ok(())
}

#[test]
fn a_seabios_vm_short_of_the_profile_is_refused_with_every_reason() -> Result<(), LabError> {
    let mut lab = Lab::new("boards-short")?;
    let small = lab.dir().join("small.raw");
    blank_disk(&small, 2 * GIB)?;
    // One NIC only, 512 MiB, and a 2 GiB system disk: three requirements unmet.
    let mut vm = boot(&mut lab, 512, |s| s.nic("private", NicModel::E1000e).disk(&small, DiskBus::Virtio))?;

    let (rc, out) = vm.run("pairos boards check", COMMAND)?;
    assert_eq!(rc, 1, "an uncertified machine exits 1:\n{out}");
    assert!(out.contains("not certified: this is a qemu-q35"), "{out}");
    assert!(out.contains("FAIL  public NIC at PCI 0000:00:04.0: not found"), "{out}");
    assert!(out.contains("FAIL  memory:"), "{out}");
    assert!(out.contains("FAIL  system disk: vda"), "{out}");
    assert!(out.contains("at least 8 GiB required"), "{out}");
    assert!(out.contains("ok    firmware mode: booted in bios mode"), "{out}");
    Ok(())
}
