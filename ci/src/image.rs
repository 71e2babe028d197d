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
///
/// Tests run side by side, and one may read the folder while another calls this. So the build
/// goes to a folder of its own, which then takes the old one's place in one step (an exchange
/// of the two names): a reader sees the old files or the new ones, never a folder being
/// written. Within a run they are the same bytes (the build is reproducible).
pub fn default_image() -> Result<PathBuf, LabError> {
    cached_image(None, "default")
}

/// The lab's PostgreSQL image (`ci/specs/postgres.toml`), built as [`default_image`] is.
pub fn postgres_image() -> Result<PathBuf, LabError> {
    cached_image(Some(&Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/postgres.toml")), "postgres")
}

/// Builds the image of `spec` into the lab cache's folder `name` (see [`default_image`]).
fn cached_image(spec: Option<&Path>, name: &str) -> Result<PathBuf, LabError> {
    let (root, lock) = paths::locked_cache("lab-image")?;
    let out = root.join(name);
    let fresh = root.join(format!("{name}.new"));
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh).map_err(crate::error::io(&fresh))?;
    }
    build_image(spec, &fresh)?;
    if out.exists() {
        use nix::fcntl::{renameat2, RenameFlags};
        renameat2(None, &fresh, None, &out, RenameFlags::RENAME_EXCHANGE)
            .map_err(|e| crate::error::io(&out)(std::io::Error::from(e)))?;
        // `fresh` now names the old output.
        std::fs::remove_dir_all(&fresh).map_err(crate::error::io(&fresh))?;
    } else {
        std::fs::rename(&fresh, &out).map_err(crate::error::io(&out))?;
    }
    drop(lock);
    Ok(out)
}

/// Builds the image from `spec` (the default spec when None) into `out`, signed with the test
/// key; the stage cache makes a rebuild of the same inputs take seconds.
pub fn build_image(spec: Option<&Path>, out: &Path) -> Result<PathBuf, LabError> {
    let mut cmd = Cmd::new(paths::pairos_bin()?)
        .arg("build")
        .arg("--out")
        .arg(out)
        .arg("--lab")
        .arg("--signing-key")
        .arg(test_signing_key())
        .arg("--cache")
        .arg(paths::cache_dir().join("build"));
    if let Some(spec) = spec {
        cmd = cmd.arg("--spec").arg(spec);
    }
    cmd.run()?;
    Ok(out.to_owned())
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
