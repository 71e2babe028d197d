//! A deterministic initramfs: a gzip-compressed cpio (newc) archive.
//!
//! Entries are kept sorted by path; inode numbers count up in that order; owner is root; every
//! mtime is the one given (SOURCE_DATE_EPOCH in builds); the gzip header carries no time. The
//! same entries therefore always give the same bytes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use pairos_host::Cmd;

#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("finding the libraries of {}: {message}", path.display())]
    Libraries { path: PathBuf, message: String },
    #[error("initramfs entry {path:?}: {what}")]
    Entry { path: String, what: String },
}

#[derive(Debug, Clone)]
enum Entry {
    Dir { mode: u32 },
    File { data: Vec<u8>, mode: u32 },
    Symlink { target: String },
}

#[derive(Debug, Default, Clone)]
pub struct Initramfs {
    entries: BTreeMap<String, Entry>,
}

fn clean(path: &str) -> String {
    path.trim_start_matches('/').trim_end_matches('/').to_owned()
}

impl Initramfs {
    pub fn new() -> Self {
        Self::default()
    }

    fn parents(&mut self, path: &str) {
        let mut acc = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(part);
            self.entries.entry(acc.clone()).or_insert(Entry::Dir { mode: 0o755 });
        }
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        let path = clean(path);
        self.parents(&path);
        self.entries.insert(path, Entry::Dir { mode });
        self
    }

    pub fn file(&mut self, path: &str, data: impl Into<Vec<u8>>, mode: u32) -> &mut Self {
        let path = clean(path);
        self.parents(&path);
        self.entries.insert(path, Entry::File { data: data.into(), mode });
        self
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let path = clean(path);
        self.parents(&path);
        self.entries.insert(path, Entry::Symlink { target: target.to_owned() });
        self
    }

    /// Adds a host file (following links) at `path`.
    pub fn host_file(&mut self, path: &str, src: &Path, mode: u32) -> Result<&mut Self, InitramfsError> {
        let data =
            std::fs::read(src).map_err(|source| InitramfsError::Io { path: src.to_owned(), source })?;
        Ok(self.file(path, data, mode))
    }

    /// Adds a dynamically linked program at `path` and every shared library it loads, at the
    /// library's own absolute path, as `ldd` resolves them on this host.
    pub fn program(&mut self, path: &str, src: &Path) -> Result<&mut Self, InitramfsError> {
        self.host_file(path, src, 0o755)?;
        for lib in shared_libraries(src)? {
            let dest = lib.to_string_lossy().into_owned();
            self.host_file(&dest, &lib, 0o755)?;
        }
        Ok(self)
    }

    pub fn contains(&self, path: &str) -> bool {
        self.entries.contains_key(&clean(path))
    }

    /// The archive, gzip-compressed, with every mtime set to `mtime`.
    pub fn to_gzip(&self, mtime: u32) -> Result<Vec<u8>, InitramfsError> {
        let io = |source| InitramfsError::Io { path: PathBuf::from("<initramfs>"), source };
        let mut gz = GzBuilder::new().mtime(0).write(Vec::new(), Compression::new(6));
        for (ino, (path, entry)) in self.entries.iter().enumerate() {
            let (mode, data): (u32, &[u8]) = match entry {
                Entry::Dir { mode } => (0o040000 | mode, &[]),
                Entry::File { data, mode } => (0o100000 | mode, data),
                Entry::Symlink { target } => (0o120777, target.as_bytes()),
            };
            let size = u32::try_from(data.len()).map_err(|_| InitramfsError::Entry {
                path: path.clone(),
                what: "larger than 4 GiB".into(),
            })?;
            let header = cpio::newc::Builder::new(path)
                .ino(ino as u32 + 1)
                .mode(mode)
                .uid(0)
                .gid(0)
                .nlink(if matches!(entry, Entry::Dir { .. }) { 2 } else { 1 })
                .mtime(mtime);
            let mut w = header.write(&mut gz, size);
            w.write_all(data).map_err(io)?;
            w.finish().map_err(io)?;
        }
        cpio::newc::trailer(&mut gz).map_err(io)?;
        gz.finish().map_err(io)
    }

    /// Writes the archive to `out` atomically (a temporary file beside it, then a rename).
    pub fn write(&self, out: &Path, mtime: u32) -> Result<(), InitramfsError> {
        let bytes = self.to_gzip(mtime)?;
        let tmp = out.with_extension("partial");
        let io = |source| InitramfsError::Io { path: out.to_owned(), source };
        std::fs::write(&tmp, bytes).map_err(io)?;
        std::fs::rename(&tmp, out).map_err(io)
    }
}

/// The absolute paths of the shared libraries (and the loader) that `program` needs, as this
/// host's ldd resolves them.
pub fn shared_libraries(program: &Path) -> Result<Vec<PathBuf>, InitramfsError> {
    run_ldd(Cmd::new("ldd").arg(program), program)
}

/// Runs an ldd command line (the host's, or one inside a chroot) for `program` and returns the
/// library paths it names. A static program has none.
pub fn run_ldd(ldd: Cmd, program: &Path) -> Result<Vec<PathBuf>, InitramfsError> {
    let text = match ldd.run_text() {
        Ok(text) => text,
        Err(e) if e.to_string().contains("not a dynamic executable") => return Ok(Vec::new()),
        Err(e) => return Err(InitramfsError::Libraries { path: program.to_owned(), message: e.to_string() }),
    };
    Ok(parse_ldd(&text))
}

fn parse_ldd(text: &str) -> Vec<PathBuf> {
    let mut libs: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with('/')))
        .map(PathBuf::from)
        .collect();
    libs.sort();
    libs.dedup();
    libs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_is_parsed() {
        // Captured: `ldd target/debug/pairos` on Debian 12.
        let text = "\tlinux-vdso.so.1 (0x00007ffd5a7e4000)\n\
                    \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f0c)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0b)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f0d)\n";
        let libs = parse_ldd(text);
        assert_eq!(
            libs,
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
    }

    #[test]
    fn the_archive_is_deterministic_and_readable_by_cpio() {
        let build = |order: bool| {
            let mut i = Initramfs::new();
            if order {
                i.file("/bin/a", "A", 0o755).symlink("/sbin/init", "/bin/a");
            } else {
                i.symlink("/sbin/init", "/bin/a").file("/bin/a", "A", 0o755);
            }
            i.to_gzip(1_700_000_000).expect("archive")
        };
        let (one, two) = (build(true), build(false));
        assert_eq!(one, two, "insertion order must not matter");

        let dir = tempfile::tempdir().expect("tempdir");
        let gz = dir.path().join("i.gz");
        std::fs::write(&gz, &one).expect("write");
        let listing = Cmd::new("sh")
            .arg("-c")
            .arg(format!("zcat {} | cpio -it --quiet", gz.display()))
            .run_text()
            .expect("cpio lists it");
        assert_eq!(listing.lines().collect::<Vec<_>>(), ["bin", "bin/a", "sbin", "sbin/init"]);
    }
}
