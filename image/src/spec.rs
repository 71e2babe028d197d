//! The build spec: what image to make.
//!
//! [`SpecFile`] is the TOML format, strict (`deny_unknown_fields`); [`Spec`] is the checked form
//! the pipeline uses, made with [`Spec::parse`]. Parsing looks at nothing on the host; whether
//! the package sources answer is the fetch stage's business.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The spec used when `pairos build` is given none.
pub const DEFAULT_SPEC: &str = include_str!("../default-spec.toml");

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{file}: not a valid spec: {message}")]
    Syntax { file: String, message: String },
    #[error("{file}: field `{field}`: expected {expected}, found {found}")]
    Field { file: String, field: String, expected: String, found: String },
    #[error("{}: reading the spec: {source}", file.display())]
    Read { file: PathBuf, source: std::io::Error },
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SpecFile {
    pub version: String,
    pub suite: String,
    /// A deb822 (.sources) or one-line (.list) file; default: the host's apt sources.
    pub sources: Option<PathBuf>,
    #[serde(default)]
    pub boards: Vec<String>,
    pub packages: Vec<String>,
    #[serde(default)]
    pub modules: Vec<String>,
    pub cmdline: String,
    pub partitions: PartitionsFile,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionsFile {
    pub esp_mib: u64,
    pub root_mib: u64,
    pub verity_mib: u64,
}

/// A checked spec.
#[derive(Debug, Clone, Serialize)]
pub struct Spec {
    pub version: String,
    pub suite: String,
    pub sources: Option<PathBuf>,
    /// Board profile names; empty means all certified boards.
    pub boards: Vec<String>,
    pub packages: Vec<String>,
    pub modules: Vec<String>,
    pub cmdline: String,
    pub partitions: Partitions,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Partitions {
    pub esp_mib: u64,
    pub root_mib: u64,
    pub verity_mib: u64,
}

fn field(file: &str, field: &str, expected: &str, found: impl std::fmt::Debug) -> SpecError {
    SpecError::Field {
        file: file.to_owned(),
        field: field.to_owned(),
        expected: expected.to_owned(),
        found: format!("{found:?}"),
    }
}

fn is_name(s: &str, extra: &[u8]) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || extra.contains(&b))
}

impl Spec {
    /// The embedded default spec.
    pub fn default_spec() -> Result<Spec, SpecError> {
        Spec::parse("<default spec>", DEFAULT_SPEC)
    }

    pub fn load(path: &Path) -> Result<Spec, SpecError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| SpecError::Read { file: path.to_owned(), source })?;
        Spec::parse(&path.display().to_string(), &text)
    }

    /// Parses and checks spec text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Spec, SpecError> {
        let w: SpecFile = toml::from_str(text).map_err(|e| SpecError::Syntax {
            file: file.to_owned(),
            message: e.to_string().trim_end().replace('\n', "\n    "),
        })?;
        let version_ok = !w.version.is_empty()
            && w.version.len() <= 64
            && w.version.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+~-".contains(&b));
        if !version_ok {
            return Err(field(
                file,
                "version",
                "a version like \"1.2.0\" (letters, digits, . _ + ~ -)",
                &w.version,
            ));
        }
        if !is_name(&w.suite, b"-") {
            return Err(field(file, "suite", "a Debian suite name like \"bookworm\"", &w.suite));
        }
        for (i, b) in w.boards.iter().enumerate() {
            if !is_name(b, b"-") {
                return Err(field(file, &format!("boards[{i}]"), "a board profile name", b));
            }
        }
        if w.packages.is_empty() {
            return Err(field(file, "packages", "at least one package", "[]"));
        }
        for (i, p) in w.packages.iter().enumerate() {
            if !is_name(p, b"+-.") {
                return Err(field(file, &format!("packages[{i}]"), "a Debian package name", p));
            }
        }
        for (i, m) in w.modules.iter().enumerate() {
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                return Err(field(file, &format!("modules[{i}]"), "a kernel module name", m));
            }
        }
        // The build adds roothash= and the mode; a spec that sets them would fight the build.
        for reserved in ["roothash=", "pairos.mode=", "initrd="] {
            if w.cmdline.split_whitespace().any(|a| a.starts_with(reserved)) {
                return Err(field(
                    file,
                    "cmdline",
                    &format!("no {reserved} (the build sets it)"),
                    &w.cmdline,
                ));
            }
        }
        if w.cmdline.contains('\n') || w.cmdline.len() > 1024 {
            return Err(field(file, "cmdline", "one line of at most 1024 characters", &w.cmdline));
        }
        let p = &w.partitions;
        for (name, v, min) in
            [("esp_mib", p.esp_mib, 32), ("root_mib", p.root_mib, 64), ("verity_mib", p.verity_mib, 1)]
        {
            if v < min || v > 65536 {
                return Err(field(
                    file,
                    &format!("partitions.{name}"),
                    &format!("a size from {min} to 65536 MiB"),
                    v,
                ));
            }
        }
        // A hash tree over 4 KiB blocks needs a little over 1/128 of the data it covers.
        if p.verity_mib * 120 < p.root_mib {
            return Err(field(
                file,
                "partitions.verity_mib",
                &format!("at least {} MiB for a {} MiB root", p.root_mib.div_ceil(120), p.root_mib),
                p.verity_mib,
            ));
        }
        Ok(Spec {
            version: w.version,
            suite: w.suite,
            sources: w.sources,
            boards: w.boards,
            packages: w.packages,
            modules: w.modules,
            cmdline: w.cmdline,
            partitions: Partitions { esp_mib: p.esp_mib, root_mib: p.root_mib, verity_mib: p.verity_mib },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_spec_is_valid() {
        let spec = Spec::default_spec().expect("default spec");
        assert_eq!(spec.suite, "bookworm");
        assert!(spec.packages.iter().any(|p| p == "cryptsetup-bin"));
    }

    #[test]
    fn bad_specs_name_the_field() {
        let bad = |edit: &dyn Fn(&str) -> String| {
            Spec::parse("s.toml", &edit(DEFAULT_SPEC)).expect_err("must fail").to_string()
        };
        let e = bad(&|t| t.replace("root_mib = 256", "root_mib = 4"));
        assert!(
            e.contains("s.toml: field `partitions.root_mib`: expected a size from 64 to 65536 MiB, found 4"),
            "{e}"
        );
        let e = bad(&|t| t.replace("suite = \"bookworm\"", "suite = \"Bookworm!\""));
        assert!(e.contains("field `suite`"), "{e}");
        let e = bad(&|t| t.replace("cmdline = \"", "cmdline = \"roothash=00 "));
        assert!(e.contains("expected no roothash= (the build sets it)"), "{e}");
        let e = bad(&|t| t.replace("version = ", "versoin = "));
        assert!(e.contains("unknown field `versoin`"), "{e}");
        let e = bad(&|t| t.replace("\"kmod\",", "\"k mod\","));
        assert!(e.contains("field `packages[3]`: expected a Debian package name"), "{e}");
        let e = bad(&|t| t.replace("verity_mib = 8", "verity_mib = 1"));
        assert!(e.contains("partitions.verity_mib"), "{e}");
    }
}
