//! The memory and pids controllers: limits.
//!
//! Memory (Documentation/admin-guide/cgroup-v1/memory.rst, cgroup-v2.rst
//! "Memory"), following Mesos's `cgroups/mem` isolator (§8):
//!
//! * soft limit = `max(request, 32 MB)`: v1 `memory.soft_limit_in_bytes`
//!   (reclaimed towards it only under global memory pressure). On v2 the
//!   equivalent is **`memory.low`** (best-effort protection: the group is
//!   reclaimed below it only when nothing else is reclaimable), which is what
//!   Mesos's v2 isolator writes. We leave `memory.high` alone: it throttles
//!   and reclaims a group *above* it even without pressure, a behaviour v1
//!   soft limits never had.
//! * hard limit = the limit (≥ 32 MB; unlimited allowed) or else the soft
//!   limit: v1 `memory.limit_in_bytes` (`-1` unlimited), v2 `memory.max`
//!   (`max`). It is set the first time and afterwards **only raised** (see
//!   [`next_hard_limit`]); lowering it under a running task could OOM it.
//! * swap (`--cgroups_limit_swap`): v1 `memory.memsw.limit_in_bytes` = the
//!   hard limit (memory + swap ≤ limit, i.e. no swap beyond the limit),
//!   written in the order that keeps `limit ≤ memsw` at every step, which the
//!   kernel enforces (MESOS-7237); v2 `memory.swap.max` = `0` (v2 limits
//!   swap alone).
//!
//! pids (cgroup-v1/pids.rst): `pids.max`, a number or `max`.

use crate::cgroup::Cgroup;
use crate::error::Error;
use crate::hierarchy::Version;
use crate::stats::{parse_u64_or_max, read_parsed};

/// Mesos's smallest memory limit.
pub const MIN_MEMORY: u64 = 32 * 1024 * 1024;

/// A memory limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Limit {
    /// This many bytes.
    Bytes(u64),
    /// No limit. Orders above every byte count.
    Unlimited,
}

/// v1 writes and reads "unlimited" as a page-rounded `LLONG_MAX`; anything
/// at or above this is unlimited.
const V1_UNLIMITED_THRESHOLD: u64 = 1 << 62;

/// `oom_score_adj` for a task with memory request `request` on a host with
/// `total` bytes: `1000 − 1000 × request / total` (Mesos `cgroups/mem` and
/// the Docker containerizer), so tasks that use more than they asked for
/// are killed first under global pressure. 0 when `total` is unknown.
pub fn oom_score_adj(request: u64, total: u64) -> i64 {
    if total == 0 {
        return 0;
    }
    let used = (1000u128 * u128::from(request.min(total)) / u128::from(total)) as i64;
    1000 - used
}

/// `max(request, 32 MB)`.
pub fn soft_limit(request: u64) -> u64 {
    request.max(MIN_MEMORY)
}

/// The hard limit: `limit` (`Some(None)` = infinite) raised to at least
/// 32 MB, or the soft limit when there is no limit.
pub fn hard_limit(request: u64, limit: Option<Option<u64>>) -> Limit {
    match limit {
        Some(None) => Limit::Unlimited,
        Some(Some(bytes)) => Limit::Bytes(bytes.max(MIN_MEMORY)),
        None => Limit::Bytes(soft_limit(request)),
    }
}

/// The only-raise rule: the hard limit to write given the one `current`ly
/// set by us (`None` = never set) and the one `wanted`; `None` = leave it.
pub fn next_hard_limit(current: Option<Limit>, wanted: Limit) -> Option<Limit> {
    match current {
        None => Some(wanted),
        Some(current) if wanted > current => Some(wanted),
        Some(_) => None,
    }
}

/// What to write for one container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemorySettings {
    /// Soft limit in bytes.
    pub soft: u64,
    /// Hard limit.
    pub hard: Limit,
    /// Also forbid swap beyond the hard limit.
    pub limit_swap: bool,
}

impl MemorySettings {
    /// Mesos's settings for `request` bytes and an optional limit.
    pub fn mesos(request: u64, limit: Option<Option<u64>>, limit_swap: bool) -> Self {
        MemorySettings {
            soft: soft_limit(request),
            hard: hard_limit(request, limit),
            limit_swap,
        }
    }
}

