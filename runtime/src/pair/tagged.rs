//! Documents a node serves its peer on the private link (the pair's configuration, how its
//! workloads run), each tagged with the pair key for its own purpose: the peer believes one only
//! if the tag checks for that purpose, so a tag made for one kind of document fits no other.

use anyhow::Context;
use pairos_recovery::trust::PairKey;

/// The tag of `body` under `key` for `purpose`, in hex (what the image service sends).
pub fn tag(key: &PairKey, purpose: &str, body: &[u8]) -> String {
    pairos_image::digest::hex(&key.tag(purpose, &[body]))
}

/// Ok if `tag` (hex) is `body`'s tag under `key` for `purpose`.
pub fn check(key: &PairKey, purpose: &str, body: &[u8], tag: &str) -> anyhow::Result<()> {
    let tag = pairos_recovery::trust::from_hex32(tag).context("the tag is not 64 hex digits")?;
    anyhow::ensure!(key.check(purpose, &[body], &tag), "its tag does not check with the pair key");
    Ok(())
}
