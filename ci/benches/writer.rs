//! Writer throughput: `pairos install` against `bmaptool copy` of the same image and bmap, both
//! from the same HTTP server on loopback (busybox httpd, which serves ranges), and against the
//! disk's raw write rate (dd of zeros with fsync). One more row: `pairos install` from a peer's
//! image service (a disk installed by the first run, serving its own image, every chunk
//! checked on the way out). The image is made here: 2 GiB with 512 MiB of random data mapped,
//! signed with the lab's test key. Prints Markdown rows.
//!
//! Usage: `cargo bench -p pairos-lab --bench writer -- [RUNS]` (default 3), after
//! `cargo build --release -p pairos-runtime` (PAIROS_BIN points at it).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use pairos_image::layout::{DiskLayout, PartitionEntry, TYPE_ROOT_X86_64};
use pairos_image::manifest::{self, map_disk, Manifest, FORMAT};
use pairos_lab::paths;
use pairos_lab::stats::median;

const MIB: u64 = 1 << 20;
const SIZE: u64 = 2048 * MIB;
const MAPPED: u64 = 512 * MIB;

fn run(cmd: &mut Command) -> f64 {
    let start = Instant::now();
    let status = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().expect("runs");
    assert!(status.success(), "{cmd:?} failed");
    start.elapsed().as_secs_f64()
}

fn make_image(dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let disk = dir.join("disk.raw");
    let layout = DiskLayout {
        guid: uuid::Uuid::from_u128(1),
        size: SIZE,
        // One root partition; the last MiB stays free for the manifest record, as in an image.
        partitions: vec![PartitionEntry {
            number: 1,
            name: "root-a".into(),
            type_guid: TYPE_ROOT_X86_64,
            guid: uuid::Uuid::from_u128(2),
            first_lba: 2048,
            last_lba: (SIZE - MIB) / 512 - 1,
        }],
    };
    std::fs::File::create(&disk).expect("create").set_len(SIZE).expect("size");
    let status = Command::new("dd")
        .args([
            "if=/dev/urandom",
            "bs=4M",
            "count=128",
            "seek=1M",
            "oflag=seek_bytes",
            "conv=notrunc",
            "status=none",
        ])
        .arg(format!("of={}", disk.display()))
        .status()
        .expect("dd");
    assert!(status.success());
    let f = std::fs::OpenOptions::new().read(true).write(true).open(&disk).expect("open");
    let f = pairos_image::partition_table::write_gpt(&disk, f, &layout).expect("gpt");
    f.sync_all().expect("sync");
    let map = map_disk(&disk, &layout, &[("root-a", MAPPED)]).expect("map");
    std::fs::write(dir.join("disk.bmap"), pairos_image::bmap::bmap(&disk, &map).expect("bmap"))
        .expect("bmap");
    let m = Manifest {
        format: FORMAT,
        version: "writer-bench".into(),
        boards: Vec::new(),
        kernel: String::new(),
        root_hash: String::new(),
        source_date_epoch: 0,
        artifacts: Vec::new(),
        disk: map,
    };
    let key_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("keys/test-signing-key.pem");
    let key = manifest::load_signing_key(&key_path).expect("key");
    let bytes = m.to_bytes();
    std::fs::write(dir.join("manifest.json"), &bytes).expect("manifest");
    std::fs::write(dir.join("manifest.sig"), manifest::sign(&bytes, &key)).expect("sig");
    std::fs::write(dir.join("signing-key.pub"), manifest::public_key_pem(&key.verifying_key())).expect("pub");
}