fn v1_text(limit: Limit) -> String {
    match limit {
        Limit::Unlimited => "-1".to_string(),
        Limit::Bytes(b) => b.to_string(),
    }
}

fn v2_text(limit: Limit) -> String {
    match limit {
        Limit::Unlimited => "max".to_string(),
        Limit::Bytes(b) => b.to_string(),
    }
}

/// The hard limit currently in force: v1 `memory.limit_in_bytes`, v2
/// `memory.max`.
pub fn read_hard_limit(cg: &Cgroup) -> Result<Limit, Error> {
    let (file, unlimited_from) = match cg.version() {
        Version::V1 => ("memory.limit_in_bytes", V1_UNLIMITED_THRESHOLD),
        Version::V2 => ("memory.max", u64::MAX),
    };
    read_parsed(cg, file, |t| {
        Ok(match parse_u64_or_max(t)? {
            Some(b) if b < unlimited_from => Limit::Bytes(b),
            _ => Limit::Unlimited,
        })
    })
}

/// Writes `settings` to memory cgroup `cg`. `first` says whether this is the
/// first time for this container: afterwards the hard limit is only raised.
/// Returns the hard limit now in force (as far as we changed it).
pub fn apply(cg: &Cgroup, settings: &MemorySettings, first: bool) -> Result<Limit, Error> {
    let current = read_hard_limit(cg)?;
    let wanted = next_hard_limit((!first).then_some(current), settings.hard);
    match cg.version() {
        Version::V1 => {
            cg.write("memory.soft_limit_in_bytes", &settings.soft.to_string())?;
            let Some(hard) = wanted else {
                return Ok(current);
            };
            let text = v1_text(hard);
            if settings.limit_swap {
                // The kernel requires limit ≤ memsw at every moment.
                if hard > current {
                    cg.write("memory.memsw.limit_in_bytes", &text)?;
                    cg.write("memory.limit_in_bytes", &text)?;
                } else {
                    cg.write("memory.limit_in_bytes", &text)?;
                    cg.write("memory.memsw.limit_in_bytes", &text)?;
                }
            } else {
                cg.write("memory.limit_in_bytes", &text)?;
            }
            Ok(hard)
        }
        Version::V2 => {
            cg.write("memory.low", &settings.soft.to_string())?;
            let Some(hard) = wanted else {
                return Ok(current);
            };
            cg.write("memory.max", &v2_text(hard))?;
            if settings.limit_swap {
                cg.write("memory.swap.max", "0")?;
            }
            Ok(hard)
        }
    }
}

/// Writes `pids.max` (`None` = `max`).
pub fn apply_pids_max(cg: &Cgroup, max: Option<u64>) -> Result<(), Error> {
    let text = max.map_or_else(|| "max".to_string(), |n| n.to_string());
    cg.write("pids.max", &text)
}

/// Reads `pids.max` (`None` = `max`).
pub fn read_pids_max(cg: &Cgroup) -> Result<Option<u64>, Error> {
    read_parsed(cg, "pids.max", parse_u64_or_max)
}

