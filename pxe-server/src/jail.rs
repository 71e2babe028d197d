//! The boot folder as a jail, shared by TFTP and HTTP: a requested name resolves to a regular
//! file under the folder, or is refused. No `..`, no escape through symlinks (the resolved path
//! must still lie under the folder's own resolved path), nothing but regular files.
//!
//! A leading `/` is read as the folder's root, as tftpd-hpa does in `--secure` mode: PXE firmware
//! often asks for `/ipxe/undionly.kpxe`. `/etc/passwd` therefore names `ROOT/etc/passwd`.

use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0:?}: not found")]
    NotFound(String),
    #[error("{0:?}: outside the boot folder")]
    Escape(String),
    #[error("{0:?}: not a regular file")]
    NotAFile(String),
}

impl Refusal {
    /// Whether the request tried to leave the folder (an access violation, not a missing file).
    pub fn is_violation(&self) -> bool {
        !matches!(self, Refusal::NotFound(_))
    }
}

/// A boot folder, resolved once.
#[derive(Debug, Clone)]
pub struct Jail {
    root: PathBuf,
}

impl Jail {
    pub fn new(root: &Path) -> std::io::Result<Jail> {
        let root = root.canonicalize()?;
        if !root.is_dir() {
            return Err(std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a folder"));
        }
        Ok(Jail { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file that `name` asks for.
    pub fn resolve(&self, name: &str) -> Result<PathBuf, Refusal> {
        let refuse = |r: fn(String) -> Refusal| r(name.to_owned());
        if name.contains('\0') || name.contains('\\') {
            return Err(refuse(Refusal::Escape));
        }
        let mut path = self.root.clone();
        for c in Path::new(name.trim_start_matches('/')).components() {
            match c {
                Component::Normal(part) => path.push(part),
                Component::CurDir => {}
                Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                    return Err(refuse(Refusal::Escape))
                }
            }
        }
        let real = match path.canonicalize() {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(refuse(Refusal::NotFound)),
            Err(_) => return Err(refuse(Refusal::NotAFile)),
        };
        if !real.starts_with(&self.root) {
            return Err(refuse(Refusal::Escape));
        }
        if !real.is_file() {
            return Err(refuse(Refusal::NotAFile));
        }
        Ok(real)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_inside_and_escapes_are_refused() {
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("secret"), "s").expect("write");
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(d.path().join("ipxe")).expect("mkdir");
        std::fs::write(d.path().join("ipxe/undionly.kpxe"), "k").expect("write");
        std::os::unix::fs::symlink(outside.path().join("secret"), d.path().join("link-out")).expect("ln");
        std::os::unix::fs::symlink("ipxe/undionly.kpxe", d.path().join("link-in")).expect("ln");
        let jail = Jail::new(d.path()).expect("jail");
        let inside = jail.root().join("ipxe/undionly.kpxe");

        assert_eq!(jail.resolve("ipxe/undionly.kpxe"), Ok(inside.clone()));
        assert_eq!(jail.resolve("/ipxe/undionly.kpxe"), Ok(inside.clone()));
        assert_eq!(jail.resolve("./ipxe//undionly.kpxe"), Ok(inside.clone()));
        assert_eq!(jail.resolve("link-in"), Ok(inside));
        for bad in ["../secret", "ipxe/../../secret", "link-out", "ipxe\\..\\x", "a\0b"] {
            let r = jail.resolve(bad);
            assert!(r.as_ref().is_err_and(Refusal::is_violation), "{bad:?} gave {r:?}");
        }
        assert_eq!(jail.resolve("/etc/passwd"), Err(Refusal::NotFound("/etc/passwd".into())));
        assert_eq!(jail.resolve("ipxe"), Err(Refusal::NotAFile("ipxe".into())));
        assert_eq!(jail.resolve(""), Err(Refusal::NotAFile("".into())));
    }
}
