//! Stage 3, root filesystem: a read-only squashfs of the tree and its dm-verity hash tree.
//!
//! squashfs with zstd (level 6) was chosen by measurement (BENCHMARKS.md, ci/bench/rootfs): on
//! the default tree it is 1.6x smaller than erofs with lz4hc (Debian's kernel has no erofs
//! LZMA), reads 6x faster than squashfs with xz, and builds 20x faster than xz at 16% more size.

use std::path::{Path, PathBuf};

use pairos_host::Cmd;

use crate::digest::sha256_hex;
use crate::layout::parse_root_hash;
use crate::stages::StageError;

#[derive(Debug, Clone)]
pub struct RootImage {
    pub root: PathBuf,
    pub verity: PathBuf,
    pub root_hash: [u8; 32],
    pub root_hash_hex: String,
}

/// The mksquashfs arguments: shared with the benchmark, which times the tool alone.
pub fn mksquashfs_args(epoch: u64) -> Vec<String> {
    [
        "-noappend",
        "-comp",
        "zstd",
        "-Xcompression-level",
        "6",
        "-reproducible",
        "-mkfs-time",
        &epoch.to_string(),
        "-all-time",
        &epoch.to_string(),
        "-no-xattrs",
        "-quiet",
        "-no-progress",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Makes `out/root.img` and `out/verity.img` from `tree`; returns the root hash.
pub fn run(
    tree: &Path,
    epoch: u64,
    max_root: u64,
    max_verity: u64,
    out: &Path,
) -> Result<RootImage, StageError> {
    let root = out.join("root.img");
    let verity = out.join("verity.img");
    // The epoch goes in as options; mksquashfs refuses those when SOURCE_DATE_EPOCH is also set.
    Cmd::new("mksquashfs")
        .arg(tree)
        .arg(&root)
        .args(mksquashfs_args(epoch))
        .env_remove("SOURCE_DATE_EPOCH")
        .run()?;
    let root_size = std::fs::metadata(&root).map_err(StageError::io(&root))?.len();
    if root_size > max_root {
        return Err(StageError::TooBig {
            what: "the root filesystem".into(),
            size: root_size,
            room: max_root,
        });
    }

    // Salt and UUID are derived from the filesystem, so the hash tree is reproducible.
    let digest = crate::digest::sha256_file(&root).map_err(StageError::io(&root))?;
    let salt = sha256_hex(format!("pairos-verity-salt:{digest}").as_bytes());
    let uuid = crate::layout::derived_guid(digest.as_bytes(), "verity-uuid");
    let output = Cmd::new("veritysetup")
        .args(["format", "--hash=sha256", "--data-block-size=4096", "--hash-block-size=4096"])
        .arg(format!("--salt={salt}"))
        .arg(format!("--uuid={uuid}"))
        .arg(&root)
        .arg(&verity)
        .run_text()?;
    let hex =
        output.lines().find_map(|l| l.strip_prefix("Root hash:")).map(|h| h.trim().to_owned()).ok_or_else(
            || StageError::Parse { what: "veritysetup format's output".into(), text: output.clone() },
        )?;
    let root_hash = parse_root_hash(&hex)
        .ok_or_else(|| StageError::Parse { what: "the verity root hash".into(), text: hex.clone() })?;
    let verity_size = std::fs::metadata(&verity).map_err(StageError::io(&verity))?.len();
    if verity_size > max_verity {
        return Err(StageError::TooBig {
            what: "the verity hash tree".into(),
            size: verity_size,
            room: max_verity,
        });
    }
    let hash_file = out.join("roothash");
    std::fs::write(&hash_file, format!("{hex}\n")).map_err(StageError::io(&hash_file))?;
    Ok(RootImage { root, verity, root_hash, root_hash_hex: hex })
}

/// The stage's output, as `run` left it in `dir` (also when it comes from the cache).
pub fn load(dir: &Path) -> Result<RootImage, StageError> {
    let hash_file = dir.join("roothash");
    let text = std::fs::read_to_string(&hash_file).map_err(StageError::io(&hash_file))?;
    let root_hash = parse_root_hash(&text)
        .ok_or_else(|| StageError::Parse { what: hash_file.display().to_string(), text: text.clone() })?;
    Ok(RootImage {
        root: dir.join("root.img"),
        verity: dir.join("verity.img"),
        root_hash,
        root_hash_hex: text.trim().to_owned(),
    })
}
