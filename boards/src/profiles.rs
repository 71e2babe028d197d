//! The set of certified profiles: the ones built into the binary, or a folder of them.

use std::path::{Path, PathBuf};

use crate::profile::{Profile, ProfileError};

/// The profiles shipped in `boards/profiles/`, compiled in so that a node, a recovery initramfs
/// and the build agree on what is certified without reading files at run time.
const BUILTIN: &[(&str, &str)] = &[
    ("dell-poweredge-r650.toml", include_str!("../profiles/dell-poweredge-r650.toml")),
    ("hpe-proliant-dl360-gen10-plus.toml", include_str!("../profiles/hpe-proliant-dl360-gen10-plus.toml")),
    ("lenovo-thinksystem-sr630-v2.toml", include_str!("../profiles/lenovo-thinksystem-sr630-v2.toml")),
    ("qemu-q35.toml", include_str!("../profiles/qemu-q35.toml")),
    ("supermicro-sys-510p-m.toml", include_str!("../profiles/supermicro-sys-510p-m.toml")),
];

/// The built-in profiles, sorted by name. Their validity is a unit test, so this cannot fail at
/// run time for a binary that passed its tests.
pub fn builtin() -> Result<Vec<Profile>, ProfileError> {
    let mut out = Vec::new();
    for (file, text) in BUILTIN {
        let path = PathBuf::from("boards/profiles").join(file);
        push_unique(&mut out, Profile::parse(&path, text)?, &path)?;
    }
    out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    Ok(out.into_iter().map(|(p, _)| p).collect())
}

/// Every `*.toml` in `dir`, sorted by name. One broken file fails the whole set: a certification
/// decision made with a profile silently missing would be wrong.
pub fn load_dir(dir: &Path) -> Result<Vec<Profile>, ProfileError> {
    let entries =
        std::fs::read_dir(dir).map_err(|source| ProfileError::Read { file: dir.to_owned(), source })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ProfileError::Read { file: dir.to_owned(), source })?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let profile = Profile::load(&path)?;
        push_unique(&mut out, profile, &path)?;
    }
    out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    Ok(out.into_iter().map(|(p, _)| p).collect())
}

fn push_unique(out: &mut Vec<(Profile, PathBuf)>, profile: Profile, path: &Path) -> Result<(), ProfileError> {
    if let Some((_, other)) = out.iter().find(|(p, _)| p.name == profile.name) {
        return Err(ProfileError::Duplicate {
            file: path.to_owned(),
            other: other.clone(),
            name: profile.name,
        });
    }
    out.push((profile, path.to_owned()));
    Ok(())
}

/// Finds a profile by name, or says which names exist.
pub fn find<'a>(profiles: &'a [Profile], name: &str) -> Result<&'a Profile, String> {
    profiles.iter().find(|p| p.name == name).ok_or_else(|| {
        let names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
        format!("no board profile named {name:?}; known profiles: {}", names.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_are_valid_and_named_after_their_files() {
        let profiles = builtin().expect("built-in profiles parse");
        let names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "dell-poweredge-r650",
                "hpe-proliant-dl360-gen10-plus",
                "lenovo-thinksystem-sr630-v2",
                "qemu-q35",
                "supermicro-sys-510p-m"
            ]
        );
    }

    #[test]
    fn builtin_matches_the_profiles_folder() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        let from_dir = load_dir(&dir).expect("profiles folder loads");
        let mut listed: Vec<&str> = BUILTIN.iter().map(|(f, _)| *f).collect();
        listed.sort();
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("read profiles dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        assert_eq!(listed, on_disk, "every profile file must be listed in BUILTIN");
        assert_eq!(from_dir.len(), builtin().expect("builtin").len());
    }
}
