//! `pairos boards …` as a user runs it: the real binary, on the fixture trees in
//! boards/tests/fixtures/sysfs (qemu-q35 is a capture from the lab; the others are made by
//! boards/tests/fixtures/make-synthetic-sysfs.py).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pairos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pairos")).args(args).output().expect("run pairos")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../boards/tests/fixtures/sysfs")
}

fn check_json(fixture: &str) -> (i32, serde_json::Value) {
    let root = fixtures().join(fixture);
    let out = pairos(&["boards", "check", "--json", "--sysfs", root.to_str().expect("utf8")]);
    let verdict = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{fixture}: no JSON verdict ({e}); stderr: {}", String::from_utf8_lossy(&out.stderr))
    });
    (out.status.code().expect("exit code"), verdict)
}

#[test]
fn every_certified_fixture_gets_its_profile_and_roles() {
    let cases = [
        ("qemu-q35", "eth0", "eth1", "vda"),
        ("dell-poweredge-r650", "eno2", "eno1", "sda"),
        ("hpe-proliant-dl360-gen10-plus", "ens1f1", "ens1f0", "nvme0n1"),
        ("lenovo-thinksystem-sr630-v2", "ens3f1", "ens3f0", "sda"),
        ("supermicro-sys-510p-m", "eno2", "eno1", "nvme0n1"),
    ];
    for (fixture, private, public, disk) in cases {
        let (code, v) = check_json(fixture);
        assert_eq!(code, 0, "{fixture}: {v}");
        assert_eq!(v["certified"], true, "{fixture}");
        assert_eq!(v["profile"], fixture, "{fixture}");
        assert_eq!(v["private_nic"], private, "{fixture}");
        assert_eq!(v["public_nic"], public, "{fixture}");
        assert_eq!(v["system_disk"], disk, "{fixture}");
        assert_eq!(v["reasons"].as_array().map(Vec::len), Some(0), "{fixture}");
        // Every certified fixture was captured (or modelled) booted under UEFI.
        let firmware = v["checks"][1]["detail"].as_str().unwrap_or_default();
        assert!(firmware.starts_with("booted in uefi mode"), "{fixture}: {firmware}");
    }
}

#[test]
fn every_uncertified_fixture_exits_1_with_its_reason() {
    let cases = [
        (
            "dell-poweredge-r650-missing-nic",
            "private-link NIC at onboard index 2: not found; ports present: eno1",
        ),
        ("supermicro-sys-510p-m-low-ram", "memory: 15993 MiB, at least 30000 MiB required"),
        (
            "supermicro-sys-510p-m-two-nvme",
            "2 disks match the rule \"nvme disk\" (nvme0n1, nvme1n1); refusing to guess",
        ),
        ("lenovo-thinksystem-sr630-v2-slow-link", "ens3f1 links at 100 Mb/s, at least 1000 Mb/s required"),
        ("unknown-vendor", "unknown board: DMI vendor \"GIGABYTE\", product \"R152-Z31-00\""),
    ];
    for (fixture, reason) in cases {
        let (code, v) = check_json(fixture);
        assert_eq!(code, 1, "{fixture}: {v}");
        assert_eq!(v["certified"], false, "{fixture}");
        let reasons: Vec<&str> =
            v["reasons"].as_array().expect("reasons").iter().filter_map(|r| r.as_str()).collect();
        assert_eq!(reasons.len(), 1, "{fixture}: exactly one requirement fails: {reasons:?}");
        assert!(reasons[0].contains(reason), "{fixture}: {:?} does not contain {reason:?}", reasons[0]);
    }
}

#[test]
fn the_text_verdict_lists_the_reasons() {
    let root = fixtures().join("supermicro-sys-510p-m-low-ram");
    let out = pairos(&["boards", "check", "--sysfs", root.to_str().expect("utf8")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(text.starts_with("not certified: this is a supermicro-sys-510p-m"), "{text}");
    assert!(text.contains("FAIL  memory: 15993 MiB"), "{text}");
}

/// A copy of the shipped profiles with `edit` applied to one file's text.
fn profiles_with(file: &str, edit: impl Fn(&str) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../boards/profiles");
    for entry in std::fs::read_dir(&src).expect("profiles") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let name = path.file_name().expect("name").to_str().expect("utf8").to_owned();
        let text = if name == file { edit(&text) } else { text };
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    dir
}

/// A change to a profile file's text.
type Edit = fn(&str) -> String;

#[test]
fn a_malformed_profile_is_an_error_naming_file_field_and_expectation() {
    let q35 = fixtures().join("qemu-q35");
    let cases: [(&str, Edit, &str); 6] = [
        (
            "dell-poweredge-r650.toml",
            |t| t.replace("onboard_index = 2", "onboard_index = 2\npci_path = \"0000:04:00.1\""),
            "field `nic[0]`: expected exactly one of pci_path and onboard_index",
        ),
        (
            "qemu-q35.toml",
            |t| t.replace("\"0000:00:03.0\"", "\"00:03.0\""),
            "field `nic[0].pci_path`: expected a PCI address like \"0000:00:03.0\", found \"00:03.0\"",
        ),
        ("qemu-q35.toml", |t| t.replace("ram_mib = 900", "ram_mb = 900"), "unknown field `ram_mb`"),
        (
            "qemu-q35.toml",
            |t| t.replace("cpu_cores = 1", "cpu_cores = \"one\""),
            "invalid type: string \"one\", expected u32",
        ),
        (
            "hpe-proliant-dl360-gen10-plus.toml",
            |t| t.replace("firmware = [\"uefi\"]", "firmware = [\"bios\"]"),
            "field `firmware`: expected a list that includes \"uefi\"",
        ),
        (
            "supermicro-sys-510p-m.toml",
            |t| t.replace("role = \"public\"", "role = \"private\""),
            "field `nic`: expected exactly one private-link NIC, found \"2 of them\"",
        ),
    ];
    for (file, edit, expected) in cases {
        let dir = profiles_with(file, edit);
        let out = pairos(&[
            "boards",
            "check",
            "--profiles",
            dir.path().to_str().expect("utf8"),
            "--sysfs",
            q35.to_str().expect("utf8"),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        assert!(stderr.contains(&dir.path().join(file).display().to_string()), "names the file: {stderr}");
        assert!(stderr.contains(expected), "{file}: {stderr:?} lacks {expected:?}");
        assert!(out.stdout.is_empty(), "no verdict on a broken profile set");
    }
}

#[test]
fn show_and_list_and_probe_work_and_say_what_went_wrong() {
    let out = pairos(&["boards", "list", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(list.as_array().map(Vec::len), Some(5));

    let out = pairos(&["boards", "show", "hpe-proliant-dl360-gen10-plus"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("private-link NIC  PCI 0000:31:00.1 (igb, at least 1000 Mb/s)"), "{text}");

    let out = pairos(&["boards", "show", "dell-r740"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("no board profile named \"dell-r740\"; known profiles: dell-poweredge-r650"));

    let root = fixtures().join("hpe-proliant-dl360-gen10-plus");
    let out = pairos(&["boards", "probe", "--json", "--sysfs", root.to_str().expect("utf8")]);
    let inv: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(inv["nics"].as_array().map(Vec::len), Some(4));
    assert_eq!(inv["disks"][0]["transport"], "nvme");
    assert_eq!(inv["cpu"]["cores"], 32);

    let out = pairos(&["boards", "check", "--sysfs", "/nonexistent/tree"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/tree: opening the probe root"));
}
