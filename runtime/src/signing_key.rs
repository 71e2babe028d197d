//! The key that must have signed an image: the one built into the running image, or a file
//! the operator names. `pairos install`, the installer, the recovery agent and the runtime's
//! image service all check with it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use pairos_image::manifest::parse_public_key_pem;

const BUILT_IN_KEYS: [&str; 2] = ["/etc/pairos/signing-key.pub", "/usr/share/pairos/signing-key.pub"];

/// The key that must have signed an image: `arg`, or the one built into this image.
pub fn public_key(arg: Option<&Path>) -> anyhow::Result<ed25519_dalek::VerifyingKey> {
    let path = match arg {
        Some(p) => p.to_owned(),
        None => match BUILT_IN_KEYS.iter().map(PathBuf::from).find(|p| p.is_file()) {
            Some(p) => p,
            None => bail!(
                "no public key to check the image with: this is not a pairos image ({} missing); pass --key FILE",
                BUILT_IN_KEYS.join(", ")
            ),
        },
    };
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    parse_public_key_pem(&text)
        .with_context(|| format!("{}: expected an ed25519 public key in PEM", path.display()))
}
