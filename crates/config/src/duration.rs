//! Durations written the way Mesos writes its flags (stout's
//! `Duration::parse`): a non-negative decimal number immediately followed by a
//! unit, e.g. `100ms`, `15secs`, `5mins`, `6hrs`, `1.5days`. The short forms
//! `s`, `m`, `h`, `d` and `w` are accepted too.

use std::time::Duration;

/// Units from the smallest to the largest: (spellings, nanoseconds).
const UNITS: &[(&[&str], u64)] = &[
    (&["ns"], 1),
    (&["us"], 1_000),
    (&["ms"], 1_000_000),
    (&["secs", "sec", "s"], 1_000_000_000),
    (&["mins", "min", "m"], 60_000_000_000),
    (&["hrs", "hr", "h"], 3_600_000_000_000),
    (&["days", "day", "d"], 86_400_000_000_000),
    (&["weeks", "week", "w"], 604_800_000_000_000),
];

/// Parses a Mesos duration; the error explains what was expected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let valid_number = !number.is_empty()
        && number.matches('.').count() <= 1
        && number.chars().any(|c| c.is_ascii_digit());
    if !valid_number {
        return Err("expected a number followed by a unit, e.g. \"10secs\"".to_owned());
    }
    if unit.is_empty() {
        return Err(
            "missing unit: expected a number followed by a unit, e.g. \"10secs\"".to_owned(),
        );
    }
    let Some(&(_, nanos_per_unit)) = UNITS.iter().find(|(names, _)| names.contains(&unit)) else {
        return Err(format!(
            "unknown unit {unit:?}: expected ns, us, ms, secs, mins, hrs, days or weeks"
        ));
    };
    // Digits and at most one dot, so this parses; it cannot be negative,
    // infinite or NaN.
    let value: f64 = number
        .parse()
        .map_err(|_| format!("cannot parse {number:?} as a number"))?;
    let nanos = value * nanos_per_unit as f64;
    if nanos >= u64::MAX as f64 {
        return Err("duration is too long".to_owned());
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

/// Formats a duration in the largest Mesos unit that represents it exactly,
/// e.g. `6hrs`, `15secs`, `100ms`; zero is `0secs`.
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0secs".to_owned();
    }
    for (names, per_unit) in UNITS.iter().rev() {
        let per_unit = u128::from(*per_unit);
        if nanos.is_multiple_of(per_unit) {
            return format!("{}{}", nanos / per_unit, names[0]);
        }
    }
    format!("{nanos}ns")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mesos_and_short_units() {
        let cases = [
            ("0s", Duration::ZERO),
            ("0secs", Duration::ZERO),
            ("10secs", Duration::from_secs(10)),
            ("10s", Duration::from_secs(10)),
            ("5mins", Duration::from_secs(300)),
            ("6hrs", Duration::from_secs(6 * 3600)),
            ("100ms", Duration::from_millis(100)),
            ("250us", Duration::from_micros(250)),
            ("7ns", Duration::from_nanos(7)),
            ("2days", Duration::from_secs(2 * 86400)),
            ("1weeks", Duration::from_secs(7 * 86400)),
            ("1.5secs", Duration::from_millis(1500)),
            (".5secs", Duration::from_millis(500)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn refuses_malformed_durations() {
        for text in [
            "",
            "secs",
            "10",
            "-1secs",
            "10 secs",
            "1.2.3secs",
            "10fortnights",
            ".secs",
            "1e3secs",
            "inf",
            "99999999999weeks",
        ] {
            assert!(parse_duration(text).is_err(), "{text:?} was accepted");
        }
        assert_eq!(
            parse_duration("10fortnights"),
            Err(
                "unknown unit \"fortnights\": expected ns, us, ms, secs, mins, hrs, days or weeks"
                    .to_owned()
            )
        );
    }

    #[test]
    fn formats_in_the_largest_exact_unit() {
        assert_eq!(format_duration(Duration::ZERO), "0secs");
        assert_eq!(format_duration(Duration::from_secs(6 * 3600)), "6hrs");
        assert_eq!(format_duration(Duration::from_secs(15)), "15secs");
        assert_eq!(format_duration(Duration::from_millis(100)), "100ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(90)), "90secs");
        for text in ["6hrs", "15secs", "100ms", "5mins", "3days"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
