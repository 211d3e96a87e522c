//! `Resources`: what a container asked for (requests) and may use at most
//! (limits), in Mesos units: `cpus` in CPUs, `mem` and `disk` in MB (a MB is
//! 2^20 bytes, as Mesos's `Megabytes`), `pids` as a process count.
//!
//! Mesos carries these as `Resource` lists (`name`, scalar `value`) plus a
//! `limits` map whose values may be infinite; [`Resources::requests`] and
//! [`Resources::limits`] give exactly those pairs, so a `Resource` list can
//! be built or read without knowing this struct's field names.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes in one Mesos megabyte.
pub const MB: u64 = 1024 * 1024;

/// The largest CPU count accepted (request or limit). Far beyond any host,
/// small enough that every derived value (`cpu.shares`, CFS quota) fits.
pub const MAX_CPUS: f64 = 1_048_576.0;

/// The largest memory or disk size accepted, in MB: 2^44 MB is 2^64 bytes,
/// the most a `u64` byte count can hold.
pub const MAX_MB: f64 = (1u64 << 44) as f64 - 1.0;

/// An upper bound that may be infinite (Mesos `Value.Scalar` in `limits`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Limit {
    /// At most this much (CPUs or MB).
    Finite(f64),
    /// No upper bound.
    Infinite,
}

impl Limit {
    /// The finite value, `None` when infinite.
    pub fn finite(self) -> Option<f64> {
        match self {
            Limit::Finite(v) => Some(v),
            Limit::Infinite => None,
        }
    }

    /// As a Mesos scalar: infinity is `f64::INFINITY`.
    pub fn as_f64(self) -> f64 {
        self.finite().unwrap_or(f64::INFINITY)
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Finite(v) => write!(f, "{v}"),
            Limit::Infinite => f.write_str("infinity"),
        }
    }
}

// JSON has no infinity: a limit is a number, or the string "infinity".
impl Serialize for Limit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Limit::Finite(v) => s.serialize_f64(*v),
            Limit::Infinite => s.serialize_str("infinity"),
        }
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(v) if v.is_infinite() && v > 0.0 => Ok(Limit::Infinite),
            Raw::Number(v) => Ok(Limit::Finite(v)),
            Raw::Text(t) if matches!(t.to_ascii_lowercase().as_str(), "infinity" | "inf") => {
                Ok(Limit::Infinite)
            }
            Raw::Text(t) => Err(serde::de::Error::custom(format!(
                "a limit is a number or \"infinity\", not \"{t}\""
            ))),
        }
    }
}

/// A rejected resource value; `option` is the user-facing name
/// (`--cpus`, `--mem-limit`, …), `value` the text or number given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid value '{value}' for {option}: {reason}")]
pub struct InvalidResource {
    pub option: String,
    pub value: String,
    pub reason: String,
}

/// Which quantity a value is, for validation and messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantity {
    Cpus,
    Mem,
    Disk,
}

impl Quantity {
    fn max(self) -> f64 {
        match self {
            Quantity::Cpus => MAX_CPUS,
            Quantity::Mem | Quantity::Disk => MAX_MB,
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Quantity::Cpus => "CPUs",
            Quantity::Mem | Quantity::Disk => "MB",
        }
    }
}

