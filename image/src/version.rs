//! Ordering image versions, so that a node refuses to be taken back to an older image.
//!
//! Versions are what the spec allows (letters, digits, `. _ + ~ -`), ordered the way dpkg
//! orders a Debian upstream version: runs of digits compare as numbers, everything else
//! character by character, with `~` before anything (so `1.2~rc1` < `1.2`) and letters
//! before other symbols. Release engineers already know these rules from the packages the
//! image is made of. (It is the short algorithm from deb-version(7); no crate is needed.)

use std::cmp::Ordering;

/// dpkg's weight of one character in a non-digit run: `~` lowest, then the end of the run,
/// then letters, then everything else.
fn weight(c: Option<u8>) -> i32 {
    match c {
        Some(b'~') => -1,
        None => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// Compares two versions as dpkg compares upstream versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        // The non-digit runs, character by character.
        let (na, nb) = (non_digits(a), non_digits(b));
        for i in 0..na.max(nb) {
            let (ca, cb) = (a.get(i).filter(|_| i < na), b.get(i).filter(|_| i < nb));
            match weight(ca.copied()).cmp(&weight(cb.copied())) {
                Ordering::Equal => {}
                other => return other,
            }
        }
        (a, b) = (&a[na..], &b[nb..]);
        // The digit runs, as numbers (leading zeros do not count).
        let (da, db) = (digits(a), digits(b));
        let (sa, sb) = (trim_zeros(&a[..da]), trim_zeros(&b[..db]));
        match sa.len().cmp(&sb.len()).then_with(|| sa.cmp(sb)) {
            Ordering::Equal => {}
            other => return other,
        }
        (a, b) = (&a[da..], &b[db..]);
    }
    Ordering::Equal
}

fn non_digits(s: &[u8]) -> usize {
    s.iter().position(u8::is_ascii_digit).unwrap_or(s.len())
}

fn digits(s: &[u8]) -> usize {
    s.iter().position(|c| !c.is_ascii_digit()).unwrap_or(s.len())
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&c| c != b'0').unwrap_or(s.len());
    &s[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn versions_order_as_dpkg_orders_them() {
        // Pairs checked against `dpkg --compare-versions` on Debian 12.
        let cases = [
            ("1.0", "1.0", Equal),
            ("1.0", "1.1", Less),
            ("1.10", "1.9", Greater),
            ("1.2~rc1", "1.2", Less),
            ("1.2", "1.2.1", Less),
            ("1.2+lab", "1.2", Greater),
            ("1.2a", "1.2+", Less),
            ("01.2", "1.2", Equal),
            ("0.1.0-1", "0.1.0", Greater),
            ("2026.12.1", "2026.2.9", Greater),
            ("1~~", "1~", Less),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }
}
