//! The cpu controller: proportional weight and CFS bandwidth limits.
//!
//! * v1 (Documentation/scheduler/sched-bwc.rst, cgroup-v1 `cpu.shares`):
//!   `cpu.shares` (relative weight, default 1024), `cpu.cfs_period_us` and
//!   `cpu.cfs_quota_us` (µs of CPU per period, `-1` for none).
//! * v2 (cgroup-v2.rst "CPU"): `cpu.weight` (1..10000, default 100) and
//!   `cpu.max` = `"$QUOTA $PERIOD"` with `max` for no limit.
//!
//! Values follow Mesos's `cgroups/cpu` isolator (mesos-containerizer.md §8):
//! `shares = max(1024 × cpus, 2)`, period 100 ms, `quota = max(100 ms × cpus,
//! 1 ms)`. v2 weights come from shares with the mapping runc and the kernel
//! documentation use, so both versions order containers the same way.

use std::time::Duration;

use crate::cgroup::Cgroup;
use crate::error::Error;
use crate::hierarchy::Version;

/// `cpu.shares` per CPU.
pub const CPU_SHARES_PER_CPU: u64 = 1024;
/// `cpu.shares` per revocable CPU (`--revocable_cpu_low_priority`).
pub const CPU_SHARES_PER_CPU_REVOCABLE: u64 = 10;
/// The kernel's minimum `cpu.shares`.
pub const MIN_CPU_SHARES: u64 = 2;
/// The kernel's maximum `cpu.shares`.
pub const MAX_CPU_SHARES: u64 = 262_144;
/// CFS period.
pub const CPU_CFS_PERIOD: Duration = Duration::from_millis(100);
/// Smallest CFS quota we set.
pub const MIN_CPU_CFS_QUOTA: Duration = Duration::from_millis(1);

/// A CFS bandwidth quota per [`CPU_CFS_PERIOD`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quota {
    /// No limit (v1 `-1`, v2 `max`).
    Unlimited,
    /// This many microseconds of CPU time per period.
    Micros(u64),
}

/// `cpus` × `per_cpu`, truncated, at least [`MIN_CPU_SHARES`]. Negative or
/// NaN `cpus` count as zero.
fn scaled_shares(cpus: f64, per_cpu: u64) -> u64 {
    // `as` saturates: NaN and negatives become 0, huge values u64::MAX.
    ((per_cpu as f64 * cpus) as u64).max(MIN_CPU_SHARES)
}

/// `cpu.shares` for a request of `cpus`: `max(1024 × cpus, 2)`.
pub fn shares(cpus: f64) -> u64 {
    scaled_shares(cpus, CPU_SHARES_PER_CPU)
}

/// `cpu.shares` for revocable CPUs: `max(10 × cpus, 2)`.
pub fn revocable_shares(cpus: f64) -> u64 {
    scaled_shares(cpus, CPU_SHARES_PER_CPU_REVOCABLE)
}

/// The CFS quota for a limit of `cpus` (`None` = infinite):
/// `max(100 ms × cpus, 1 ms)` in µs.
pub fn cfs_quota(cpus: Option<f64>) -> Quota {
    match cpus {
        None => Quota::Unlimited,
        Some(c) if c.is_infinite() && c > 0.0 => Quota::Unlimited,
        Some(c) => {
            let period = CPU_CFS_PERIOD.as_micros() as f64;
            let min = MIN_CPU_CFS_QUOTA.as_micros() as u64;
            Quota::Micros(((period * c) as u64).max(min))
        }
    }
}

/// v2 `cpu.weight` for v1 `shares`: `1 + ((shares − 2) × 9999) / 262142`,
/// mapping [2, 262144] onto [1, 10000] (shares are clamped to that range).
pub fn weight_from_shares(shares: u64) -> u64 {
    let shares = shares.clamp(MIN_CPU_SHARES, MAX_CPU_SHARES);
    1 + ((shares - 2) * 9999) / 262_142
}

/// v1 `cpu.cfs_quota_us` text.
pub fn quota_v1(quota: Quota) -> String {
    match quota {
        Quota::Unlimited => "-1".to_string(),
        Quota::Micros(us) => us.to_string(),
    }
}

/// v2 `cpu.max` text: `"$QUOTA $PERIOD"`.
pub fn cpu_max(quota: Quota) -> String {
    let period = CPU_CFS_PERIOD.as_micros();
    match quota {
        Quota::Unlimited => format!("max {period}"),
        Quota::Micros(us) => format!("{us} {period}"),
    }
}

/// What to write for one container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuSettings {
    /// v1 shares (v2 gets [`weight_from_shares`]).
    pub shares: u64,
    /// CFS bandwidth, when enforced (a limit, or `--cgroups_enable_cfs`).
    pub quota: Option<Quota>,
}

impl CpuSettings {
    /// Mesos's settings: shares from the request (revocable or not), quota
    /// from the limit when there is one, else from the request when `cfs`
    /// is on. `limit` of `Some(None)` is an infinite limit.
    pub fn mesos(request: f64, limit: Option<Option<f64>>, revocable: bool, cfs: bool) -> Self {
        let shares = if revocable {
            revocable_shares(request)
        } else {
            shares(request)
        };
        let quota = match limit {
            Some(limit) => Some(cfs_quota(limit)),
            None if cfs => Some(cfs_quota(Some(request))),
            None => None,
        };
        CpuSettings { shares, quota }
    }
}

