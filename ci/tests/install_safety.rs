//! The writer's safety rules against a user's mistakes and a hostile image source, on the
//! host with disk image files: a resume record honoured only on the disk it was started on,
//! bad arguments refused before anything is opened, and no downgrade without asking.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pairos_lab::{image, paths, LabError};

fn pairos(args: &[&str]) -> Output {
    Command::new(paths::pairos_bin().expect("pairos binary")).args(args).output().expect("pairos runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn sha256(path: &Path) -> String {
    pairos_image::digest::sha256_file(path).expect("hash")
}

fn sh(cmd: &str) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
}

fn setup(name: &str) -> Result<(PathBuf, PathBuf, String), LabError> {
    let out = image::default_image()?;
    let work = paths::work_root().join(name);
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("work dir");
    let key = out.join("signing-key.pub").to_str().expect("utf8").to_owned();
    Ok((out, work, key))
}

/// Starts a paced install of `image` to `disk` and kills it once its record holds chunks.
fn killed_install(image: &Path, disk: &Path, journal: &Path, key: &str) {
    let mut child = Command::new(paths::pairos_bin().expect("pairos binary"))
        .args(["install", "--max-rate", "10", "--key", key, "--image"])
        .arg(image)
        .arg("--disk")
        .arg(disk)
        .arg("--journal")
        .arg(journal)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    // The record's header and at least two batches of chunks.
    while std::fs::read_to_string(journal).unwrap_or_default().lines().count() < 20 {
        assert!(child.try_wait().expect("wait").is_none(), "the paced write ended before it was killed");
        assert!(start.elapsed() < Duration::from_secs(60), "no chunks were recorded");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("kill");
    let _ = child.wait();
}

#[test]
fn a_resume_record_is_honoured_only_on_the_disk_it_was_started_on() -> Result<(), LabError> {
    let (out, work, key) = setup("safety-resume")?;
    let (disk, journal) = (work.join("a.raw"), work.join("write.record"));
    killed_install(&out, &disk, &journal, &key);
    let size = std::fs::metadata(&disk).expect("meta").len();

    // Another disk of the same size, with a customer's file system on it, under the same record.
    let other = work.join("b.raw");
    std::fs::File::create(&other).expect("create").set_len(size).expect("size");
    sh(&format!("mkfs.ext4 -q -F -L customer {}", other.display()));
    let before = sha256(&other);
    let j = journal.to_str().expect("utf8");
    let o = pairos(&[
        "install",
        "--key",
        &key,
        "--journal",
        j,
        "--image",
        out.to_str().expect("utf8"),
        "--disk",
        other.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("holds foreign data; refusing to wipe it"), "{}", text(&o));
    assert!(text(&o).contains("LABEL=customer"), "{}", text(&o));
    assert_eq!(sha256(&other), before, "the other disk is untouched");

    // The twin: on its own disk the same record resumes, and the result is exact.
    let o = pairos(&[
        "install",
        "--key",
        &key,
        "--journal",
        j,
        "--json",
        "--image",
        out.to_str().expect("utf8"),
        "--disk",
        disk.to_str().expect("utf8"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("resuming:"), "{}", text(&o));
    assert_eq!(sha256(&disk), sha256(&out.join("disk.raw")));
    Ok(())
}

#[test]
fn bad_arguments_are_refused_before_anything_is_opened() -> Result<(), LabError> {
    let (out, work, key) = setup("safety-arguments")?;
    let disk = work.join("disk.raw");
    let img = out.to_str().expect("utf8");
    let d = disk.to_str().expect("utf8");
    for (flag, value, says) in [
        ("--max-rate", "0", "0 is not in 1..=1048576"),
        ("--max-rate", "-1", "unexpected argument '-1'"),
        ("--max-rate", "99999999999999999999", "number too large"),
        ("--max-rate", "fast", "invalid digit"),
        ("--parallel", "0", "0 is not in 1..=64"),
        ("--parallel", "1000", "1000 is not in 1..=64"),
    ] {
        let o = pairos(&["install", "--key", &key, "--image", img, "--disk", d, flag, value]);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}: {}", text(&o));
        assert!(text(&o).contains(says), "{flag} {value}: {}", text(&o));
        assert!(!disk.exists(), "{flag} {value} created the disk");
    }
    // The twin: a sane rate writes.
    let o = pairos(&["install", "--key", &key, "--image", img, "--disk", d, "--max-rate", "100000"]);
    assert!(o.status.success(), "{}", text(&o));
    Ok(())
}

#[test]
fn an_older_image_is_not_written_over_a_newer_one_unless_asked() -> Result<(), LabError> {
    let (out, work, key) = setup("safety-downgrade")?;
    // A newer release of the same disk: its manifest says 99.0, signed with the lab's key.
    let newer = work.join("newer");
    std::fs::create_dir_all(&newer).expect("mkdir");
    std::fs::hard_link(out.join("disk.raw"), newer.join("disk.raw")).expect("link");
    let manifest = std::fs::read_to_string(out.join("manifest.json")).expect("manifest");
    let current: serde_json::Value = serde_json::from_str(&manifest).expect("json");
    let version = current["version"].as_str().expect("version").to_owned();
    let bumped = manifest.replacen(&format!("\"version\": \"{version}\""), "\"version\": \"99.0\"", 1);
    assert_ne!(bumped, manifest, "the version was replaced");
    std::fs::write(newer.join("manifest.json"), bumped).expect("write");
    sh(&format!(
        "openssl pkeyutl -sign -rawin -inkey {} -in {}/manifest.json -out {}/manifest.sig",
        image::test_signing_key().display(),
        newer.display(),
        newer.display()
    ));

    let disk = work.join("node.raw");
    let d = disk.to_str().expect("utf8");
    let o = pairos(&["install", "--key", &key, "--image", newer.to_str().expect("utf8"), "--disk", d]);
    assert!(o.status.success(), "{}", text(&o));
    let before = sha256(&disk);
    let o = pairos(&["install", "--key", &key, "--image", out.to_str().expect("utf8"), "--disk", d]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o)
            .contains(&format!("holds pairos 99.0, newer than the image's {version}; refusing to downgrade")),
        "{}",
        text(&o)
    );
    assert_eq!(sha256(&disk), before, "the newer disk is unchanged");

    // Asked for, the downgrade is written; the same version again needs no asking.
    let o = pairos(&[
        "install",
        "--key",
        &key,
        "--image",
        out.to_str().expect("utf8"),
        "--disk",
        d,
        "--allow-downgrade",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = pairos(&["install", "--key", &key, "--image", out.to_str().expect("utf8"), "--disk", d]);
    assert!(o.status.success(), "{}", text(&o));
    Ok(())
}

#[test]
fn a_disk_of_another_pair_is_foreign_and_that_pair_is_named() -> Result<(), LabError> {
    let (out, work, key) = setup("safety-other-pair")?;
    let img = out.to_str().expect("utf8");
    // A node of pair-42, as a partner preloads it: its state partition holds its identity.
    let config = work.join("node.json");
    std::fs::write(&config, r#"{"pair_id": "pair-42", "node_name": "node-2", "peer_name": "node-1"}"#)
        .expect("config");
    let disk = work.join("node.raw");
    std::fs::File::create(&disk).expect("create").set_len(3 << 30).expect("size");
    let d = disk.to_str().expect("utf8");
    let o = pairos(&[
        "install",
        "--key",
        &key,
        "--image",
        img,
        "--disk",
        d,
        "--node-config",
        config.to_str().expect("utf8"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let before = sha256(&disk);

    // For no pair, or for another one, it is foreign: refused, named, unchanged.
    for extra in [&[][..], &["--pair", "pair-7"][..]] {
        let o = pairos(&[&["install", "--key", &key, "--image", img, "--disk", d][..], extra].concat());
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", text(&o));
        assert!(text(&o).contains("holds foreign data"), "{extra:?}: {}", text(&o));
        assert!(text(&o).contains("a pairos disk of another pair: node-2 of pair pair-42"), "{}", text(&o));
        assert_eq!(sha256(&disk), before, "{extra:?}: the other pair's disk is unchanged");
    }
    // The twin: for its own pair, it is a disk of this pair, and its state is kept.
    let o = pairos(&["install", "--key", &key, "--image", img, "--disk", d, "--pair", "pair-42"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("\"class\":\"pair\""), "{}", text(&o));
    assert!(text(&o).contains("pairos-state"), "the state partition is kept: {}", text(&o));
    Ok(())
}
