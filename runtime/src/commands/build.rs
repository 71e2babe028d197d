//! `pairos build`: wires the spec, the boards and the options into the image pipeline.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use pairos_boards::profiles;
use pairos_image::spec::Spec;
use pairos_image::stages::{self, BuildOptions, Event};

use crate::cli::BuildArgs;
use crate::{output, Exit};

/// 2026-01-01T00:00:00Z: the build time recorded in images when SOURCE_DATE_EPOCH is not set,
/// so that a build is reproducible by default.
const DEFAULT_EPOCH: u64 = 1_767_225_600;

pub fn run(args: &BuildArgs) -> anyhow::Result<Exit> {
    let spec = match &args.spec {
        Some(path) => Spec::load(path)?,
        None => Spec::default_spec().context("the embedded default spec")?,
    };
    let all = profiles::builtin().context("the built-in board profiles")?;
    let boards = if spec.boards.is_empty() {
        all
    } else {
        let mut chosen = Vec::new();
        for name in &spec.boards {
            chosen.push(
                profiles::find(&all, name).map_err(|e| anyhow::anyhow!("spec field `boards`: {e}"))?.clone(),
            );
        }
        chosen
    };
    let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={v:?}: expected seconds since 1970"))?,
        Err(_) => DEFAULT_EPOCH,
    };
    let cache = match &args.cache {
        Some(c) => c.clone(),
        None => {
            let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
            home.join(".cache/pairos/build")
        }
    };
    let opts = BuildOptions {
        spec,
        boards,
        out: std::path::absolute(&args.out).with_context(|| format!("--out {}", args.out.display()))?,
        cache,
        signing_key: args.signing_key.clone(),
        lab: args.lab,
        pairos_bin: std::env::current_exe().context("finding the running pairos binary")?,
        source_date_epoch: epoch,
    };

    let mut stderr = std::io::stderr();
    let mut show = |event: Event| {
        let _ = match event {
            Event::Stage { index, total, name } => write!(stderr, "[{index:2}/{total}] {name:12} "),
            Event::StageDone { seconds, cached: true, .. } => writeln!(stderr, "cached ({seconds:.1} s)"),
            Event::StageDone { seconds, cached: false, .. } => writeln!(stderr, "done in {seconds:.1} s"),
            Event::Warning { message } => writeln!(stderr, "\nWARNING: {message}\n"),
        };
    };
    let summary = stages::build(&opts, &mut show).map_err(|e| {
        eprintln!();
        anyhow::Error::new(e).context("pairos build failed; the output folder was left as it was")
    })?;
    if args.json {
        output::json(&summary)?;
    } else {
        println!(
            "pairos {} built in {:.1} s into {}",
            summary.version,
            summary.seconds,
            summary.out.display()
        );
        println!("  kernel {}, root hash {}", summary.kernel, summary.root_hash);
        for a in &summary.artifacts {
            println!("  {:9.1} MiB  {}", a.size as f64 / f64::from(1u32 << 20), a.path);
        }
        if summary.ephemeral_key {
            println!("  signed with a throw-away development key (see signing-key.pub)");
        }
    }
    Ok(Exit::Success)
}
