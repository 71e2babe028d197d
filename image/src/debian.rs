//! Debian packages through the machine's own apt: resolution of metapackages, download into a
//! cache keyed by name and version, unpacking. apt checks each download against the archive's
//! signed index; we never re-implement it.

use std::path::{Path, PathBuf};

use pairos_host::{Cmd, CommandError};

#[derive(Debug, thiserror::Error)]
pub enum DebianError {
    #[error("package {package}: {source}")]
    Apt { package: String, source: CommandError },
    #[error(
        "package {package}: apt knows no such package (is `apt-get update` done, and the source reachable?)"
    )]
    Unknown { package: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("package {package}: the download's sha256 is {actual}, apt's index says {expected}")]
    Checksum { package: String, expected: String, actual: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DebianError + '_ {
    move |source| DebianError::Io { path: path.to_owned(), source }
}

/// A package version apt offers: the candidate of `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageVersion {
    pub name: String,
    pub version: String,
    pub depends: Vec<String>,
    /// The .deb's sha256 from apt's index, checked after download.
    pub sha256: Option<String>,
}

/// The candidate version of `name` and its direct dependencies (first alternative of each).
pub fn candidate(name: &str) -> Result<PackageVersion, DebianError> {
    let text = Cmd::new("apt-cache")
        .args(["show", "--no-all-versions", name])
        .run_text()
        .map_err(|source| DebianError::Apt { package: name.to_owned(), source })?;
    parse_show(name, &text).ok_or_else(|| DebianError::Unknown { package: name.to_owned() })
}

fn parse_show(name: &str, text: &str) -> Option<PackageVersion> {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')).map(|v| v.trim().to_owned()))
    };
    let version = field("Version")?;
    let depends = field("Depends")
        .map(|d| {
            d.split(',')
                .filter_map(|alt| alt.split('|').next())
                .filter_map(|p| p.split_whitespace().next())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Some(PackageVersion { name: name.to_owned(), version, depends, sha256: field("SHA256") })
}

/// The concrete kernel image package behind the `linux-image-amd64` metapackage.
pub fn kernel_package() -> Result<PackageVersion, DebianError> {
    let meta = candidate("linux-image-amd64")?;
    let concrete = meta
        .depends
        .iter()
        .find(|d| d.starts_with("linux-image-") && d.as_str() != "linux-image-amd64")
        .ok_or_else(|| DebianError::Unknown {
            package: "linux-image-amd64 (no linux-image-* dependency)".into(),
        })?;
    candidate(concrete)
}

/// Downloads `pkg` into `cache` (once per version) and unpacks it; returns the unpacked tree.
/// A half-done unpack is never reused: it is written beside and renamed into place.
pub fn unpacked(pkg: &PackageVersion, cache: &Path) -> Result<PathBuf, DebianError> {
    let key = format!("{}_{}", pkg.name, pkg.version.replace(':', "%3a"));
    let tree = cache.join(&key);
    if tree.is_dir() {
        return Ok(tree);
    }
    let work = cache.join(format!(".{key}.partial"));
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(io(&work))?;
    }
    std::fs::create_dir_all(&work).map_err(io(&work))?;
    tracing::info!(package = %pkg.name, version = %pkg.version, "downloading");
    let apt = |source| DebianError::Apt { package: pkg.name.clone(), source };
    Cmd::new("apt-get")
        .args(["download", "-q", &format!("{}={}", pkg.name, pkg.version)])
        .current_dir(&work)
        .run()
        .map_err(apt)?;
    let deb = std::fs::read_dir(&work)
        .map_err(io(&work))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .ok_or_else(|| DebianError::Unknown { package: pkg.name.clone() })?;
    if let Some(expected) = &pkg.sha256 {
        let actual = crate::digest::sha256_file(&deb).map_err(io(&deb))?;
        if &actual != expected {
            return Err(DebianError::Checksum {
                package: pkg.name.clone(),
                expected: expected.clone(),
                actual,
            });
        }
    }
    let root = work.join("root");
    Cmd::new("dpkg-deb").arg("-x").arg(&deb).arg(&root).run().map_err(apt)?;
    std::fs::remove_file(&deb).map_err(io(&deb))?;
    std::fs::rename(&root, &tree).map_err(io(&tree))?;
    std::fs::remove_dir_all(&work).map_err(io(&work))?;
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_output_is_parsed() {
        let text = "Package: linux-image-amd64\nVersion: 6.1.192-2\n\
                    Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2), foo | bar\nSHA256: abc\n";
        let p = parse_show("linux-image-amd64", text).expect("parsed");
        assert_eq!(p.version, "6.1.192-2");
        assert_eq!(p.depends, ["linux-image-6.1.0-56-amd64", "foo"]);
        assert_eq!(p.sha256.as_deref(), Some("abc"));
    }
}
