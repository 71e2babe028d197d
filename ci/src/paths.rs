//! Where the lab keeps things, and where it finds the binaries under test.

use std::path::PathBuf;

use crate::LabError;

/// The cache shared by lab runs (kernels, images): `$PAIROS_CACHE`, else `~/.cache/pairos`.
/// Entries are keyed by their inputs (package versions, digests), so it is never stale.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PAIROS_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".cache/pairos")
}

/// The cache folder `name`, created if needed, and an exclusive lock on it: parallel tests
/// wait here while one of them fills it. The lock is held until the returned file drops.
pub fn locked_cache(name: &str) -> Result<(PathBuf, std::fs::File), LabError> {
    let dir = cache_dir().join(name);
    std::fs::create_dir_all(&dir).map_err(crate::error::io(&dir))?;
    let lock_path = dir.join(".lock");
    let lock = std::fs::File::create(&lock_path).map_err(crate::error::io(&lock_path))?;
    lock.lock().map_err(crate::error::io(&lock_path))?;
    Ok((dir, lock))
}

/// Where a test's work folders go: `$PAIROS_LAB_DIR`, else the cargo target folder's `lab/`.
pub fn work_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("PAIROS_LAB_DIR") {
        return PathBuf::from(dir);
    }
    target_dir().map_or_else(|| std::env::temp_dir().join("pairos-lab"), |t| t.join("lab"))
}

/// The cargo target folder, found from the running test binary (`target/<profile>/deps/x`).
fn target_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.ancestors().find(|p| p.file_name().is_some_and(|n| n == "target")).map(PathBuf::from)
}

/// The `pairos` binary under test: `$PAIROS_BIN`, else the one cargo built beside the tests.
pub fn pairos_bin() -> Result<PathBuf, LabError> {
    if let Some(bin) = std::env::var_os("PAIROS_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let exe = std::env::current_exe().map_err(crate::error::io("current test binary"))?;
    // target/<profile>/deps/test-binary → target/<profile>/pairos; a binary of this crate
    // (the `ci/lab` command) sits in target/<profile>/ itself.
    let candidate = exe.ancestors().skip(1).take(2).map(|p| p.join("pairos")).find(|p| p.is_file());
    match candidate {
        Some(bin) => Ok(bin),
        None => Err(LabError::Setup(
            "the pairos binary is not built; run `cargo build -p pairos-runtime` or set PAIROS_BIN".into(),
        )),
    }
}