fn invalid(option: &str, value: impl fmt::Display, reason: impl Into<String>) -> InvalidResource {
    InvalidResource {
        option: option.to_owned(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Checks a request: finite, positive, not absurd.
pub fn check_request(option: &str, q: Quantity, v: f64) -> Result<f64, InvalidResource> {
    if v.is_nan() {
        return Err(invalid(option, v, "not a number"));
    }
    if v.is_infinite() {
        return Err(invalid(option, v, "a request must be finite"));
    }
    if v <= 0.0 {
        return Err(invalid(option, v, "must be greater than 0"));
    }
    if v > q.max() {
        return Err(invalid(
            option,
            v,
            format!("more than the maximum of {} {}", q.max(), q.unit()),
        ));
    }
    Ok(v)
}

/// Checks a limit: positive, not absurd, or +infinity.
pub fn check_limit(option: &str, q: Quantity, v: Limit) -> Result<Limit, InvalidResource> {
    match v {
        Limit::Infinite => Ok(v),
        Limit::Finite(f) if f.is_infinite() && f > 0.0 => Ok(Limit::Infinite),
        Limit::Finite(f) => check_request(option, q, f).map(Limit::Finite).map_err(|e| {
            if f.is_infinite() {
                invalid(option, f, "only +infinity is allowed as a limit")
            } else {
                e
            }
        }),
    }
}

/// Parses a request as typed on a command line.
pub fn parse_request(option: &str, q: Quantity, text: &str) -> Result<f64, InvalidResource> {
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| invalid(option, text, "not a number"))?;
    if v.is_infinite() {
        return Err(invalid(option, text, "a request must be finite"));
    }
    check_request(option, q, v).map_err(|e| invalid(option, text, e.reason))
}

/// Parses a limit: a number, or `inf`/`infinity`/`unlimited`.
pub fn parse_limit(option: &str, q: Quantity, text: &str) -> Result<Limit, InvalidResource> {
    let t = text.trim();
    if matches!(
        t.to_ascii_lowercase().as_str(),
        "inf" | "+inf" | "infinity" | "+infinity" | "unlimited"
    ) {
        return Ok(Limit::Infinite);
    }
    let v: f64 = t
        .parse()
        .map_err(|_| invalid(option, text, "not a number or 'infinity'"))?;
    check_limit(option, q, Limit::Finite(v)).map_err(|e| invalid(option, text, e.reason))
}

/// Parses a process-count limit: a positive integer.
pub fn parse_pids(option: &str, text: &str) -> Result<u64, InvalidResource> {
    match text.trim().parse::<u64>() {
        Ok(0) => Err(invalid(option, text, "must be at least 1")),
        Ok(n) if n > i32::MAX as u64 => Err(invalid(
            option,
            text,
            format!("more than the maximum of {}", i32::MAX),
        )),
        Ok(n) => Ok(n),
        Err(_) => Err(invalid(option, text, "not a positive integer")),
    }
}

/// A container's resources. Every field is optional: absent means "not
/// requested" (no cgroup setting is written for it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// CPU request (`cpu.shares` / `cpu.weight`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Memory request in MB (soft limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<f64>,
    /// Sandbox disk in MB (`disk/du`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<f64>,
    /// CPU limit (CFS quota); infinite allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus_limit: Option<Limit>,
    /// Memory limit in MB (hard limit); infinite allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_limit: Option<Limit>,
    /// Most processes and threads (`pids.max`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<u64>,
}

impl Resources {
    /// Checks every value; the error names the CLI option of the field.
    pub fn validate(&self) -> Result<(), InvalidResource> {
        let pairs = [
            ("--cpus", Quantity::Cpus, self.cpus),
            ("--mem", Quantity::Mem, self.mem),
            ("--disk", Quantity::Disk, self.disk),
        ];
        for (option, q, v) in pairs {
            if let Some(v) = v {
                check_request(option, q, v)?;
            }
        }
        if let Some(l) = self.cpus_limit {
            check_limit("--cpus-limit", Quantity::Cpus, l)?;
        }
        if let Some(l) = self.mem_limit {
            check_limit("--mem-limit", Quantity::Mem, l)?;
        }
        if self.pids_limit == Some(0) {
            return Err(invalid("--pids-limit", 0, "must be at least 1"));
        }
        Ok(())
    }

    /// True when nothing is requested or limited.
    pub fn is_empty(&self) -> bool {
        *self == Resources::default()
    }

    /// Memory request in bytes.
    pub fn mem_bytes(&self) -> Option<u64> {
        self.mem.map(mb_to_bytes)
    }

    /// Memory limit in bytes: `Some(None)` = infinite.
    pub fn mem_limit_bytes(&self) -> Option<Option<u64>> {
        self.mem_limit.map(|l| l.finite().map(mb_to_bytes))
    }

    /// Disk request in bytes.
    pub fn disk_bytes(&self) -> Option<u64> {
        self.disk.map(mb_to_bytes)
    }

    /// CPU limit: `Some(None)` = infinite.
    pub fn cpus_limit_value(&self) -> Option<Option<f64>> {
        self.cpus_limit.map(Limit::finite)
    }

    /// The requests as a Mesos `Resource` list (`name`, scalar).
    pub fn requests(&self) -> Vec<(&'static str, f64)> {
        let mut out = Vec::new();
        if let Some(v) = self.cpus {
            out.push(("cpus", v));
        }
        if let Some(v) = self.mem {
            out.push(("mem", v));
        }
        if let Some(v) = self.disk {
            out.push(("disk", v));
        }
        out
    }

    /// The limits as a Mesos `limits` map (`name` → scalar, maybe infinite).
    pub fn limits(&self) -> Vec<(&'static str, Limit)> {
        let mut out = Vec::new();
        if let Some(v) = self.cpus_limit {
            out.push(("cpus", v));
        }
        if let Some(v) = self.mem_limit {
            out.push(("mem", v));
        }
        if let Some(v) = self.pids_limit {
            out.push(("pids", Limit::Finite(v as f64)));
        }
        out
    }

    /// Builds from a Mesos `Resource` list and `limits` map; unknown names
    /// are ignored, as a containerizer ignores resources it does not isolate.
    pub fn from_mesos<'a>(
        requests: impl IntoIterator<Item = (&'a str, f64)>,
        limits: impl IntoIterator<Item = (&'a str, Limit)>,
    ) -> Self {
        let mut r = Resources::default();
        for (name, v) in requests {
            match name {
                "cpus" => r.cpus = Some(r.cpus.unwrap_or(0.0) + v),
                "mem" => r.mem = Some(r.mem.unwrap_or(0.0) + v),
                "disk" => r.disk = Some(r.disk.unwrap_or(0.0) + v),
                _ => {}
            }
        }
        // A total of zero is no request (Mesos drops empty resources); a
        // negative one stays, for `validate` to refuse.
        for total in [&mut r.cpus, &mut r.mem, &mut r.disk] {
            if *total == Some(0.0) {
                *total = None;
            }
        }
        for (name, l) in limits {
            match name {
                "cpus" => r.cpus_limit = Some(l),
                "mem" => r.mem_limit = Some(l),
                "pids" => r.pids_limit = l.finite().map(|v| v as u64),
                _ => {}
            }
        }
        r
    }
}

/// MB → bytes, saturating.
pub fn mb_to_bytes(mb: f64) -> u64 {
    // `as` saturates; validated values are below 2^44 MB.
    (mb * MB as f64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_with_the_option_and_value() {
        assert_eq!(parse_request("--cpus", Quantity::Cpus, "0.5"), Ok(0.5));
        for bad in ["-1", "0", "NaN", "inf", "abc", ""] {
            let e = parse_request("--cpus", Quantity::Cpus, bad).unwrap_err();
            assert_eq!(e.option, "--cpus");
            assert_eq!(e.value, bad);
            assert!(
                e.to_string()
                    .starts_with(&format!("invalid value '{bad}' for --cpus"))
            );
        }
        let e = parse_request("--mem", Quantity::Mem, "1e30").unwrap_err();
        assert!(e.reason.contains("maximum"), "{e}");
        assert_eq!(
            parse_limit("--mem-limit", Quantity::Mem, "inf"),
            Ok(Limit::Infinite)
        );
        assert_eq!(
            parse_limit("--cpus-limit", Quantity::Cpus, "2"),
            Ok(Limit::Finite(2.0))
        );
        assert!(parse_limit("--cpus-limit", Quantity::Cpus, "-inf").is_err());
        assert!(parse_limit("--cpus-limit", Quantity::Cpus, "nan").is_err());
        assert_eq!(parse_pids("--pids-limit", "100"), Ok(100));
        assert!(parse_pids("--pids-limit", "abc").is_err());
        assert!(parse_pids("--pids-limit", "0").is_err());
        assert!(parse_pids("--pids-limit", "-3").is_err());
    }

    #[test]
    fn serializes_limits_and_omits_absent_fields() {
        let r = Resources {
            cpus: Some(0.5),
            mem: Some(128.0),
            cpus_limit: Some(Limit::Infinite),
            mem_limit: Some(Limit::Finite(256.0)),
            ..Resources::default()
        };
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"cpus": 0.5, "mem": 128.0, "cpus_limit": "infinity", "mem_limit": 256.0})
        );
        let back: Resources = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
        assert_eq!(r.mem_bytes(), Some(128 * MB));
        assert_eq!(r.mem_limit_bytes(), Some(Some(256 * MB)));
        assert_eq!(r.cpus_limit_value(), Some(None));
        assert!(r.validate().is_ok());
        assert!(serde_json::from_str::<Limit>("\"lots\"").is_err());
    }

    #[test]
    fn converts_to_and_from_mesos_lists() {
        let r = Resources {
            cpus: Some(1.5),
            mem: Some(64.0),
            disk: Some(10.0),
            mem_limit: Some(Limit::Infinite),
            pids_limit: Some(50),
            ..Resources::default()
        };
        let back = Resources::from_mesos(r.requests(), r.limits());
        assert_eq!(back, r);
    }

    #[test]
    fn a_zero_mesos_total_is_no_request_and_a_negative_one_is_refused() {
        let r = Resources::from_mesos([("disk", 0.0), ("cpus", 0.5), ("cpus", 0.0)], []);
        assert_eq!((r.cpus, r.disk), (Some(0.5), None));
        assert!(r.validate().is_ok());
        let r = Resources::from_mesos([("mem", -64.0)], []);
        assert_eq!(r.validate().unwrap_err().option, "--mem");
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic_and_accept_only_sane_values(text in ".{0,40}") {
            if let Ok(v) = parse_request("--cpus", Quantity::Cpus, &text) {
                proptest::prop_assert!(v.is_finite() && v > 0.0 && v <= MAX_CPUS);
            }
            if let Ok(Limit::Finite(v)) = parse_limit("--mem-limit", Quantity::Mem, &text) {
                proptest::prop_assert!(v.is_finite() && v > 0.0 && v <= MAX_MB);
            }
            if let Ok(n) = parse_pids("--pids-limit", &text) {
                proptest::prop_assert!(n >= 1);
            }
        }

        #[test]
        fn any_valid_mb_converts_without_overflow(mb in 1e-6f64..MAX_MB) {
            let r = Resources { mem: Some(mb), ..Resources::default() };
            proptest::prop_assert!(r.validate().is_ok());
            proptest::prop_assert!(r.mem_bytes().unwrap() < u64::MAX, "saturated");
        }
    }

    #[test]
    fn validate_names_the_bad_field() {
        let r = Resources {
            mem: Some(0.0),
            ..Resources::default()
        };
        assert_eq!(r.validate().unwrap_err().option, "--mem");
        let r = Resources {
            cpus_limit: Some(Limit::Finite(f64::NAN)),
            ..Resources::default()
        };
        assert_eq!(r.validate().unwrap_err().option, "--cpus-limit");
    }
}
