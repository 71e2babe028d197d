//! The console password: kept as an argon2id PHC string in the pair's document (so that both
//! nodes check it), never in clear.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// The shortest password the console takes.
pub const MIN_LEN: usize = 10;

/// Why a new password is refused, as the operator reads it.
pub fn refuse(password: &str) -> Option<String> {
    let chars = password.chars().count();
    if chars < MIN_LEN {
        return Some(format!("the password has {chars} characters; it needs at least {MIN_LEN}"));
    }
    if chars > 1024 {
        return Some("the password is longer than 1024 characters".into());
    }
    None
}

/// The PHC string of `password` with a fresh salt (argon2id, the crate's default costs:
/// 19 MiB, 2 passes).
pub fn hash(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
}

/// Whether `password` matches the PHC string (a malformed one matches nothing).
pub fn verify(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// Sets the console password in the pair's document on this node, which must be the primary
/// (the peer follows the primary's document). Refused when one is set and `replace` is not.
pub fn set(
    state_dir: &std::path::Path,
    run_dir: &std::path::Path,
    password: &str,
    replace: bool,
) -> anyhow::Result<()> {
    use anyhow::bail;
    if let Some(why) = refuse(password) {
        bail!("{why}");
    }
    let hashed = hash(password)?;
    super::change_settings(state_dir, run_dir, "the console password is set", |console| {
        if console.password.is_some() && !replace {
            bail!("a console password is set already");
        }
        console.password = Some(hashed);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_checks_its_password_only() {
        let h = hash("correct horse battery").expect("hashes");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify(&h, "correct horse battery"));
        assert!(!verify(&h, "correct horse batterY"));
        assert!(!verify("not a hash", "correct horse battery"));
        assert_ne!(h, hash("correct horse battery").expect("hashes"), "salted");
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(refuse("short").is_some_and(|w| w.contains("at least 10")));
        assert!(refuse("long enough here").is_none());
    }
}
