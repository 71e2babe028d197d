//! Two builds from the same inputs, in different folders and with separate stage caches (so
//! that nothing is shared, mmdebstrap included), give byte-identical artifacts.

use std::path::Path;

use pairos_host::Cmd;
use pairos_image::digest::sha256_file;
use pairos_lab::{image, paths, Lab, LabError};

fn files(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("ls") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("below").display().to_string();
                out.push((rel, sha256_file(&p).expect("hash")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn two_builds_in_different_folders_are_byte_identical() -> Result<(), LabError> {
    let lab = Lab::new("reproducible")?;
    let mut results = Vec::new();
    for which in ["a", "b"] {
        let out = lab.dir().join(format!("out-{which}"));
        Cmd::new(paths::pairos_bin()?)
            .arg("build")
            .arg("--out")
            .arg(&out)
            .arg("--cache")
            .arg(lab.dir().join(format!("cache-{which}")))
            .arg("--lab")
            .arg("--signing-key")
            .arg(image::test_signing_key())
            .env("SOURCE_DATE_EPOCH", "1767225600")
            .run()?;
        results.push(files(&out));
    }
    assert!(results[0].len() >= 12, "{:?}", results[0]);
    assert_eq!(results[0], results[1]);
    // The caches are large; the verdict is in.
    let _ = std::fs::remove_dir_all(lab.dir());
    Ok(())
}
