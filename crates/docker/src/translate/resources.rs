//! The resource rows of the §4.4 table: cpus and memory requests and
//! limits as the Engine API's `HostConfig` cgroup fields (CPU shares, CFS
//! quota, memory limit and soft limit, OOM score), shared by create and by
//! live update.

use crate::spec::MemoryLimit;

use super::TranslateError;

/// `MIN_MEMORY` in Mesos (32 MiB).
pub const MIN_MEMORY_BYTES: u64 = 32 * 1024 * 1024;

/// `max(1024 × cpus, 2)`, truncated like Mesos's integer conversion.
pub fn cpu_shares(cpus: f64) -> i64 {
    i64::try_from(phobos_cgroups::cpu::shares(cpus)).unwrap_or(i64::MAX)
}

/// `max(100 ms × cpus, 1 ms)` in µs.
pub fn cpu_quota_us(cpus: f64) -> i64 {
    match phobos_cgroups::cpu::cfs_quota(Some(cpus)) {
        phobos_cgroups::cpu::Quota::Micros(us) => i64::try_from(us).unwrap_or(i64::MAX),
        // Docker's "no quota" (callers pass finite limits only).
        phobos_cgroups::cpu::Quota::Unlimited => 0,
    }
}

/// `1000 − 1000·request/total`, clamped to `0..=1000` (0 when `total` is unknown).
pub fn oom_score_adj(request: u64, total_memory: u64) -> i64 {
    phobos_cgroups::memory::oom_score_adj(request, total_memory)
}

/// The resource part of the table, shared by create and live update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResourceFields {
    /// `CpuShares`.
    pub cpu_shares: Option<i64>,
    /// `CpuQuota` in µs; `Some(-1)` means "remove the quota" (update only).
    pub cpu_quota: Option<i64>,
    /// `Memory` in bytes.
    pub memory: Option<i64>,
    /// `MemoryReservation` in bytes.
    pub memory_reservation: Option<i64>,
    /// `OomScoreAdj` (create only: the engine cannot change it live).
    pub oom_score_adj: Option<i64>,
}

