//! The peer side of self-imaging, on the host: a disk installed with `pairos install` (and
//! grown, as first boot grows it) serves its own image over the image service, and
//! `pairos install` from that service writes a disk byte-identical to the build's. The service
//! enrols a newcomer and then, only with its token, hands out the node configuration and
//! takes reports (the pair's real enrolment rules are the runtime's, unit-tested there and
//! proven in `lab_recover`). A node whose disk no longer matches
//! its manifest refuses to serve the damaged chunk; a disk without its manifest is not served.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use pairos_image::manifest::{parse_public_key_pem, Manifest};
use pairos_lab::{image, paths, LabError};
use pairos_recovery::image_service::{self, PeerHooks};
use pairos_recovery::own_image::OwnImage;
use pairos_recovery::peer::{Denied, EnrolAnswer, NewcomerConfig, NodeConfig, PeerClient, Report, Step};

#[derive(Default)]
struct Recorder {
    reports: Mutex<Vec<(SocketAddr, Report)>>,
}

const TOKEN: &str = "7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a";
const NEWCOMER: &str = "52:54:00:00:00:02";

impl Recorder {
    fn check(token: Option<&str>, mac: &str) -> Result<(), Denied> {
        match token {
            Some(TOKEN) if mac == NEWCOMER => Ok(()),
            Some(TOKEN) => Err(Denied::new(403, "another MAC")),
            _ => Err(Denied::new(401, "no enrolment token")),
        }
    }
}

impl PeerHooks for Recorder {
    fn enrol(&self, _from: SocketAddr, mac: &str) -> Result<EnrolAnswer, Denied> {
        match mac {
            NEWCOMER => Ok(EnrolAnswer::Enrolled {
                token: TOKEN.into(),
                expires_secs: 60,
                pair_id: "pair-under-test".into(),
            }),
            _ => Err(Denied::new(403, "the pair has both its nodes")),
        }
    }
    fn node_config(
        &self,
        _from: SocketAddr,
        token: Option<&str>,
        mac: &str,
    ) -> Result<NewcomerConfig, Denied> {
        Self::check(token, mac)?;
        let node = NodeConfig {
            pair_id: "pair-under-test".into(),
            node_name: "node-2".into(),
            peer_name: "node-1".into(),
        };
        Ok(NewcomerConfig {
            node,
            pair_key: "ab".repeat(32),
            pair: None,
            management: None,
            bmc_password: Some("bmc-secret".into()),
            witness_key: None,
        })
    }
    fn report(&self, from: SocketAddr, token: Option<&str>, report: Report) -> Result<(), Denied> {
        Self::check(token, &report.mac)?;
        self.reports.lock().expect("lock").push((from, report));
        Ok(())
    }
}

/// Serves `disk`'s own image on a loopback port; returns the port.
fn serve(disk: &Path, key_file: &Path, hooks: Arc<Recorder>) -> u16 {
    let key = parse_public_key_pem(&std::fs::read_to_string(key_file).expect("key")).expect("key");
    let own = OwnImage::open(disk, &key).expect("the installed disk serves its image");
    let size = own.verified().manifest.disk.layout.size;
    let router = image_service::router(Arc::new(own), size, hooks);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
        rt.expect("runtime")
            .block_on(image_service::serve(listener, router, Arc::new(AtomicBool::new(false))))
            .expect("serving");
    });
    port
}

