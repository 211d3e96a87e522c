//! `posix/rlimits`: resource limits on the command (setrlimit(2), applied
//! with `prlimit64` on itself by init's command process before the user
//! switch, since raising a hard limit needs `CAP_SYS_RESOURCE`).
//!
//! Types are Mesos's `RLimitInfo` types (`RLMT_NOFILE` …), spelled as
//! Docker's `--ulimit` does (`nofile=1024:4096`); `unlimited` (or `-1`)
//! is `RLIM_INFINITY`.

use phobos_core::RLimit;

/// Mesos's `RLimitInfo.RLimit.Type`s (without `RLMT_`) and their resources.
// The casts matter on musl, where the constants are c_int.
#[allow(clippy::unnecessary_cast)]
const TYPES: &[(&str, u32)] = &[
    ("as", libc::RLIMIT_AS as u32),
    ("core", libc::RLIMIT_CORE as u32),
    ("cpu", libc::RLIMIT_CPU as u32),
    ("data", libc::RLIMIT_DATA as u32),
    ("fsize", libc::RLIMIT_FSIZE as u32),
    ("locks", libc::RLIMIT_LOCKS as u32),
    ("memlock", libc::RLIMIT_MEMLOCK as u32),
    ("msgqueue", libc::RLIMIT_MSGQUEUE as u32),
    ("nice", libc::RLIMIT_NICE as u32),
    ("nofile", libc::RLIMIT_NOFILE as u32),
    ("nproc", libc::RLIMIT_NPROC as u32),
    ("rss", libc::RLIMIT_RSS as u32),
    ("rtprio", libc::RLIMIT_RTPRIO as u32),
    ("rttime", libc::RLIMIT_RTTIME as u32),
    ("sigpending", libc::RLIMIT_SIGPENDING as u32),
    ("stack", libc::RLIMIT_STACK as u32),
];

/// A `--ulimit` that cannot be.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RLimitError {
    #[error("invalid ulimit {0:?}: expected TYPE=SOFT[:HARD], for example nofile=1024:4096")]
    Syntax(String),
    #[error("unknown rlimit type {0:?} (expected one of {list})", list = type_list())]
    UnknownType(String),
    #[error("invalid ulimit {0:?}: {1:?} is not a number or \"unlimited\"")]
    Value(String, String),
    #[error("invalid ulimit {0:?}: the soft limit is above the hard limit")]
    SoftAboveHard(String),
    #[error("rlimit {0:?}: set both the soft and the hard limit, or neither")]
    OneSided(String),
}

fn type_list() -> String {
    TYPES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// The canonical type name (`nofile`) of `name` (`nofile`, `RLMT_NOFILE`).
pub fn parse_type(name: &str) -> Result<&'static str, RLimitError> {
    let lower = name.trim().to_ascii_lowercase();
    let bare = lower.strip_prefix("rlmt_").unwrap_or(&lower);
    TYPES
        .iter()
        .find(|(n, _)| *n == bare)
        .map(|(n, _)| *n)
        .ok_or_else(|| RLimitError::UnknownType(name.to_owned()))
}

/// The `RLIMIT_*` resource number of a canonical type name.
pub fn resource(kind: &str) -> Option<u32> {
    TYPES.iter().find(|(n, _)| *n == kind).map(|(_, r)| *r)
}

/// Parses Docker's `--ulimit TYPE=SOFT[:HARD]` (one value sets both).
pub fn parse_ulimit(spec: &str) -> Result<RLimit, RLimitError> {
    let (kind, values) = spec
        .split_once('=')
        .ok_or_else(|| RLimitError::Syntax(spec.to_owned()))?;
    let kind = parse_type(kind)?;
    let value = |v: &str| -> Result<Option<u64>, RLimitError> {
        match v.trim() {
            "unlimited" | "-1" => Ok(None),
            n => n
                .parse::<u64>()
                .ok()
                .filter(|n| *n != u64::MAX)
                .map(Some)
                .ok_or_else(|| RLimitError::Value(spec.to_owned(), v.to_owned())),
        }
    };
    let (soft, hard) = match values.split_once(':') {
        Some((s, h)) => (value(s)?, value(h)?),
        None => {
            let v = value(values)?;
            (v, v)
        }
    };
    if let (Some(s), h) = (soft, hard)
        && h.is_some_and(|h| s > h)
    {
        return Err(RLimitError::SoftAboveHard(spec.to_owned()));
    }
    if soft.is_none() && hard.is_some() {
        return Err(RLimitError::SoftAboveHard(spec.to_owned()));
    }
    Ok(RLimit {
        kind: kind.to_owned(),
        soft,
        hard,
    })
}

/// Adds `limit`, replacing an earlier one of the same type.
pub fn push(list: &mut Vec<RLimit>, limit: RLimit) {
    list.retain(|l| l.kind != limit.kind);
    list.push(limit);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dockers_spelling_and_mesos_names() {
        let l = parse_ulimit("nofile=1024:4096").unwrap();
        assert_eq!(
            (l.kind.as_str(), l.soft, l.hard),
            ("nofile", Some(1024), Some(4096))
        );
        let l = parse_ulimit("RLMT_CORE=unlimited").unwrap();
        assert_eq!((l.kind.as_str(), l.soft, l.hard), ("core", None, None));
        let l = parse_ulimit("nproc=50").unwrap();
        assert_eq!((l.soft, l.hard), (Some(50), Some(50)));
        let l = parse_ulimit("stack=8192:unlimited").unwrap();
        assert_eq!((l.soft, l.hard), (Some(8192), None));
        assert_eq!(resource("nofile"), Some(7), "RLIMIT_NOFILE");
    }

    #[test]
    fn bad_specs_are_named() {
        assert_eq!(
            parse_ulimit("nofiles=1").unwrap_err().to_string(),
            format!(
                "unknown rlimit type \"nofiles\" (expected one of {})",
                type_list()
            )
        );
        assert!(matches!(
            parse_ulimit("nofile"),
            Err(RLimitError::Syntax(_))
        ));
        assert!(matches!(
            parse_ulimit("nofile=x"),
            Err(RLimitError::Value(..))
        ));
        assert!(matches!(
            parse_ulimit("nofile=10:5"),
            Err(RLimitError::SoftAboveHard(_))
        ));
        assert!(matches!(
            parse_ulimit("nofile=unlimited:5"),
            Err(RLimitError::SoftAboveHard(_))
        ));
    }
}
