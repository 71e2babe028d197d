//! `pairos install` and the disk writer behind it, on the host, with files and loop devices as
//! disks: exact copies from a folder and over HTTP, a chunk corrupted in flight, a write killed
//! several times and resumed, a bad signature, a foreign disk, a mounted disk, a disk of this
//! pair, a disk too small and one larger than the image.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pairos_image::manifest::Manifest;
use pairos_lab::{image, paths, LabError};

const MIB: u64 = 1 << 20;

struct Install {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn install(image: &str, disk: &Path, key: &Path, extra: &[&str]) -> Install {
    let out: Output = Command::new(paths::pairos_bin().expect("pairos binary"))
        .args(["install", "--image", image, "--disk"])
        .arg(disk)
        .arg("--key")
        .arg(key)
        .args(extra)
        .output()
        .expect("pairos install runs");
    Install {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn sha256(path: &Path) -> String {
    pairos_image::digest::sha256_file(path).expect("hash")
}

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sized_file(path: &Path, size: u64) {
    let f = std::fs::File::create(path).expect("create");
    f.set_len(size).expect("size");
}

/// The range server (ci/scripts/range-server.py) on loopback; killed on drop.
struct RangeServer {
    child: std::process::Child,
    url: String,
}

impl RangeServer {
    fn start(dir: &Path, work: &Path, corrupt_offset: Option<u64>) -> RangeServer {
        let portfile = work.join(format!("port-{}", corrupt_offset.unwrap_or(0)));
        let _ = std::fs::remove_file(&portfile);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/range-server.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script).arg(dir).arg(&portfile).stdout(Stdio::null()).stderr(Stdio::null());
        if let Some(o) = corrupt_offset {
            cmd.arg(o.to_string());
        }
        let child = cmd.spawn().expect("range server");
        let start = Instant::now();
        while !portfile.exists() {
            assert!(start.elapsed() < Duration::from_secs(10), "range server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let port = std::fs::read_to_string(&portfile).expect("port");
        RangeServer { child, url: format!("http://127.0.0.1:{}", port.trim()) }
    }
}

impl Drop for RangeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn setup(name: &str) -> Result<(PathBuf, PathBuf, PathBuf, Manifest), LabError> {
    let out = image::default_image()?;
    let work = paths::work_root().join(name);
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("work dir");
    let key = out.join("signing-key.pub");
    let m = Manifest::parse(&std::fs::read(out.join("manifest.json")).expect("manifest")).expect("manifest");
    Ok((out, work, key, m))
}

#[test]
fn copies_are_exact_from_a_folder_and_over_http_and_a_corrupted_chunk_is_fetched_again(
) -> Result<(), LabError> {
    let (out, work, key, m) = setup("install-exact")?;
    let reference = sha256(&out.join("disk.raw"));

    let disk = work.join("from-folder.raw");
    let r = install(out.to_str().expect("utf8"), &disk, &key, &[]);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(sha256(&disk), reference, "the written file is byte-identical to disk.raw");

    // Over HTTP, with one chunk's bytes damaged once on the way.
    let victim = m.disk.chunks.iter().find(|c| !c.partition_table).expect("a data chunk");
    let server = RangeServer::start(&out, &work, Some(victim.offset));
    let disk = work.join("from-http.raw");
    let r = install(&server.url, &disk, &key, &["--json"]);
    assert!(r.ok, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "at byte {}: its sha256 does not match the manifest; fetching it again",
            victim.offset
        )),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("\"event\":\"retry\""), "{}", r.stdout);
    assert_eq!(sha256(&disk), reference, "the corrupted chunk never reached the disk");
    Ok(())
}

#[test]
fn a_write_killed_several_times_resumes_without_rewriting_and_ends_exact() -> Result<(), LabError> {
    let (out, work, key, _) = setup("install-resume")?;
    let disk = work.join("disk.raw");
    let journal = work.join("resume.record");
    let mut kills = 0;
    for round in 0..3 {
        // Paced at 20 MiB/s, so that a kill lands in the middle of the write.
        let mut child = Command::new(paths::pairos_bin()?)
            .args(["install", "--image", out.to_str().expect("utf8"), "--max-rate", "20", "--disk"])
            .arg(&disk)
            .arg("--key")
            .arg(&key)
            .arg("--journal")
            .arg(&journal)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        // Killed once this round has recorded a few more chunks, in the middle of the write.
        let lines = || std::fs::read_to_string(&journal).unwrap_or_default().lines().count();
        let (start, at_start) = (Instant::now(), lines());
        while lines() < at_start.max(1) + 3 && child.try_wait().expect("wait").is_none() {
            assert!(start.elapsed() < Duration::from_secs(60), "round {round}: no progress recorded");
            std::thread::sleep(Duration::from_millis(20));
        }
        if child.try_wait().expect("wait").is_none() {
            child.kill().expect("kill");
            kills += 1;
        }
        let _ = child.wait();
        let recorded = std::fs::read_to_string(&journal).unwrap_or_default().lines().count();
        assert!(recorded > 1, "round {round}: chunks were recorded before the kill");
    }
    assert!(kills >= 2, "the write was interrupted: {kills} kills");
    let r = install(
        out.to_str().expect("utf8"),
        &disk,
        &key,
        &["--journal", journal.to_str().expect("utf8"), "--json"],
    );
    assert!(r.ok, "{}", r.stderr);
    assert!(r.stderr.contains("resuming:"), "{}", r.stderr);
    let finished: serde_json::Value = r
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "finished")
        .expect("a finished event");
    let skipped = finished["skipped_bytes"].as_u64().expect("skipped");
    assert!(skipped >= 30 * MIB, "recorded chunks were not written again: {finished}");
    assert_eq!(sha256(&disk), sha256(&out.join("disk.raw")));
    assert!(!journal.exists(), "the record goes once the write is complete");
    Ok(())
}

#[test]
fn a_bad_signature_writes_nothing() -> Result<(), LabError> {
    let (out, work, key, _) = setup("install-bad-signature")?;
    let copy = work.join("image");
    std::fs::create_dir_all(&copy).expect("mkdir");
    for f in ["manifest.json", "disk.raw"] {
        std::fs::hard_link(out.join(f), copy.join(f)).expect("link");
    }
    let mut sig = std::fs::read(out.join("manifest.sig")).expect("sig");
    sig[0] ^= 1;
    std::fs::write(copy.join("manifest.sig"), sig).expect("sig");
    let disk = work.join("disk.raw");
    let r = install(copy.to_str().expect("utf8"), &disk, &key, &[]);
    assert!(!r.ok);
    assert!(r.stderr.contains("signature does not verify"), "{}", r.stderr);
    assert!(!disk.exists(), "nothing was created");
    let existing = work.join("existing.raw");
    sized_file(&existing, 1 << 30);
    sh(&format!("mkfs.ext4 -q -F {}", existing.display()));
    let before = sha256(&existing);
    let r = install(copy.to_str().expect("utf8"), &existing, &key, &["--allow-foreign"]);
    assert!(!r.ok);
    assert_eq!(sha256(&existing), before, "not one byte was written");
    Ok(())
}

#[test]
fn foreign_mounted_and_small_disks_are_refused_and_left_unchanged() -> Result<(), LabError> {
    let (out, work, key, m) = setup("install-refusals")?;
    let img = out.to_str().expect("utf8");

    // Foreign: a DOS partition table with an ext4 file system, on a file and on a loop device.
    let foreign = work.join("foreign.raw");
    sized_file(&foreign, 2 << 30);
    sh(&format!("printf 'label: dos\\nstart=2048, type=83\\n' | sfdisk -q {}", foreign.display()));
    let before = sha256(&foreign);
    let r = install(img, &foreign, &key, &[]);
    assert!(!r.ok);
    assert!(r.stderr.contains("holds foreign data; refusing to wipe it"), "{}", r.stderr);
    assert!(r.stderr.contains("PTTYPE=dos"), "says what it found: {}", r.stderr);
    assert!(r.stderr.contains("MBR partition 1: type 0x83, 2.0 GiB"), "and each partition: {}", r.stderr);
    assert_eq!(sha256(&foreign), before);

    let loopdev = sh(&format!("losetup --find --show {}", foreign.display())).trim().to_owned();
    let r = install(img, Path::new(&loopdev), &key, &[]);
    let detach = || sh(&format!("losetup -d {loopdev}"));
    if r.ok {
        detach();
        panic!("a foreign loop device was written");
    }
    assert!(r.stderr.contains("foreign data"), "{}", r.stderr);

    // Mounted: a loop device whose file system is mounted is in use.
    let fs = work.join("fs.raw");
    sized_file(&fs, 1 << 30);
    sh(&format!("mkfs.ext4 -q -F {}", fs.display()));
    let mnt = work.join("mnt");
    std::fs::create_dir_all(&mnt).expect("mkdir");
    let fsdev = sh(&format!("losetup --find --show {}", fs.display())).trim().to_owned();
    sh(&format!("mount {fsdev} {}", mnt.display()));
    let r = install(img, Path::new(&fsdev), &key, &["--allow-foreign"]);
    sh(&format!("umount {}", mnt.display()));
    sh(&format!("losetup -d {fsdev}"));
    detach();
    assert!(!r.ok, "a mounted device was written");
    assert!(r.stderr.contains("is in use"), "{}", r.stderr);
    assert_eq!(sha256(&foreign), before);

    // Foreign: another system's GPT (a Linux file system partition).
    let other = work.join("other-gpt.raw");
    sized_file(&other, 2 << 30);
    sh(&format!("sgdisk -n 1:2048:+512M -t 1:8300 -c 1:home {}", other.display()));
    let before_other = sha256(&other);
    let r = install(img, &other, &key, &[]);
    assert!(!r.ok && r.stderr.contains("partition 1: name \"home\""), "{}", r.stderr);
    assert_eq!(sha256(&other), before_other);

    // Too small.
    let small = work.join("small.raw");
    sized_file(&small, m.disk.layout.size - MIB);
    let r = install(img, &small, &key, &[]);
    assert!(!r.ok);
    assert!(r.stderr.contains("the image needs at least"), "{}", r.stderr);
    assert_eq!(std::fs::metadata(&small).expect("meta").len(), m.disk.layout.size - MIB);
    assert!(all_zeros(&small), "the small disk was not touched");
    Ok(())
}

fn all_zeros(path: &Path) -> bool {
    use std::io::Read;
    let mut f = std::fs::File::open(path).expect("open");
    let mut buf = vec![0u8; MIB as usize];
    loop {
        let n = f.read(&mut buf).expect("read");
        if n == 0 {
            return true;
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return false;
        }
    }
}

#[test]
fn a_larger_disk_gets_a_correct_table_and_a_pair_disk_keeps_its_data() -> Result<(), LabError> {
    let (out, work, key, m) = setup("install-pair")?;
    let img = out.to_str().expect("utf8");
    let disk = work.join("big.raw");
    sized_file(&disk, 4 << 30);
    let r = install(img, &disk, &key, &[]);
    assert!(r.ok, "{}", r.stderr);
    let verify = sh(&format!("sgdisk -v {}", disk.display()));
    assert!(verify.contains("No problems found"), "{verify}");
    assert!(r.stderr.contains("\"class\":\"blank\""), "{}", r.stderr);

    // The disk carries its signed manifest in the MiB after the image's partitions.
    let record_at = pairos_image::manifest_record::offset(&m.disk.layout);
    let mut record = vec![0u8; pairos_image::manifest_record::CAPACITY as usize];
    let f = std::fs::File::open(&disk).expect("open");
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut record, record_at).expect("read record");
    let (carried, _) = pairos_image::manifest_record::decode(&record).expect("a manifest record");
    assert_eq!(Manifest::parse(&carried).expect("it parses").disk, m.disk);

