//! The peer side of self-imaging, on the host: a disk installed with `pairos install` (and
//! grown, as first boot grows it) serves its own image over the image service, and
//! `pairos install` from that service writes a disk byte-identical to the build's. The service
//! hands out the node configuration and takes reports. A node whose disk no longer matches
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
use pairos_recovery::peer::{NodeConfig, PeerClient, Report, Step};

#[derive(Default)]
struct Recorder {
    reports: Mutex<Vec<(SocketAddr, Report)>>,
}

impl PeerHooks for Recorder {
    fn node_config(&self, mac: &str) -> Option<NodeConfig> {
        (mac == "52:54:00:00:00:02").then(|| NodeConfig {
            pair_id: "pair-under-test".into(),
            node_name: "node-2".into(),
            peer_name: "node-1".into(),
        })
    }
    fn report(&self, from: SocketAddr, report: Report) {
        self.reports.lock().expect("lock").push((from, report));
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

    // The configuration, for a node the pair expects and for one it does not; a report.
    let client = PeerClient::new(Ipv4Addr::LOCALHOST, port);
    let config = client.node_config("52:54:00:00:00:02").expect("config");
    assert_eq!(config.node_name, "node-2");
    let unknown = client.node_config("52:54:00:00:00:99").expect_err("unknown node").to_string();
    assert!(unknown.contains("404") && unknown.contains("no configuration"), "{unknown}");
    let report = Report {
        mac: "52:54:00:00:00:02".into(),
        step: Step::Writing,
        message: "half way".into(),
        written_bytes: 5,
        total_bytes: 10,
    };
    client.report(&report).expect("report taken");
    assert_eq!(hooks.reports.lock().expect("lock").last().map(|(_, r)| r.clone()), Some(report));
    let bad = sh(&format!(
        "curl -s -o /dev/null -w '%{{http_code}}' -X POST -d '{{\"mac\":1}}' http://127.0.0.1:{port}/node/report"
    ));
    assert_eq!(bad, "400");

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
