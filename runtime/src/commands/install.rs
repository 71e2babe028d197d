//! `pairos install`: the signed image onto a disk, through the recovery crate's writer.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use pairos_recovery::source::{self, verified_manifest};
use pairos_recovery::target::Target;
use pairos_recovery::writer::{write_image, Event, WriteOptions};

use crate::boot::state;
use crate::cli::InstallArgs;
use crate::pair::identity::Preload;
use crate::Exit;
use pairos_host::Cmd;

fn journal_path(args: &InstallArgs) -> PathBuf {
    if let Some(j) = &args.journal {
        return j.clone();
    }
    let name = args.disk.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if args.disk.starts_with("/dev") {
        PathBuf::from("/run/pairos").join(format!("{name}.pairos-write"))
    } else {
        args.disk.with_file_name(format!("{name}.pairos-write"))
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

pub fn run(args: &InstallArgs) -> anyhow::Result<Exit> {
    let key = crate::signing_key::public_key(args.key.as_deref())?;
    let preload = args.node_config.as_deref().map(Preload::load).transpose()?;
    let src = source::open(&args.image);
    let image =
        verified_manifest(src.as_ref(), &key).with_context(|| format!("the image at {}", src.describe()))?;
    let manifest = &image.manifest;
    eprintln!("pairos install: image {} (signature good) from {}", manifest.version, src.describe());
    let target = Target::open(&args.disk, Some(manifest.disk.layout.size))?;
    let journal = journal_path(args);
    if let Some(dir) = journal.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("making {}", dir.display()))?;
    }
    let opts = WriteOptions {
        parallel: args.parallel as usize,
        journal,
        allow_foreign: args.allow_foreign,
        pair: args.pair.clone().or_else(|| preload.as_ref().map(|p| p.pair_id.clone())),
        max_rate: args.max_rate.map(|m| m << 20),
        allow_downgrade: args.allow_downgrade,
    };
    let terminal = std::io::stderr().is_terminal();
    let mut shown = Instant::now() - Duration::from_secs(1);
    let mut on_event = |e: Event| {
        if args.json {
            if let Ok(line) = serde_json::to_string(&e) {
                println!("{line}");
            }
        }
        match &e {
            Event::Progress { written_bytes, total_bytes, bytes_per_second, seconds_left } => {
                let every = if terminal { Duration::from_millis(200) } else { Duration::from_secs(5) };
                if shown.elapsed() >= every || written_bytes == total_bytes {
                    shown = Instant::now();
                    let line = format!(
                        "pairos install: {:.0} of {:.0} MiB, {:.1} MiB/s, {seconds_left} s left",
                        mib(*written_bytes),
                        mib(*total_bytes),
                        mib(*bytes_per_second)
                    );
                    if terminal {
                        eprint!("\r{line}\x1b[K");
                    } else {
                        eprintln!("{line}");
                    }
                }
            }
            Event::Classified { disk, class } => {
                eprintln!("pairos install: {disk}: {}", serde_json::to_string(class).unwrap_or_default())
            }
            Event::Started { already_written_bytes, total_bytes, .. } if *already_written_bytes > 0 => {
                eprintln!(
                    "pairos install: resuming: {:.0} of {:.0} MiB already written and verified",
                    mib(*already_written_bytes),
                    mib(*total_bytes)
                )
            }
            Event::Retry { chunk, offset, reason } => {
                eprintln!("\npairos install: chunk {chunk} at byte {offset}: {reason}; fetching it again")
            }
            Event::Finished { written_bytes, seconds, .. } => {
                if terminal {
                    eprintln!();
                }
                eprintln!("pairos install: done: {:.0} MiB written in {seconds:.1} s", mib(*written_bytes));
            }
            _ => {}
        }
    };
    write_image(src.as_ref(), &image, target, &opts, &mut on_event)?;
    if let Some(p) = preload {
        preload_state(&args.disk, &p)?;
        eprintln!("pairos install: node configuration written: {} of pair {}", p.node_name, p.pair_id);
    }
    Ok(Exit::Success)
}

/// Makes the state partition and writes the preloaded configuration into it. On a disk image
/// file, the new partition alone is attached to a loop device (by offset) to be formatted and
/// filled, and detached after.
fn preload_state(disk: &Path, p: &Preload) -> anyhow::Result<()> {
    let meta = std::fs::metadata(disk).with_context(|| format!("reading {}", disk.display()))?;
    if std::os::unix::fs::FileTypeExt::is_block_device(&meta.file_type()) {
        return state::seed(disk, &p.files());
    }
    let entry = state::add_partition(disk, meta.len())?;
    let out = Cmd::new("losetup")
        .args(["--find", "--show", "--offset", &entry.offset().to_string()])
        .args(["--sizelimit", &entry.size().to_string()])
        .arg(disk)
        .run()?;
    let dev = PathBuf::from(String::from_utf8_lossy(&out).trim());
    let filled = state::format(&dev).and_then(|()| state::populate(&dev, &p.files()));
    let detached = Cmd::new("losetup").arg("--detach").arg(&dev).run();
    filled?;
    detached?;
    Ok(())
}
