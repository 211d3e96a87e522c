//! Byte sizes as Mesos flags write them (`stout::Bytes`): an integer and a
//! unit, `B`, `KB`, `MB`, `GB`, `TB` (powers of 1024, case-insensitive),
//! or a bare integer of bytes.

/// The largest size accepted: 1 PB, far beyond any disk a cache or a log
/// could sensibly use (bigger is a typo, not a wish).
pub const MAX_BYTES: u64 = 1 << 50;

const UNITS: &[(&str, u64)] = &[
    ("TB", 1 << 40),
    ("GB", 1 << 30),
    ("MB", 1 << 20),
    ("KB", 1 << 10),
    ("B", 1),
];

/// Parses `10MB`, `2GB`, `4096B`, `4096`.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let upper = t.to_ascii_uppercase();
    let (digits, factor) = UNITS
        .iter()
        .find_map(|(unit, factor)| upper.strip_suffix(unit).map(|d| (d.trim_end(), *factor)))
        .unwrap_or((upper.as_str(), 1));
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "expected a size such as \"10MB\" or \"2GB\" (an integer and B, KB, MB, GB or TB), found {text:?}"
        ));
    }
    let n = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .filter(|n| *n <= MAX_BYTES)
        .ok_or_else(|| format!("{text:?} is larger than the 1PB accepted"))?;
    Ok(n)
}

/// `n` in the largest unit that writes it exactly (`10MB`, `4097B`).
pub fn format_bytes(n: u64) -> String {
    for (unit, factor) in UNITS {
        if n >= *factor && n.is_multiple_of(*factor) {
            return format!("{}{unit}", n / factor);
        }
    }
    format!("{n}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print_as_mesos_writes_them() {
        assert_eq!(parse_bytes("10MB"), Ok(10 << 20));
        assert_eq!(parse_bytes("2gb"), Ok(2 << 30));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("1 KB"), Ok(1024));
        assert_eq!(parse_bytes("0B"), Ok(0));
        for bad in ["", "MB", "ten MB", "1.5GB", "-1MB", "10XB", "99999999999TB"] {
            let e = parse_bytes(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
        assert_eq!(format_bytes(10 << 20), "10MB");
        assert_eq!(format_bytes(2 << 30), "2GB");
        assert_eq!(format_bytes(4097), "4097B");
        assert_eq!(format_bytes(0), "0B");
    }
}