fn pairos(args: &[&str]) -> (bool, String) {
    let out = Command::new(paths::pairos_bin().expect("pairos")).args(args).output().expect("pairos runs");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `pairos install --image IMAGE --disk DISK --key KEY`.
fn install(image: &str, disk: &Path, key: &Path) -> (bool, String) {
    let (disk, key) = (disk.to_str().expect("utf8"), key.to_str().expect("utf8"));
    pairos(&["install", "--image", image, "--disk", disk, "--key", key])
}

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sha256(path: &Path) -> String {
    pairos_image::digest::sha256_file(path).expect("hash")
}

fn installed_node(out: &Path, work: &Path, key: &Path, m: &Manifest) -> PathBuf {
    let disk = work.join("node.raw");
    std::fs::File::create(&disk).and_then(|f| f.set_len(3 << 30)).expect("disk file");
    let (ok, err) = install(out.to_str().expect("utf8"), &disk, key);
    assert!(ok, "{err}");
    // As first boot does: a state partition after the manifest's MiB, with something in it.
    let end = m.disk.layout.partitions.iter().map(|p| p.last_lba).max().expect("partitions");
    let first = (end + 1).next_multiple_of(2048) + 2048;
    sh(&format!(
        "sgdisk -n 6:{first}:+64M -t 6:4d21b016-b534-45c2-a9fb-5c16e091fd2d -c 6:pairos-state {}",
        disk.display()
    ));
    let f = std::fs::OpenOptions::new().write(true).open(&disk).expect("open");
    std::os::unix::fs::FileExt::write_all_at(&f, b"node state", first * 512).expect("state");
    disk
}

#[test]
fn an_installed_disk_serves_an_exact_image_its_configuration_and_takes_reports() -> Result<(), LabError> {
    let out = image::default_image()?;
    let work = paths::work_root().join("peer-image");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("work");
    let key = out.join("signing-key.pub");
    let m = Manifest::parse(&std::fs::read(out.join("manifest.json")).expect("manifest")).expect("parse");
    let node = installed_node(&out, &work, &key, &m);

    let hooks = Arc::new(Recorder::default());
    let port = serve(&node, &key, hooks.clone());
    let url = format!("http://127.0.0.1:{port}/image");

    // A newcomer's install from the node's own disk is the build's disk.raw, byte for byte.
    let copy = work.join("copy.raw");
    let (ok, err) = install(&url, &copy, &key);
    assert!(ok, "{err}");
    assert_eq!(sha256(&copy), sha256(&out.join("disk.raw")), "served image = built image");

    // The whole disk.raw in one GET (no range), as curl or bmaptool would fetch it.
    let whole = work.join("whole.raw");
    sh(&format!("curl -sf -o {} {url}/disk.raw", whole.display()));
    assert_eq!(sha256(&whole), sha256(&out.join("disk.raw")));
    let head = sh(&format!("curl -sfI -H 'Range: bytes=0-99' {url}/disk.raw"));
    assert!(head.contains("206") && head.to_lowercase().contains("content-range: bytes 0-99/"), "{head}");

    // Enrolment, then the configuration and reports with its token; without it, nothing.
    let client = PeerClient::new(Ipv4Addr::LOCALHOST, port);
    let token = match client.enrol(NEWCOMER).expect("answered").expect("enrolled") {
        EnrolAnswer::Enrolled { token, .. } => token,
        other => panic!("not enrolled: {other:?}"),
    };
    let refused = client.enrol("52:54:00:00:00:99").expect("answered").expect_err("a stranger");
    assert_eq!(refused.status, 403, "{refused:?}");
    let config = client.node_config(NEWCOMER, &token).expect("config");
    assert_eq!(config.node.node_name, "node-2");
    let wrong = client.node_config(NEWCOMER, &"0".repeat(64)).expect_err("a wrong token").to_string();
    assert!(wrong.contains("401"), "{wrong}");
    let other = client.node_config("52:54:00:00:00:99", &token).expect_err("another MAC").to_string();
    assert!(other.contains("403"), "{other}");
    let report = Report {
        mac: NEWCOMER.into(),
        step: Step::Writing,
        message: "half way".into(),
        written_bytes: 5,
        total_bytes: 10,
    };
    client.report(&report, &token).expect("report taken");
    assert_eq!(hooks.reports.lock().expect("lock").last().map(|(_, r)| r.clone()), Some(report));
    let curl = |args: &str| {
        sh(&format!("curl -s -o /dev/null -w '%{{http_code}}' {args} http://127.0.0.1:{port}/node/report"))
    };
    let fake = format!("-X POST -d '{{\"mac\":\"{NEWCOMER}\",\"step\":\"finished\",\"message\":\"x\"}}'");
    assert_eq!(curl(&fake), "401", "a finished report without the token");
    assert_eq!(hooks.reports.lock().expect("lock").len(), 1, "and it reached nobody");
    assert_eq!(curl("-X POST -d '{\"mac\":1}'"), "400");
    let big_file = work.join("big-report.json");
    std::fs::write(&big_file, "x".repeat(8192)).expect("write");
    let big = format!("-X POST -H 'Authorization: Bearer {TOKEN}' --data-binary @{}", big_file.display());
    assert_eq!(curl(&big), "413", "a report larger than the limit");

    // A node whose root A no longer matches the manifest does not serve that chunk: the
    // newcomer's write fails, and its disk never gets a partition table.
    let victim = m
        .disk
        .chunks
        .iter()
        .find(|c| !c.partition_table && c.offset >= m.disk.layout.partition("root-a").expect("a").offset())
        .expect("a root chunk");
    let f = std::fs::OpenOptions::new().write(true).open(&node).expect("open");
    std::os::unix::fs::FileExt::write_all_at(&f, b"bit rot", victim.offset + 4096).expect("damage");
    drop(f);
    let damaged = work.join("damaged.raw");
    let (ok, err) = install(&url, &damaged, &key);
    assert!(!ok, "a damaged source must not install");
    assert!(err.contains(&format!("at byte {}", victim.offset)), "{err}");
    let table = Command::new("sgdisk").arg("-p").arg(&damaged).output().expect("sgdisk");
    assert!(!String::from_utf8_lossy(&table.stdout).contains("root-a"), "no table was written");

    // Without its manifest record the disk is not served, and says why.
    let record_at = pairos_image::manifest_record::offset(&m.disk.layout);
    let f = std::fs::OpenOptions::new().write(true).open(&node).expect("open");
    std::os::unix::fs::FileExt::write_all_at(&f, &[0u8; 4096], record_at).expect("erase");
    drop(f);
    let pem = std::fs::read_to_string(&key).expect("key");
    let err = OwnImage::open(&node, &parse_public_key_pem(&pem).expect("key")).expect_err("no record");
    assert!(err.to_string().contains("PAIROSM1"), "{err}");
    Ok(())
}