/// Reads `pids.current`.
pub fn read_pids_current(cg: &Cgroup) -> Result<u64, Error> {
    crate::stats::read_u64(cg, "pids.current")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const MB: u64 = 1024 * 1024;

    #[test]
    fn limits_follow_mesos() {
        assert_eq!(soft_limit(10 * MB), 32 * MB);
        assert_eq!(soft_limit(64 * MB), 64 * MB);
        assert_eq!(hard_limit(64 * MB, None), Limit::Bytes(64 * MB));
        assert_eq!(
            hard_limit(64 * MB, Some(Some(128 * MB))),
            Limit::Bytes(128 * MB)
        );
        assert_eq!(hard_limit(64 * MB, Some(Some(MB))), Limit::Bytes(32 * MB));
        assert_eq!(hard_limit(64 * MB, Some(None)), Limit::Unlimited);
        assert!(Limit::Unlimited > Limit::Bytes(u64::MAX));
    }

    #[test]
    fn hard_limit_is_only_raised() {
        let b = Limit::Bytes;
        assert_eq!(next_hard_limit(None, b(64)), Some(b(64)));
        assert_eq!(next_hard_limit(Some(b(64)), b(128)), Some(b(128)));
        assert_eq!(next_hard_limit(Some(b(128)), b(64)), None);
        assert_eq!(next_hard_limit(Some(b(64)), b(64)), None);
        assert_eq!(
            next_hard_limit(Some(b(64)), Limit::Unlimited),
            Some(Limit::Unlimited)
        );
        assert_eq!(next_hard_limit(Some(Limit::Unlimited), b(64)), None);
    }

    fn fixture(version: Version, files: &[(&str, &str)]) -> (tempfile::TempDir, Cgroup) {
        let dir = tempfile::tempdir().unwrap();
        let cg = Cgroup::new(dir.path(), Path::new("c"), version);
        std::fs::create_dir(cg.path()).unwrap();
        for (f, v) in files {
            std::fs::write(cg.path().join(f), v).unwrap();
        }
        (dir, cg)
    }

    const V1_UNLIMITED: &str = "9223372036854771712\n";

    #[test]
    fn apply_v1_first_time_then_only_raise() {
        let (_dir, cg) = fixture(
            Version::V1,
            &[
                ("memory.soft_limit_in_bytes", V1_UNLIMITED),
                ("memory.limit_in_bytes", V1_UNLIMITED),
                ("memory.memsw.limit_in_bytes", V1_UNLIMITED),
            ],
        );
        assert_eq!(read_hard_limit(&cg).unwrap(), Limit::Unlimited);
        let s = MemorySettings::mesos(64 * MB, None, true);
        assert_eq!(apply(&cg, &s, true).unwrap(), Limit::Bytes(64 * MB));
        assert_eq!(cg.read("memory.soft_limit_in_bytes").unwrap(), "67108864");
        assert_eq!(cg.read("memory.limit_in_bytes").unwrap(), "67108864");
        assert_eq!(cg.read("memory.memsw.limit_in_bytes").unwrap(), "67108864");
        // Lowering afterwards changes only the soft limit.
        let s = MemorySettings::mesos(40 * MB, None, true);
        assert_eq!(apply(&cg, &s, false).unwrap(), Limit::Bytes(64 * MB));
        assert_eq!(cg.read("memory.soft_limit_in_bytes").unwrap(), "41943040");
        assert_eq!(cg.read("memory.limit_in_bytes").unwrap(), "67108864");
        // Raising to unlimited.
        let s = MemorySettings::mesos(40 * MB, Some(None), false);
        assert_eq!(apply(&cg, &s, false).unwrap(), Limit::Unlimited);
        assert_eq!(cg.read("memory.limit_in_bytes").unwrap(), "-1");
    }

    #[test]
    fn apply_v2_writes_low_max_and_swap() {
        let (_dir, cg) = fixture(
            Version::V2,
            &[
                ("memory.low", "0\n"),
                ("memory.max", "max\n"),
                ("memory.swap.max", "max\n"),
            ],
        );
        let s = MemorySettings::mesos(64 * MB, Some(Some(128 * MB)), true);
        apply(&cg, &s, true).unwrap();
        assert_eq!(cg.read("memory.low").unwrap(), "67108864");
        assert_eq!(cg.read("memory.max").unwrap(), "134217728");
        assert_eq!(cg.read("memory.swap.max").unwrap(), "0");
        assert_eq!(read_hard_limit(&cg).unwrap(), Limit::Bytes(128 * MB));
    }

    #[test]
    fn garbage_limit_is_a_parse_error_with_the_path() {
        let (_dir, cg) = fixture(Version::V2, &[("memory.max", "lots\n")]);
        let e = read_hard_limit(&cg).unwrap_err();
        assert!(matches!(e, Error::Parse { .. }), "{e}");
        assert!(e.to_string().contains("memory.max"), "{e}");
    }

    #[test]
    fn pids_max() {
        let (_dir, cg) = fixture(
            Version::V1,
            &[("pids.max", "max\n"), ("pids.current", "3\n")],
        );
        assert_eq!(read_pids_max(&cg).unwrap(), None);
        apply_pids_max(&cg, Some(100)).unwrap();
        assert_eq!(read_pids_max(&cg).unwrap(), Some(100));
        apply_pids_max(&cg, None).unwrap();
        assert_eq!(cg.read("pids.max").unwrap(), "max");
        assert_eq!(read_pids_current(&cg).unwrap(), 3);
    }
}