fn to_i64(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// Translate cpu and memory requests/limits (§4.4 rows 2–5).
///
/// `total_memory` is the host's memory in bytes (the engine's `MemTotal`),
/// used only for the OOM score adjustment.
pub fn resource_fields(
    resources: &crate::spec::DockerResources,
    total_memory: u64,
) -> Result<ResourceFields, TranslateError> {
    let mut out = ResourceFields::default();
    if let Some(req) = resources.cpus_request {
        if req.is_nan() || req < 0.0 || req.is_infinite() {
            return Err(TranslateError::InvalidCpus {
                which: "request",
                value: req,
            });
        }
        out.cpu_shares = Some(cpu_shares(req));
    }
    match resources.cpus_limit {
        Some(limit) if limit.is_nan() || limit < 0.0 => {
            return Err(TranslateError::InvalidCpus {
                which: "limit",
                value: limit,
            });
        }
        Some(limit) if limit.is_finite() => out.cpu_quota = Some(cpu_quota_us(limit)),
        // An infinite limit: no quota, even with cgroups_enable_cfs.
        Some(_) => out.cpu_quota = None,
        None => {
            if resources.cgroups_enable_cfs {
                out.cpu_quota = resources.cpus_request.map(cpu_quota_us);
            }
        }
    }

    let request = resources.mem_request;
    match (request, resources.mem_limit) {
        (Some(req), Some(MemoryLimit::Bytes(limit))) if req > limit => {
            return Err(TranslateError::MemRequestAboveLimit {
                request: req,
                limit,
            });
        }
        (req, Some(MemoryLimit::Bytes(limit))) => {
            out.memory = Some(to_i64(limit.max(MIN_MEMORY_BYTES)));
            if let Some(req) = req.filter(|r| *r < limit) {
                out.memory_reservation = Some(to_i64(req.max(MIN_MEMORY_BYTES)));
                out.oom_score_adj = Some(oom_score_adj(req, total_memory));
            }
        }
        (Some(req), Some(MemoryLimit::Unlimited)) => {
            out.memory_reservation = Some(to_i64(req.max(MIN_MEMORY_BYTES)));
            out.oom_score_adj = Some(oom_score_adj(req, total_memory));
        }
        (Some(req), None) => out.memory = Some(to_i64(req.max(MIN_MEMORY_BYTES))),
        (None, _) => {}
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::DockerResources;

    const GIB: u64 = 1024 * 1024 * 1024;
    const MIB: u64 = 1024 * 1024;

    fn resources(r: DockerResources) -> ResourceFields {
        resource_fields(&r, GIB).expect("valid resources")
    }

    #[test]
    fn cpu_shares_follow_mesos() {
        assert_eq!(cpu_shares(0.5), 512);
        assert_eq!(cpu_shares(1.25), 1280);
        assert_eq!(cpu_shares(2.0), 2048);
        assert_eq!(cpu_shares(0.001), 2);
        assert_eq!(cpu_shares(0.0), 2);
    }

    #[test]
    fn cpu_quota_follows_mesos() {
        assert_eq!(cpu_quota_us(1.5), 150_000);
        assert_eq!(cpu_quota_us(0.25), 25_000);
        assert_eq!(cpu_quota_us(0.001), 1_000);
        assert_eq!(cpu_quota_us(4.0), 400_000);
    }

    #[test]
    fn finite_cpu_limit_sets_quota_and_request_sets_shares() {
        let r = resources(DockerResources {
            cpus_request: Some(0.5),
            cpus_limit: Some(1.5),
            ..Default::default()
        });
        assert_eq!(r.cpu_shares, Some(512));
        assert_eq!(r.cpu_quota, Some(150_000));
    }

    #[test]
    fn infinite_cpu_limit_sets_no_quota_even_with_cfs() {
        let r = resources(DockerResources {
            cpus_request: Some(1.0),
            cpus_limit: Some(f64::INFINITY),
            cgroups_enable_cfs: true,
            ..Default::default()
        });
        assert_eq!(r.cpu_shares, Some(1024));
        assert_eq!(r.cpu_quota, None);
    }

    #[test]
    fn cfs_flag_derives_quota_from_request_only_without_limit() {
        let with_cfs = resources(DockerResources {
            cpus_request: Some(0.5),
            cgroups_enable_cfs: true,
            ..Default::default()
        });
        assert_eq!(with_cfs.cpu_quota, Some(50_000));
        let without = resources(DockerResources {
            cpus_request: Some(0.5),
            ..Default::default()
        });
        assert_eq!(without.cpu_quota, None);
    }

    #[test]
    fn negative_or_nan_cpus_are_errors() {
        let err = resource_fields(
            &DockerResources {
                cpus_request: Some(-1.0),
                ..Default::default()
            },
            GIB,
        )
        .unwrap_err();
        assert_eq!(
            err,
            TranslateError::InvalidCpus {
                which: "request",
                value: -1.0
            }
        );
        assert!(
            resource_fields(
                &DockerResources {
                    cpus_limit: Some(f64::NAN),
                    ..Default::default()
                },
                GIB,
            )
            .is_err()
        );
    }

    #[test]
    fn memory_limit_has_a_32_mib_floor() {
        let r = resources(DockerResources {
            mem_limit: Some(MemoryLimit::Bytes(16 * MIB)),
            ..Default::default()
        });
        assert_eq!(r.memory, Some((32 * MIB) as i64));
        assert_eq!(r.memory_reservation, None);
        assert_eq!(r.oom_score_adj, None);
    }

    #[test]
    fn memory_request_only_becomes_the_limit() {
        let r = resources(DockerResources {
            mem_request: Some(64 * MIB),
            ..Default::default()
        });
        assert_eq!(r.memory, Some((64 * MIB) as i64));
        assert_eq!(r.memory_reservation, None);
        assert_eq!(r.oom_score_adj, None);
    }

    #[test]
    fn memory_request_below_limit_sets_reservation_and_oom_score() {
        let r = resources(DockerResources {
            mem_request: Some(64 * MIB),
            mem_limit: Some(MemoryLimit::Bytes(128 * MIB)),
            ..Default::default()
        });
        assert_eq!(r.memory, Some((128 * MIB) as i64));
        assert_eq!(r.memory_reservation, Some((64 * MIB) as i64));
        // 1000 - 1000 * 64 MiB / 1 GiB = 1000 - 62 (integer division).
        assert_eq!(r.oom_score_adj, Some(938));
    }

    #[test]
    fn memory_request_equal_to_limit_sets_no_reservation() {
        let r = resources(DockerResources {
            mem_request: Some(256 * MIB),
            mem_limit: Some(MemoryLimit::Bytes(256 * MIB)),
            ..Default::default()
        });
        assert_eq!(r.memory, Some((256 * MIB) as i64));
        assert_eq!(r.memory_reservation, None);
        assert_eq!(r.oom_score_adj, None);
    }

    #[test]
    fn unlimited_memory_keeps_reservation_without_limit() {
        let r = resources(DockerResources {
            mem_request: Some(16 * MIB),
            mem_limit: Some(MemoryLimit::Unlimited),
            ..Default::default()
        });
        assert_eq!(r.memory, None);
        assert_eq!(r.memory_reservation, Some((32 * MIB) as i64));
        // 1000 - 1000 * 16 MiB / 1 GiB = 1000 - 15.
        assert_eq!(r.oom_score_adj, Some(985));
    }

    #[test]
    fn memory_request_above_limit_is_an_error() {
        let err = resource_fields(
            &DockerResources {
                mem_request: Some(2 * GIB),
                mem_limit: Some(MemoryLimit::Bytes(GIB)),
                ..Default::default()
            },
            GIB,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "mem request 2147483648 bytes exceeds the mem limit 1073741824 bytes"
        );
    }

    #[test]
    fn oom_score_adj_is_clamped() {
        assert_eq!(oom_score_adj(0, GIB), 1000);
        assert_eq!(oom_score_adj(GIB, GIB), 0);
        assert_eq!(oom_score_adj(4 * GIB, GIB), 0);
        assert_eq!(oom_score_adj(GIB, 0), 0);
    }
}
