//! sha256 helpers, and cache keys made of labelled inputs.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The sha256 of a file's contents, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// A cache key: every input of a stage goes in with a label, so that two different inputs can
/// never produce the same byte stream.
#[derive(Debug, Clone)]
pub struct Key(Sha256);

impl Key {
    pub fn new(stage: &str) -> Self {
        let mut k = Key(Sha256::new());
        k.add("stage", stage.as_bytes());
        k
    }

    pub fn add(&mut self, label: &str, value: &[u8]) -> &mut Self {
        for part in [label.as_bytes(), value] {
            self.0.update((part.len() as u64).to_le_bytes());
            self.0.update(part);
        }
        self
    }

    pub fn add_str(&mut self, label: &str, value: &str) -> &mut Self {
        self.add(label, value.as_bytes())
    }

    pub fn add_file(&mut self, label: &str, path: &Path) -> std::io::Result<&mut Self> {
        let digest = sha256_file(path)?;
        Ok(self.add_str(label, &digest))
    }

    pub fn finish(&self) -> String {
        hex(&self.0.clone().finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_separate_inputs() {
        let a = Key::new("s").add_str("x", "ab").add_str("y", "c").finish();
        let b = Key::new("s").add_str("x", "a").add_str("y", "bc").finish();
        assert_ne!(a, b);
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