/// Writes `settings` to cpu cgroup `cg`: v1 `cpu.shares` and, with a quota,
/// `cpu.cfs_period_us` then `cpu.cfs_quota_us`; v2 `cpu.weight` and
/// `cpu.max`.
pub fn apply(cg: &Cgroup, settings: &CpuSettings) -> Result<(), Error> {
    match cg.version() {
        Version::V1 => {
            cg.write("cpu.shares", &settings.shares.to_string())?;
            if let Some(quota) = settings.quota {
                cg.write("cpu.cfs_period_us", &CPU_CFS_PERIOD.as_micros().to_string())?;
                cg.write("cpu.cfs_quota_us", &quota_v1(quota))?;
            }
        }
        Version::V2 => {
            cg.write(
                "cpu.weight",
                &weight_from_shares(settings.shares).to_string(),
            )?;
            if let Some(quota) = settings.quota {
                cg.write("cpu.max", &cpu_max(quota))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn shares_follow_mesos() {
        assert_eq!(shares(1.0), 1024);
        assert_eq!(shares(0.5), 512);
        assert_eq!(shares(2.25), 2304);
        assert_eq!(shares(0.001), 2);
        assert_eq!(shares(0.0), 2);
        assert_eq!(shares(-3.0), 2);
        assert_eq!(shares(f64::NAN), 2);
        assert_eq!(revocable_shares(1.0), 10);
        assert_eq!(revocable_shares(0.1), 2);
    }

    #[test]
    fn quota_follows_mesos() {
        assert_eq!(cfs_quota(Some(1.0)), Quota::Micros(100_000));
        assert_eq!(cfs_quota(Some(0.5)), Quota::Micros(50_000));
        assert_eq!(cfs_quota(Some(2.5)), Quota::Micros(250_000));
        assert_eq!(cfs_quota(Some(0.001)), Quota::Micros(1000));
        assert_eq!(cfs_quota(Some(0.0)), Quota::Micros(1000));
        assert_eq!(cfs_quota(None), Quota::Unlimited);
        assert_eq!(cfs_quota(Some(f64::INFINITY)), Quota::Unlimited);
        assert_eq!(quota_v1(Quota::Unlimited), "-1");
        assert_eq!(quota_v1(Quota::Micros(5000)), "5000");
        assert_eq!(cpu_max(Quota::Unlimited), "max 100000");
        assert_eq!(cpu_max(Quota::Micros(50_000)), "50000 100000");
    }

    #[test]
    fn weight_mapping_matches_runc() {
        assert_eq!(weight_from_shares(2), 1);
        assert_eq!(weight_from_shares(1024), 39);
        assert_eq!(weight_from_shares(262_144), 10_000);
        assert_eq!(weight_from_shares(0), 1);
        assert_eq!(weight_from_shares(u64::MAX), 10_000);
        assert_eq!(weight_from_shares(512), 20);
    }

    #[test]
    fn mesos_settings() {
        let s = CpuSettings::mesos(1.5, None, false, false);
        assert_eq!(
            s,
            CpuSettings {
                shares: 1536,
                quota: None
            }
        );
        let s = CpuSettings::mesos(1.5, None, false, true);
        assert_eq!(s.quota, Some(Quota::Micros(150_000)));
        let s = CpuSettings::mesos(1.0, Some(Some(3.0)), false, false);
        assert_eq!(s.quota, Some(Quota::Micros(300_000)));
        let s = CpuSettings::mesos(1.0, Some(None), true, false);
        assert_eq!(
            s,
            CpuSettings {
                shares: 10,
                quota: Some(Quota::Unlimited)
            }
        );
    }

    fn fixture(version: Version, files: &[&str]) -> (tempfile::TempDir, Cgroup) {
        let dir = tempfile::tempdir().unwrap();
        let cg = Cgroup::new(dir.path(), Path::new("c"), version);
        std::fs::create_dir(cg.path()).unwrap();
        for f in files {
            std::fs::write(cg.path().join(f), "").unwrap();
        }
        (dir, cg)
    }

    #[test]
    fn apply_v1_writes_shares_period_and_quota() {
        let (_dir, cg) = fixture(
            Version::V1,
            &["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"],
        );
        apply(&cg, &CpuSettings::mesos(0.5, Some(None), false, false)).unwrap();
        assert_eq!(cg.read("cpu.shares").unwrap(), "512");
        assert_eq!(cg.read("cpu.cfs_period_us").unwrap(), "100000");
        assert_eq!(cg.read("cpu.cfs_quota_us").unwrap(), "-1");
    }

    #[test]
    fn apply_v2_writes_weight_and_max() {
        let (_dir, cg) = fixture(Version::V2, &["cpu.weight", "cpu.max"]);
        apply(
            &cg,
            &CpuSettings::mesos(1.0, Some(Some(0.25)), false, false),
        )
        .unwrap();
        assert_eq!(cg.read("cpu.weight").unwrap(), "39");
        assert_eq!(cg.read("cpu.max").unwrap(), "25000 100000");
    }

    #[test]
    fn apply_without_the_files_names_the_file() {
        let (_dir, cg) = fixture(Version::V1, &[]);
        let e = apply(&cg, &CpuSettings::mesos(1.0, None, false, false)).unwrap_err();
        assert!(e.to_string().contains("cpu.shares"), "{e}");
    }
}
