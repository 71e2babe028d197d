//! The default pairos image, built by the `pairos` binary under test, for lab scenarios.
//!
//! Every test that needs it calls [`default_image`]; a lock makes parallel tests wait for one
//! build, and `pairos build`'s stage cache (keyed by input digests) makes a rebuild with nothing
//! changed take seconds. Lab images are signed with the test key in `ci/keys/`.

use std::path::{Path, PathBuf};

use pairos_host::Cmd;

use crate::{paths, LabError};

/// The test-only signing key (public, never for releases).
pub fn test_signing_key() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("keys/test-signing-key.pem")
}

/// Builds (or rebuilds from cache) the default image into the lab cache; returns its folder.
pub fn default_image() -> Result<PathBuf, LabError> {
    let (root, lock) = paths::locked_cache("lab-image")?;
    let out = root.join("default");
    Cmd::new(paths::pairos_bin()?)
        .arg("build")
        .arg("--out")
        .arg(&out)
        .arg("--lab")
        .arg("--signing-key")
        .arg(test_signing_key())
        .arg("--cache")
        .arg(paths::cache_dir().join("build"))
        .run()?;
    drop(lock);
    Ok(out)
}

/// A raw disk of `size` bytes with the image `out` written by `pairos install` and, preloaded
/// as a hardware partner would, the node configuration `json` (`--node-config`).
pub fn preloaded_disk(out: &Path, disk: &Path, size: u64, json: &str) -> Result<(), LabError> {
    crate::blank_disk(disk, size)?;
    let config = disk.with_extension("json");
    std::fs::write(&config, json).map_err(crate::error::io(&config))?;
    Cmd::new(paths::pairos_bin()?)
        .args(["install", "--image"])
        .arg(out)
        .arg("--disk")
        .arg(disk)
        .arg("--key")
        .arg(out.join("signing-key.pub"))
        .arg("--node-config")
        .arg(&config)
        .run()?;
    Ok(())
}