    // As first boot and the pair would: a state partition after that MiB, and a data partition
    // with data on it.
    let end = m.disk.layout.partitions.iter().map(|p| p.last_lba).max().expect("partitions");
    let state_first = (end + 1).next_multiple_of(2048) + 2048;
    let data_first = state_first + 262_144;
    sh(&format!(
        "sgdisk -n 6:{state_first}:+128M -t 6:4d21b016-b534-45c2-a9fb-5c16e091fd2d -c 6:pairos-state \
         -n 7:{data_first}:+256M -t 7:3b8f8425-20e0-4f3b-907f-1a25a76f98e8 -c 7:pairos-data {}",
        disk.display()
    ));
    let marker = b"pairos data that must survive a reinstall";
    let f = std::fs::OpenOptions::new().write(true).open(&disk).expect("open");
    std::os::unix::fs::FileExt::write_all_at(&f, marker, data_first * 512).expect("marker");
    drop(f);

    let r = install(img, &disk, &key, &[]);
    assert!(r.ok, "{}", r.stderr);
    assert!(r.stderr.contains("\"class\":\"pair\""), "{}", r.stderr);
    let table = sh(&format!("sgdisk -p {}", disk.display()));
    assert!(table.contains("pairos-state") && table.contains("pairos-data"), "{table}");
    assert!(sh(&format!("sgdisk -v {}", disk.display())).contains("No problems found"));
    let mut back = vec![0u8; marker.len()];
    let f = std::fs::File::open(&disk).expect("open");
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut back, data_first * 512).expect("read");
    assert_eq!(&back[..], marker, "the data partition's bytes are untouched");

    // A kept partition that reaches into the image's extent would be overwritten: refused, and
    // the disk is left as it was.
    sh(&format!(
        "sgdisk -d 6 -n 6:{}:+64M -t 6:4d21b016-b534-45c2-a9fb-5c16e091fd2d -c 6:pairos-state {}",
        (end + 1).next_multiple_of(2048),
        disk.display()
    ));
    let before = sha256(&disk);
    let r = install(img, &disk, &key, &[]);
    assert!(!r.ok && r.stderr.contains("kept partition pairos-state"), "{}", r.stderr);
    assert_eq!(sha256(&disk), before, "a refused pair disk is unchanged");
    Ok(())
}

