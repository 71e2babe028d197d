//! What a volume is called and how big it is, checked before anything is made: a name DRBD,
//! LVM and a person can all use, and a size in whole LVM extents.

use std::fmt;

use serde::{Deserialize, Serialize};

/// LVM's default extent: sizes are rounded up to it.
pub const EXTENT: u64 = 4 << 20;
/// The smallest volume (DRBD's internal metadata needs room, and smaller is a mistake).
pub const MIN_SIZE: u64 = 16 << 20;

/// A volume's name: 1 to 32 of `a-z`, `0-9` and `-`, starting with a letter. It is the DRBD
/// resource's name and the logical volume's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VolumeName(String);

impl VolumeName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for VolumeName {
    type Error = String;

    fn try_from(s: String) -> Result<VolumeName, String> {
        if s == "all" {
            return Err("volume name \"all\": drbdadm takes it for every resource; choose another".into());
        }
        let ok = (1..=32).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(VolumeName(s))
        } else {
            Err(format!(
                "volume name {s:?}: expected 1 to 32 of a-z, 0-9 and -, starting with a letter (it names the DRBD resource and the logical volume)"
            ))
        }
    }
}

impl std::str::FromStr for VolumeName {
    type Err = String;
    fn from_str(s: &str) -> Result<VolumeName, String> {
        VolumeName::try_from(s.to_owned())
    }
}

impl From<VolumeName> for String {
    fn from(n: VolumeName) -> String {
        n.0
    }
}

impl fmt::Display for VolumeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A size as a person writes it: `256M`, `1G`, `1.5GiB`, `1073741824` (bytes); binary units.
/// Rounded up to whole extents.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" | "kb" => 10,
        "m" | "mib" | "mb" => 20,
        "g" | "gib" | "gb" => 30,
        "t" | "tib" | "tb" => 40,
        _ => return Err(format!("size {text:?}: expected a number and K, M, G or T (binary units)")),
    };
    let value: f64 = number.parse().map_err(|_| format!("size {text:?}: expected a number first"))?;
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes > (1u64 << 60) as f64 {
        return Err(format!("size {text:?}: too large"));
    }
    let bytes = (bytes as u64).div_ceil(EXTENT) * EXTENT;
    if bytes < MIN_SIZE {
        return Err(format!("size {text:?}: a volume needs at least {} MiB", MIN_SIZE >> 20));
    }
    Ok(bytes)
}

/// `bytes` as a person reads it (`256 MiB`, `1.5 GiB`).
pub fn show_size(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64).replace(".0 ", " ")
    } else {
        format!("{} MiB", bytes >> 20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_what_drbd_and_lvm_both_take() {
        for good in ["data", "db-1", "a", "x234567890123456789012345678901z"] {
            assert!(good.parse::<VolumeName>().is_ok(), "{good}");
        }
        assert!("all".parse::<VolumeName>().expect_err("all").contains("every resource"));
        for bad in ["", "Data", "1db", "-x", "a_b", "a b", "a/b", "x2345678901234567890123456789012z"] {
            let e = bad.parse::<VolumeName>().expect_err(bad);
            assert!(e.contains("expected 1 to 32"), "{e}");
        }
        let json: Result<VolumeName, _> = serde_json::from_str("\"Bad Name\"");
        assert!(json.is_err());
    }

    #[test]
    fn sizes_round_up_to_extents_and_bad_ones_say_why() {
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("17M"), Ok(20 << 20), "rounded up to 4 MiB");
        assert_eq!(parse_size(&(64u64 << 20).to_string()), Ok(64 << 20));
        assert!(parse_size("1M").expect_err("small").contains("at least 16 MiB"));
        assert!(parse_size("12 parsecs").expect_err("unit").contains("K, M, G or T"));
        assert!(parse_size("M").expect_err("number").contains("number"));
        assert_eq!(show_size(256 << 20), "256 MiB");
        assert_eq!(show_size(3 << 29), "1.5 GiB");
        assert_eq!(show_size(1 << 30), "1 GiB");
    }
}