fn main() {
    let runs: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(3);
    let work = paths::work_root().join("bench-writer");
    let _ = std::fs::remove_dir_all(&work);
    let image = work.join("image");
    make_image(&image);
    let port = 18_000 + std::process::id() % 1000;
    let mut httpd = Command::new("busybox")
        .args(["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h"])
        .arg(&image)
        .spawn()
        .expect("busybox httpd");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let url = format!("http://127.0.0.1:{port}");
    let pairos = paths::pairos_bin().expect("pairos");
    let target = work.join("target.raw");
    let (mut ours, mut bmap, mut dd, mut peer) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let key_file = image.join("signing-key.pub");
    let key = manifest::parse_public_key_pem(&std::fs::read_to_string(&key_file).expect("key")).expect("key");
    let peer_disk = work.join("peer.raw");
    let peer_url = serve_own_image(&pairos, &url, &key_file, &peer_disk, &key);
    for run_no in 0..runs {
        let _ = std::fs::remove_file(&target);
        ours.push(run(Command::new(&pairos)
            .args(["install", "--image", &url, "--disk"])
            .arg(&target)
            .arg("--key")
            .arg(image.join("signing-key.pub"))));
        let _ = std::fs::remove_file(&target);
        bmap.push(run(Command::new("bmaptool")
            .args(["copy", "--bmap"])
            .arg(image.join("disk.bmap"))
            .arg(format!("{url}/disk.raw"))
            .arg(&target)));
        let _ = std::fs::remove_file(&target);
        peer.push(run(Command::new(&pairos)
            .args(["install", "--image", &peer_url, "--disk"])
            .arg(&target)
            .arg("--key")
            .arg(&key_file)));
        let _ = std::fs::remove_file(&target);
        dd.push(run(Command::new("dd")
            .args(["if=/dev/zero", "bs=4M", "count=128", "conv=fsync", "status=none"])
            .arg(format!("of={}", target.display()))));
        eprintln!(
            "run {run_no}: pairos {:.2} s, bmaptool {:.2} s, from the peer {:.2} s, dd {:.2} s",
            ours[run_no], bmap[run_no], peer[run_no], dd[run_no]
        );
    }
    let _ = httpd.kill();
    let _ = httpd.wait();
    let (o, b, p, d) = (median(ours), median(bmap), median(peer), median(dd));
    let rate = |s: f64| MAPPED as f64 / MIB as f64 / s;
    println!("| tool | median s | MiB/s of mapped data | ratio to bmaptool |");
    println!("|---|---|---|---|");
    println!(
        "| pairos install (sha256 per chunk, resume record, fsync) | {o:.2} | {:.0} | {:.2}x |",
        rate(o),
        o / b
    );
    println!("| bmaptool copy (sha256 per range) | {b:.2} | {:.0} | 1.00x |", rate(b));
    println!(
        "| pairos install from a peer's image service (chunks checked by both ends) | {p:.2} | {:.0} | {:.2}x |",
        rate(p),
        p / b
    );
    println!(
        "| dd 512 MiB of zeros, conv=fsync (the disk's raw rate) | {d:.2} | {:.0} | {:.2}x |",
        rate(d),
        d / b
    );
}

/// Installs the image onto `disk` (as a node's disk), serves that disk's own image on a
/// loopback port from this process, and returns the service's image URL.
fn serve_own_image(
    pairos: &Path,
    url: &str,
    key_file: &Path,
    disk: &Path,
    key: &ed25519_dalek::VerifyingKey,
) -> String {
    let _ = std::fs::remove_file(disk);
    run(Command::new(pairos)
        .args(["install", "--image", url, "--disk"])
        .arg(disk)
        .arg("--key")
        .arg(key_file));
    let own = pairos_recovery::own_image::OwnImage::open(disk, key).expect("the disk serves its image");
    let size = own.verified().manifest.disk.layout.size;
    use pairos_recovery::peer::{Denied, EnrolAnswer, NewcomerConfig, Report};
    use std::net::SocketAddr;
    /// Only the image is benchmarked: nobody enrols.
    struct NoPeers;
    impl pairos_recovery::image_service::PeerHooks for NoPeers {
        fn enrol(&self, _: SocketAddr, _: &str) -> Result<EnrolAnswer, Denied> {
            Err(Denied::new(403, "nobody enrols in a benchmark"))
        }
        fn node_config(&self, _: SocketAddr, _: Option<&str>, _: &str) -> Result<NewcomerConfig, Denied> {
            Err(Denied::new(401, "nobody enrols in a benchmark"))
        }
        fn report(&self, _: SocketAddr, _: Option<&str>, _: Report) -> Result<(), Denied> {
            Err(Denied::new(401, "nobody enrols in a benchmark"))
        }
    }
    let router =
        pairos_recovery::image_service::router(std::sync::Arc::new(own), size, std::sync::Arc::new(NoPeers));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let rt =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        rt.block_on(pairos_recovery::image_service::serve(listener, router, stop)).expect("serve");
    });
    format!("http://127.0.0.1:{port}/image")
}
