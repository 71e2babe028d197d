//! Stage results cached by the digest of their inputs.
//!
//! A stage's output is a folder `<root>/<stage>/<key>/`. It is built in a `.partial` folder and
//! renamed into place only when the stage succeeded, so a folder that exists is complete. A
//! lock file serialises builds that share a cache.

use std::fs::File;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct StageCache {
    root: PathBuf,
    _lock: File,
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError<E> {
    #[error("stage cache {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Stage(E),
}

impl StageCache {
    /// Opens (and locks) the cache at `root`. A second build on the same cache waits here.
    pub fn open(root: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(root)?;
        let lock = File::create(root.join(".lock"))?;
        lock.lock()?;
        Ok(StageCache { root: root.to_owned(), _lock: lock })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The output folder of `stage` for `key`: cached, or built now by `build` into the folder
    /// it is given. Returns the folder and whether it came from the cache.
    pub fn get_or_build<E>(
        &self,
        stage: &str,
        key: &str,
        build: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<(PathBuf, bool), CacheError<E>> {
        let done = self.root.join(stage).join(key);
        if done.is_dir() {
            return Ok((done, true));
        }
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| CacheError::Io { path, source }
        };
        let partial = self.root.join(stage).join(format!(".{key}.partial"));
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(io(&partial))?;
        }
        std::fs::create_dir_all(&partial).map_err(io(&partial))?;
        if let Err(e) = build(&partial) {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(CacheError::Stage(e));
        }
        std::fs::rename(&partial, &done).map_err(io(&done))?;
        Ok((done, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_runs_once_per_key_and_a_failure_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = StageCache::open(dir.path()).expect("open");
        let mut runs = 0;
        let mut build = |out: &Path| -> Result<(), String> {
            runs += 1;
            std::fs::write(out.join("f"), b"x").map_err(|e| e.to_string())
        };
        let (a, cached) = cache.get_or_build("s", "k1", &mut build).expect("build");
        assert!(!cached && a.join("f").is_file());
        let (_, cached) = cache.get_or_build("s", "k1", &mut build).expect("cached");
        assert!(cached);
        assert_eq!(runs, 1);

        let err = cache.get_or_build("s", "k2", |_| Err::<(), _>("boom".to_owned()));
        assert!(matches!(err, Err(CacheError::Stage(ref m)) if m == "boom"));
        let left: Vec<_> = std::fs::read_dir(dir.path().join("s")).expect("ls").collect();
        assert_eq!(left.len(), 1, "only k1 remains");
    }
}