#[test]
fn a_partner_preloads_the_node_configuration_and_a_bad_one_writes_nothing() -> Result<(), LabError> {
    let (out, work, key, _m) = setup("install-preload")?;
    let img = out.to_str().expect("utf8");
    let config = work.join("node.json");
    std::fs::write(
        &config,
        r#"{"pair_id": "pair-42", "node_name": "node-2", "peer_name": "node-1",
            "management": {"address": "192.168.77.11", "prefix": 24, "gateway": "192.168.77.1", "dns": null}}"#,
    )
    .expect("config");
    let bad = work.join("bad.json");
    std::fs::write(&bad, r#"{"pair_id": "pair-42", "node_name": "node-3", "peer_name": "node-1"}"#)
        .expect("bad");

    // A bad configuration is refused before anything is opened for writing.
    let disk = work.join("node.raw");
    let r = install(img, &disk, &key, &["--node-config", bad.to_str().expect("utf8")]);
    assert!(!r.ok && r.stderr.contains("node-1 and node-2"), "{}", r.stderr);
    assert!(!disk.exists(), "nothing was created");

    sized_file(&disk, 3 << 30);
    let r = install(img, &disk, &key, &["--node-config", config.to_str().expect("utf8")]);
    assert!(r.ok, "{}", r.stderr);
    assert!(r.stderr.contains("node configuration written: node-2 of pair pair-42"), "{}", r.stderr);
    assert!(sh(&format!("sgdisk -p {}", disk.display())).contains("pairos-state"));

    // What the first boot will find in the state partition (mounted by its offset).
    let start: u64 = sh(&format!("partx -g -o START -n 6 {}", disk.display())).trim().parse().expect("start");
    let mnt = work.join("state");
    std::fs::create_dir_all(&mnt).expect("mnt");
    let mounted = Command::new("mount")
        .args(["-o", &format!("ro,loop,offset={}", start * 512)])
        .arg(&disk)
        .arg(&mnt)
        .status();
    let node = std::fs::read_to_string(mnt.join("pairos/node.json")).unwrap_or_default();
    let mgmt = std::fs::read_to_string(mnt.join("pairos/management.json")).unwrap_or_default();
    let _ = Command::new("umount").arg(&mnt).status();
    assert!(mounted.map(|s| s.success()).unwrap_or(false), "the state partition mounts");
    assert!(node.contains("\"node_name\": \"node-2\"") && node.contains("pair-42"), "{node}");
    assert!(mgmt.contains("192.168.77.11"), "{mgmt}");
    Ok(())
}
