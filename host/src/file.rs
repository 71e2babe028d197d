//! Files that must never be half-written: node state, the pair's configuration.

use std::path::{Path, PathBuf};

/// A file that could not be written whole, with the path and the step that failed.
#[derive(Debug, thiserror::Error)]
#[error("{step} {}: {source}", path.display())]
pub struct FileError {
    pub step: &'static str,
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Writes `bytes` to `path` through a temporary file and a rename, so that a crash leaves the
/// old file or the new one, never half of one; the file and its folder are flushed before this
/// returns. State files are the node's own: mode 0600.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    use std::os::unix::fs::OpenOptionsExt;
    fn err<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> FileError + 'a {
        move |source| FileError { step, path: path.to_owned(), source }
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err("making", dir))?;
    let tmp = path.with_extension("tmp");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err("writing", &tmp))?;
    std::io::Write::write_all(&mut &f, bytes).map_err(err("writing", &tmp))?;
    f.sync_all().map_err(err("flushing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(err("renaming into place", path))?;
    // The rename is durable only once the folder is flushed too.
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(err("flushing", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_replaced_whole_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pairos-host-file-{}", std::process::id()));
        let path = dir.join("sub/state.json");
        write_atomically(&path, b"one").expect("written");
        write_atomically(&path, b"two").expect("written again");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        let mode = std::fs::metadata(&path).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!path.with_extension("tmp").exists());
        let e = write_atomically(Path::new("/proc/no/such/file"), b"x").expect_err("refused");
        assert!(e.to_string().contains("/proc/no/such"), "{e}");
        std::fs::remove_dir_all(&dir).expect("cleaned up");
    }
}
