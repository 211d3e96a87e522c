//! Wall-clock helpers: seconds since the epoch as `f64` (Mesos's
//! `ResourceStatistics.timestamp` convention) and RFC 3339 rendering.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `d` in whole milliseconds, rounded *up*, for poll(2) and epoll's
/// millisecond timeouts: rounded down, a wait ends before its deadline and
/// the caller's loop then spins with a zero timeout for up to a
/// millisecond of CPU.
pub fn millis_rounded_up(d: Duration) -> u64 {
    u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Renders epoch seconds as UTC RFC 3339 with second precision.
pub fn rfc3339(secs: f64) -> String {
    let total = secs.max(0.0) as i64;
    let (days, rem) = (total.div_euclid(86_400), total.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Nanoseconds since the epoch of an RFC 3339 instant with a `Z` or
/// `±HH:MM` offset and up to nine fraction digits, as the Docker engine
/// stamps log lines (`2006-01-02T15:04:05.000000000Z`); `None` for
/// anything else or an instant before the epoch.
pub fn parse_rfc3339_nanos(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0i64, |acc, d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    let sep = |at: usize, c: u8| b.get(at) == Some(&c);
    if !(sep(4, b'-')
        && sep(7, b'-')
        && matches!(b.get(10), Some(b'T' | b't'))
        && sep(13, b':')
        && sep(16, b':'))
    {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0i64;
    if sep(at, b'.') {
        at += 1;
        let digits = b[at..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = num(at, digits)? * 10i64.pow(9 - digits as u32);
        at += digits;
    }
    let offset = match b.get(at) {
        Some(b'Z' | b'z') if at + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if at + 6 == b.len() && sep(at + 3, b':') => {
            let minutes = num(at + 1, 2)? * 60 + num(at + 4, 2)?;
            if *sign == b'+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    u64::try_from(secs)
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(nanos as u64)
}

/// A proleptic Gregorian date to days since 1970-01-01 (the inverse of
/// [`civil_from_days`]).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// algorithm, expressed from its description).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_up_so_a_wait_never_ends_before_it_is_due() {
        assert_eq!(millis_rounded_up(Duration::from_micros(3_500)), 4);
        assert_eq!(millis_rounded_up(Duration::from_nanos(1)), 1);
        assert_eq!(millis_rounded_up(Duration::from_millis(50)), 50);
        assert_eq!(millis_rounded_up(Duration::ZERO), 0);
        assert_eq!(millis_rounded_up(Duration::MAX), u64::MAX);
    }

    #[test]
    fn renders_known_instants() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_267_815.9), "2026-11-21T13:30:15Z");
    }

    #[test]
    fn parses_the_engine_s_log_timestamps() {
        let ns = |s: &str| parse_rfc3339_nanos(s);
        assert_eq!(ns("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            ns("2026-11-21T13:30:15.000000123Z"),
            Some(1_795_267_815_000_000_123)
        );
        assert_eq!(
            ns("2026-11-21T13:30:15.5Z"),
            Some(1_795_267_815_500_000_000)
        );
        assert_eq!(
            ns("2000-02-29T01:00:00+01:00"),
            Some(951_782_400_000_000_000)
        );
        for days in [0, 59, 365, 11_016, 20_000, 60_000] {
            let text = rfc3339((days * 86_400) as f64);
            assert_eq!(ns(&text), Some(days * 86_400 * 1_000_000_000), "{text}");
        }
        for bad in [
            "",
            "2026-11-21",
            "2026-11-21T13:30:15",
            "2026-11-21T13:30:15.Z",
            "2026-11-21T13:30:15.1234567890Z",
            "2026-13-21T13:30:15Z",
            "1969-12-31T23:59:59Z",
            "2026-11-21T13:30:15Zjunk",
            "2026-11-21T13:30:15+0100",
        ] {
            assert_eq!(ns(bad), None, "{bad}");
        }
    }
}
