//! The `cgroups/*` isolators (Mesos `CgroupsIsolatorProcess`, §3.7): one
//! isolator for every `cgroups/*` name, with one cgroup per container per
//! hierarchy at `<hierarchy>/<cgroups_root>/<id>` (cgroups(7)). On a v1 or
//! hybrid host each controller may be its own hierarchy (this project's
//! host mounts `cpu` and `cpuacct` separately), so a container can have
//! several directories; on a v2 host it has one, shared with the linux
//! launcher's freezer cgroup.
//!
//! * `cgroups/cpu`: `cpu` + `cpuacct` — shares/weight from the request,
//!   CFS quota (`cpu.cfs_quota_us` / `cpu.max`) from the limit or, with
//!   `cgroups_enable_cfs`, the request; usage from `cpuacct.stat` (v1) or
//!   `cpu.stat` (v2).
//! * `cgroups/mem`: soft limit (`memory.soft_limit_in_bytes` / `memory.low`)
//!   and hard limit (`memory.limit_in_bytes` / `memory.max`), optional swap
//!   limit, `oom_score_adj` for tasks whose soft limit is below the hard
//!   one, and an OOM watch handed to init through the launch info.
//! * `cgroups/pids`: `pids.max` from the pids limit; process/thread counts.
//! * `cgroups/blkio`: block I/O counters (`blkio.throttle.*` / `io.stat`).
//! * `cgroups/cpuset`, `cgroups/hugetlb`: membership only, as in Mesos
//!   (a v1 cpuset cgroup inherits its parent's CPUs and memory nodes).
//! * `cgroups/net_cls`, `cgroups/net_prio` (v1 only), `cgroups/perf_event`
//!   (v1, or implicit in the container's cgroup2 directory): membership
//!   only, and with `cgroups_net_cls_primary_handle` a classid per
//!   container (`net_cls.rs`, Mesos's handles).
//! * `cgroups/all`: every one of those the host has.
//!
//! All limits are computed by `phobos_cgroups::{cpu, memory}` (Mesos's
//! formulas); this module decides which cgroups get which files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use phobos_cgroups::files::Reader;
use phobos_cgroups::stats::{self, DeviceIo};
use phobos_cgroups::{Cgroup, Controller, Hierarchies, ProcCgroups, Version, cpu, memory};
use phobos_core::statistics::{
    BlkioOperation, BlkioStatistics, BlkioThrottlingStatistics, BlkioValue, DeviceNumber,
};
use phobos_core::{
    ContainerConfig, ContainerId, IsolatorFlags, Reason, ResourceStatistics, Resources,
};

use super::{Isolator, IsolatorError, Limitation};
pub use subsystem::Subsystem;

mod net_cls;
mod subsystem;
use crate::launch_info::{CgroupPath, Contribution, OomWatch};

/// How long cleanup waits for a cgroup's last processes to go.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

/// The `cgroups/*` isolator of one container configuration.
#[derive(Debug)]
pub struct CgroupsIsolator {
    /// Shared: measuring thousands of containers builds one isolator each.
    hierarchies: Arc<Hierarchies>,
    root: PathBuf,
    subsystems: Vec<Subsystem>,
    flags: IsolatorFlags,
    /// The resources the container was launched (or last updated) with.
    resources: Resources,
    /// Who made the top-level cgroup (its name differs with systemd).
    driver: phobos_core::CgroupsDriver,
    /// Spare v1 directories renamed into place instead of made.
    spares: Option<std::sync::Arc<phobos_cgroups::spare::Spares>>,
}

impl CgroupsIsolator {
    /// The isolator of `config` on the host's `hierarchies`. A subsystem
    /// the host lacks is an error naming it, unless it came from
    /// `cgroups/all`, which loads only what the kernel has.
    pub fn for_config(
        hierarchies: &Arc<Hierarchies>,
        config: &super::Spec<'_>,
        subsystems: &[Subsystem],
        all: bool,
    ) -> Result<Self, IsolatorError> {
        let mut isolator = Self::with_hierarchies(
            Arc::clone(hierarchies),
            config.cgroups_root,
            subsystems,
            all,
            config.isolator_flags.clone(),
        )?;
        isolator.resources = config.resources.clone();
        isolator.driver = config.cgroups_driver;
        Ok(isolator)
    }

    /// Takes a top-level container's v1 directories from `spares` when it
    /// has them ready (with the cgroupfs driver; a scope is systemd's).
    pub fn with_spares(
        mut self,
        spares: Option<std::sync::Arc<phobos_cgroups::spare::Spares>>,
    ) -> Self {
        self.spares = spares;
        self
    }

    /// The isolator on given hierarchies (fixtures), with no resources.
    pub fn with_hierarchies(
        hierarchies: impl Into<Arc<Hierarchies>>,
        cgroups_root: &str,
        subsystems: &[Subsystem],
        all: bool,
        flags: IsolatorFlags,
    ) -> Result<Self, IsolatorError> {
        let hierarchies: Arc<Hierarchies> = hierarchies.into();
        let mut chosen = Vec::new();
        for &sub in subsystems {
            if chosen.contains(&sub) {
                continue;
            }
            let mut missing = sub
                .controllers(&hierarchies)
                .into_iter()
                .find_map(|c| hierarchies.missing_reason(c));
            if sub == Subsystem::Devices && hierarchies.unified_mount().is_none() {
                missing = hierarchies.missing_reason(Controller::Devices);
            }
            let on_v2 = |c| hierarchies.locate(c).map(|l| l.0) == Some(Version::V2);
            if sub == Subsystem::Hugetlb && sub.controllers(&hierarchies).is_empty() {
                missing = Some(
                    "hugetlb is on the hybrid host's cgroup2 tree, beside v1 resource controllers"
                        .to_owned(),
                );
            }
            if sub == Subsystem::PerfEvent
                && on_v2(Controller::PerfEvent)
                && !on_v2(Controller::Memory)
            {
                missing = Some(
                    "perf_event is on the hybrid host's cgroup2 tree, beside v1 resource controllers"
                        .to_owned(),
                );
            }
            match missing {
                None => chosen.push(sub),
                Some(_) if all => {}
                Some(reason) => {
                    return Err(IsolatorError::Unavailable {
                        isolator: sub.isolator_name(),
                        reason,
                    });
                }
            }
        }
        Ok(Self {
            hierarchies,
            root: PathBuf::from(cgroups_root),
            subsystems: chosen,
            flags,
            resources: Resources::default(),
            driver: phobos_core::CgroupsDriver::Cgroupfs,
            spares: None,
        })
    }

    /// Kills and removes every container cgroup under `cgroups_root` in
    /// the resource hierarchies whose name `known` does not claim (its
    /// container has no runtime directory). Returns the names removed and
    /// the errors met, continuing past them.
    pub fn sweep_orphans(
        hierarchies: &Hierarchies,
        cgroups_root: &str,
        known: impl Fn(&str) -> bool,
    ) -> (Vec<String>, Vec<String>) {
        let mut removed = Vec::new();
        let mut errors = Vec::new();
        let mut roots: Vec<Cgroup> = Vec::new();
        for sub in Subsystem::ALL.into_iter().chain([Subsystem::Devices]) {
            for c in sub.controllers(hierarchies) {
                if let Some(cg) = hierarchies.cgroup(c, Path::new(cgroups_root))
                    && cg.exists()
                    && !roots.iter().any(|r| r.path() == cg.path())
                {
                    roots.push(cg);
                }
            }
        }
        for root in roots {
            let names = match root.children() {
                Ok(names) => names,
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            };
            for name in names.into_iter().filter(|n| !known(n)) {
                let cg = root.child(&name);
                // Only our own container cgroups: never another root nested
                // under ours, nor anything we did not mark.
                if !cg.is_container(&name) {
                    continue;
                }
                match cg
                    .kill_all(CLEANUP_TIMEOUT)
                    .and_then(|()| cg.remove(CLEANUP_TIMEOUT))
                {
                    Ok(()) if !removed.contains(&name) => removed.push(name),
                    Ok(()) => {}
                    Err(e) => errors.push(format!("orphan cgroup {name}: {e}")),
                }
            }
        }
        (removed, errors)
    }

    /// The `net_cls.classid` `cgroups/net_cls` gave the container of
    /// `config` (Mesos `ContainerStatus.cgroup_info.net_cls.classid`);
    /// `None` without a primary handle or a classid.
    pub fn net_cls_classid(
        hierarchies: &Hierarchies,
        config: &phobos_core::ConfigSummary,
    ) -> Option<u32> {
        config.isolator_flags.cgroups_net_cls_primary_handle?;
        if !config
            .isolation
            .iter()
            .any(|n| n == "cgroups/net_cls" || n == "cgroups/all")
        {
            return None;
        }
        let rel = Path::new(&config.cgroups_root).join(crate::launcher::cgroup_rel(
            config.cgroups_driver,
            &config.id,
        ));
        let cg = hierarchies.cgroup(Controller::NetCls, &rel)?;
        net_cls::read_classid(cg.path())
    }

    /// The subsystems in use.
    pub fn subsystems(&self) -> &[Subsystem] {
        &self.subsystems
    }

    fn has(&self, sub: Subsystem) -> bool {
        self.subsystems.contains(&sub)
    }

    fn rel(&self, id: &ContainerId) -> PathBuf {
        self.root.join(crate::launcher::cgroup_rel(self.driver, id))
    }

    /// The container's cgroup in the hierarchy holding `c`.
    pub fn cgroup(&self, id: &ContainerId, c: Controller) -> Option<Cgroup> {
        self.hierarchies.cgroup(c, &self.rel(id))
    }

    /// The controllers attached to the v1 hierarchy `cg` is in.
    fn v1_controllers(&self, cg: &Cgroup) -> Option<Vec<Controller>> {
        self.hierarchies
            .v1_hierarchies()
            .iter()
            .find(|h| h.mount == cg.mount())
            .map(|h| h.controllers.clone())
            .filter(|c| !c.is_empty())
    }

    /// Every distinct cgroup directory of the container, with the
    /// controllers to enable in it.
    fn cgroups(&self, id: &ContainerId) -> Vec<(Cgroup, Vec<Controller>)> {
        let mut out: Vec<(Cgroup, Vec<Controller>)> = Vec::new();
        for sub in &self.subsystems {
            for c in sub.controllers(&self.hierarchies) {
                let Some(cg) = self.cgroup(id, c) else {
                    continue;
                };
                match out.iter_mut().find(|(o, _)| o.path() == cg.path()) {
                    Some((_, cs)) => cs.push(c),
                    None => out.push((cg, vec![c])),
                }
            }
        }
        // Device control without a v1 controller: the cgroup2 directory the
        // device program is attached to (no controller needed).
        if let Some(cg) = self.device_program_cgroup(id)
            && !out.iter().any(|(o, _)| o.path() == cg.path())
        {
            out.push((cg, Vec::new()));
        }
        out
    }

    /// The cgroup2 directory that gets the device eBPF program, when
    /// `cgroups/devices` is on and the host has no v1 devices controller.
    fn device_program_cgroup(&self, id: &ContainerId) -> Option<Cgroup> {
        if !self.has(Subsystem::Devices) || self.hierarchies.locate(Controller::Devices).is_some() {
            return None;
        }
        let mount = self.hierarchies.unified_mount()?;
        Some(Cgroup::new(mount, &self.rel(id), Version::V2))
    }

    fn fail(&self, name: &'static str, id: &ContainerId, e: impl ToString) -> IsolatorError {
        IsolatorError::Failed {
            isolator: name,
            id: id.clone(),
            message: e.to_string(),
        }
    }

    /// Writes the CPU settings for `r`; `None` request and limit (and no
    /// CFS flag) leave the kernel defaults.
    fn apply_cpu(&self, id: &ContainerId, r: &Resources) -> Result<(), IsolatorError> {
        let Some(cg) = self.cgroup(id, Controller::Cpu) else {
            return Ok(());
        };
        let err = |e| self.fail("cgroups/cpu", id, e);
        let cfs = self.flags.cgroups_enable_cfs;
        match r.cpus {
            Some(request) => {
                let settings = cpu::CpuSettings::mesos(request, r.cpus_limit_value(), false, cfs);
                cpu::apply(&cg, &settings).map_err(err)?;
            }
            None => {
                if let Some(limit) = r.cpus_limit_value() {
                    write_quota(&cg, cpu::cfs_quota(limit)).map_err(err)?;
                }
            }
        }
        Ok(())
    }

    /// Writes the memory settings; `first` for the initial write (the hard
    /// limit is only raised afterwards, unless forced).
    fn apply_mem(&self, id: &ContainerId, r: &Resources, first: bool) -> Result<(), IsolatorError> {
        let Some(cg) = self.cgroup(id, Controller::Memory) else {
            return Ok(());
        };
        if r.mem.is_none() && r.mem_limit.is_none() {
            return Ok(());
        }
        let settings = memory::MemorySettings::mesos(
            r.mem_bytes().unwrap_or(0),
            r.mem_limit_bytes(),
            self.flags.cgroups_limit_swap,
        );
        memory::apply(&cg, &settings, first)
            .map(drop)
            .map_err(|e| self.fail("cgroups/mem", id, e))
    }

    /// Writes `pids.max`; on a cgroup this launch made (`fresh`) no limit
    /// is the kernel's default `max` already, so nothing is written.
    fn apply_pids(
        &self,
        id: &ContainerId,
        r: &Resources,
        fresh: bool,
    ) -> Result<(), IsolatorError> {
        if fresh && r.pids_limit.is_none() {
            return Ok(());
        }
        let Some(cg) = self.cgroup(id, Controller::Pids) else {
            return Ok(());
        };
        memory::apply_pids_max(&cg, r.pids_limit).map_err(|e| self.fail("cgroups/pids", id, e))
    }

    /// Writes the limits of `r`: `first` for the initial write (see
    /// [`Self::apply_mem`]), `fresh` when every directory was made by this
    /// launch and so holds the kernel's defaults.
    fn apply_all(
        &self,
        id: &ContainerId,
        r: &Resources,
        first: bool,
        fresh: bool,
    ) -> Result<(), IsolatorError> {
        if self.has(Subsystem::Cpu) {
            self.apply_cpu(id, r)?;
        }
        if self.has(Subsystem::Mem) {
            self.apply_mem(id, r, first)?;
        }
        if self.has(Subsystem::Pids) {
            self.apply_pids(id, r, fresh)?;
        }
        Ok(())
    }

    fn cpu_usage(
        &self,
        rel: &Path,
        files: &mut Reader<'_>,
        out: &mut ResourceStatistics,
    ) -> Result<(), String> {
        let acct = self
            .hierarchies
            .cgroup(Controller::Cpuacct, rel)
            .ok_or("no cpuacct hierarchy")?;
        match acct.version() {
            Version::V1 => {
                let s = files.cpuacct_stat(&acct).map_err(|e| e.to_string())?;
                let tck = stats::clock_ticks_per_second();
                out.cpus_user_time_secs = Some(s.user_secs(tck));
                out.cpus_system_time_secs = Some(s.system_secs(tck));
                out.processes = Some(count_lines(files, &acct, "cgroup.procs")?);
                if !self.has(Subsystem::Pids) {
                    out.threads = Some(count_lines(files, &acct, "tasks")?);
                }
            }
            Version::V2 => {
                let s = files.cpu_stat(&acct).map_err(|e| e.to_string())?;
                out.cpus_user_time_secs = s.user.map(|d| d.as_secs_f64());
                out.cpus_system_time_secs = s.system.map(|d| d.as_secs_f64());
                out.processes = Some(count_own_procs(&acct)?);
            }
        }
        let cpu = self
            .hierarchies
            .cgroup(Controller::Cpu, rel)
            .ok_or("no cpu hierarchy")?;
        // Throttling counters are reported when a quota is enforced (§8).
        let cfs = self.flags.cgroups_enable_cfs || self.resources.cpus_limit.is_some();
        if cfs && let Ok(s) = files.cpu_stat(&cpu) {
            out.cpus_nr_periods = s.nr_periods.map(saturate_u32);
            out.cpus_nr_throttled = s.nr_throttled.map(saturate_u32);
            out.cpus_throttled_time_secs = s.throttled.map(|d| d.as_secs_f64());
        }
        Ok(())
    }

    fn mem_usage(
        &self,
        rel: &Path,
        files: &mut Reader<'_>,
        out: &mut ResourceStatistics,
    ) -> Result<(), String> {
        let cg = self
            .hierarchies
            .cgroup(Controller::Memory, rel)
            .ok_or("no memory hierarchy")?;
        out.mem_total_bytes = Some(files.memory_usage(&cg).map_err(|e| e.to_string())?);
        let s = files.memory_stat(&cg).map_err(|e| e.to_string())?;
        out.mem_rss_bytes = Some(s.anon);
        out.mem_anon_bytes = Some(s.anon);
        out.mem_cache_bytes = Some(s.file);
        out.mem_file_bytes = Some(s.file);
        out.mem_mapped_file_bytes = Some(s.mapped_file);
        out.mem_unevictable_bytes = Some(s.unevictable);
        out.mem_swap_bytes = match cg.version() {
            Version::V1 => s.swap,
            Version::V2 => files.read_u64(&cg, "memory.swap.current").ok(),
        };
        if self.flags.cgroups_limit_swap && cg.version() == Version::V1 {
            out.mem_total_memsw_bytes = files.read_u64(&cg, "memory.memsw.usage_in_bytes").ok();
        }
        Ok(())
    }

    fn pids_usage(
        &self,
        rel: &Path,
        files: &mut Reader<'_>,
        out: &mut ResourceStatistics,
    ) -> Result<(), String> {
        let cg = self
            .hierarchies
            .cgroup(Controller::Pids, rel)
            .ok_or("no pids hierarchy")?;
        if out.processes.is_none() {
            out.processes = Some(match cg.version() {
                Version::V1 => count_lines(files, &cg, "cgroup.procs")?,
                Version::V2 => count_own_procs(&cg)?,
            });
        }
        // pids.current counts tasks, i.e. threads.
        let current = files
            .read_u64(&cg, "pids.current")
            .map_err(|e| e.to_string())?;
        out.threads = Some(saturate_u32(current));
        Ok(())
    }

    fn blkio_usage(
        &self,
        rel: &Path,
        _files: &mut Reader<'_>,
        out: &mut ResourceStatistics,
    ) -> Result<(), String> {
        let c = Subsystem::Blkio.controllers(&self.hierarchies)[0];
        let cg = self
            .hierarchies
            .cgroup(c, rel)
            .ok_or("no blkio hierarchy")?;
        let (bytes, ios) = match cg.version() {
            Version::V1 => (
                stats::blkio_service_bytes(&cg)
                    .map_err(|e| e.to_string())?
                    .devices,
                stats::blkio_serviced(&cg)
                    .map_err(|e| e.to_string())?
                    .devices,
            ),
            Version::V2 => {
                let s = stats::io_stat(&cg).map_err(|e| e.to_string())?;
                (s.bytes, s.ios)
            }
        };
        out.blkio_statistics = Some(blkio_statistics(&bytes, &ios));
        Ok(())
    }
}

impl CgroupsIsolator {
    /// Mesos's `perf_event` sampling (`perf_events`, `perf_duration`):
    /// the events counted in the container's perf_event cgroup for the
    /// duration, as `PerfStatistics`.
    fn perf_usage(&self, id: &ContainerId, out: &mut ResourceStatistics) -> Result<(), String> {
        let events = self
            .flags
            .perf_events
            .iter()
            .map(|name| phobos_core::perf::event(name))
            .collect::<Result<Vec<_>, _>>()?;
        let cg = self
            .cgroup(id, Controller::PerfEvent)
            .filter(Cgroup::exists)
            .ok_or("the container has no perf_event cgroup")?;
        let duration =
            std::time::Duration::from_secs_f64(self.flags.perf_duration_secs.unwrap_or(10.0));
        let started = phobos_core::time::now_secs();
        let kinds: Vec<(u32, u64)> = events.iter().map(|e| (e.kind, e.config)).collect();
        let counts =
            phobos_cgroups::perf::sample(cg.path(), &kinds, duration).map_err(|e| e.to_string())?;
        let mut perf = phobos_core::perf::PerfStatistics {
            timestamp: started,
            duration: duration.as_secs_f64(),
            ..Default::default()
        };
        for (event, count) in events.iter().zip(counts) {
            let value = if event.is_clock() {
                phobos_core::perf::PerfValue::Millis(count as f64 / 1e6)
            } else {
                phobos_core::perf::PerfValue::Count(count)
            };
            perf.counters.insert(event.field(), value);
        }
        out.perf = Some(perf);
        Ok(())
    }
}

/// Reads one subsystem's statistics into the snapshot.
type UsageReader =
    fn(&CgroupsIsolator, &Path, &mut Reader<'_>, &mut ResourceStatistics) -> Result<(), String>;

fn saturate_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn count_lines(files: &mut Reader<'_>, cg: &Cgroup, file: &str) -> Result<u32, String> {
    let lines = files.count_lines(cg, file).map_err(|e| e.to_string())?;
    Ok(saturate_u32(lines))
}

/// The container's own processes on cgroup2: in its cgroup's leaf (or, in
/// the layout before leaves, the cgroup itself), not its nested
/// containers'. (CPU time, memory, pids and io are hierarchical files of
/// the container's cgroup.)
fn count_own_procs(cg: &Cgroup) -> Result<u32, String> {
    let pids = cg.own_procs().map_err(|e| e.to_string())?;
    Ok(saturate_u32(pids.len() as u64))
}

fn write_quota(cg: &Cgroup, quota: cpu::Quota) -> Result<(), phobos_cgroups::Error> {
    match cg.version() {
        Version::V1 => {
            cg.write(
                "cpu.cfs_period_us",
                &cpu::CPU_CFS_PERIOD.as_micros().to_string(),
            )?;
            cg.write("cpu.cfs_quota_us", &cpu::quota_v1(quota))
        }
        Version::V2 => cg.write("cpu.max", &cpu::cpu_max(quota)),
    }
}

/// Mesos's throttling statistics from per-device bytes and operations.
pub fn blkio_statistics(bytes: &[DeviceIo], ios: &[DeviceIo]) -> BlkioStatistics {
    let values = |d: &DeviceIo| {
        vec![
            BlkioValue {
                op: BlkioOperation::Total,
                value: d.total,
            },
            BlkioValue {
                op: BlkioOperation::Read,
                value: d.read,
            },
            BlkioValue {
                op: BlkioOperation::Write,
                value: d.write,
            },
            BlkioValue {
                op: BlkioOperation::Sync,
                value: d.sync,
            },
            BlkioValue {
                op: BlkioOperation::Async,
                value: d.async_,
            },
            BlkioValue {
                op: BlkioOperation::Discard,
                value: d.discard,
            },
        ]
    };
    let mut throttling: Vec<BlkioThrottlingStatistics> = Vec::new();
    for b in bytes {
        throttling.push(BlkioThrottlingStatistics {
            device: Some(DeviceNumber {
                major_number: b.major,
                minor_number: b.minor,
            }),
            io_service_bytes: values(b),
            io_serviced: Vec::new(),
        });
    }
    for o in ios {
        let dev = DeviceNumber {
            major_number: o.major,
            minor_number: o.minor,
        };
        match throttling.iter_mut().find(|t| t.device == Some(dev)) {
            Some(t) => t.io_serviced = values(o),
            None => throttling.push(BlkioThrottlingStatistics {
                device: Some(dev),
                io_serviced: values(o),
                io_service_bytes: Vec::new(),
            }),
        }
    }
    BlkioStatistics { throttling }
}

pub use phobos_cgroups::memory::oom_score_adj;

fn host_memory() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if pages > 0 && size > 0 {
        pages as u64 * size as u64
    } else {
        0
    }
}

/// The OOM limitation message: Mesos's wording with the limit and the peak
/// usage, then the cgroup's memory statistics.
pub fn oom_limitation(cg: &Cgroup) -> Limitation {
    let limit = match memory::read_hard_limit(cg) {
        Ok(memory::Limit::Bytes(b)) => b.to_string(),
        Ok(memory::Limit::Unlimited) => "unlimited".to_string(),
        Err(_) => "unknown".to_string(),
    };
    let peak = stats::memory_peak(cg)
        .or_else(|_| stats::memory_usage(cg))
        .map_or_else(|_| "unknown".to_string(), |b| b.to_string());
    let stat = cg.read("memory.stat").unwrap_or_default();
    Limitation {
        reason: Reason::ContainerLimitationMemory,
        message: format!(
            "Memory limit exceeded: Requested: {limit} bytes Maximum Used: {peak} bytes\n\nMEMORY STATISTICS: \n{stat}"
        ),
        resources: vec!["mem".into()],
    }
}

impl Isolator for CgroupsIsolator {
    fn name(&self) -> &'static str {
        "cgroups"
    }

    /// Creates the cgroups (an existing one is an error, as in Mesos: it
    /// belongs to another container) and writes the initial limits.
    fn prepare(&self, config: &ContainerConfig) -> Result<Option<Contribution>, IsolatorError> {
        let id = &config.id;
        let mut fresh = true;
        // The devices directory came from a spare that already holds the
        // default list (`prepare_spare`).
        let mut devices_written = false;
        let devices = self.cgroup(id, Controller::Devices);
        for (cg, controllers) in self.cgroups(id) {
            // v1: every controller of the hierarchy, so that a new cgroup
            // of a hierarchy with cpuset (and only there) gets its cpus
            // and mems.
            let controllers = match cg.version() {
                Version::V1 => self.v1_controllers(&cg).unwrap_or(controllers),
                Version::V2 => controllers,
            };
            // A spare is renamed into place (never over an existing
            // directory: EEXIST, and then the making below reports it).
            let taken = match !id.is_nested() && self.driver == phobos_core::CgroupsDriver::Cgroupfs
            {
                true => self.spares.as_ref().and_then(|s| s.take_prepared(&cg)),
                false => None,
            };
            let spare = taken.is_some();
            if taken == Some(true) && devices.as_ref().is_some_and(|d| d.path() == cg.path()) {
                devices_written = true;
            }
            let made = spare
                || cg
                    .create_new_with(&controllers)
                    .map_err(|e| self.fail("cgroups", id, e))?;
            fresh &= made;
            // On cgroup2 the launcher's freezer cgroup is the same directory;
            // only v1 directories are ours alone.
            if !made && cg.version() == Version::V1 {
                return Err(self.fail(
                    "cgroups",
                    id,
                    format!("cgroup {} already exists", cg.path().display()),
                ));
            }
            crate::launcher::mark_container_cgroup(&cg, id.leaf());
        }
        self.apply_all(id, &config.resources, true, fresh)?;
        if self.has(Subsystem::NetCls)
            && let Some(primary) = self.flags.cgroups_net_cls_primary_handle
            && let Some(cg) = self.cgroup(id, Controller::NetCls)
            && let Some(root) = self.hierarchies.cgroup(Controller::NetCls, &self.root)
        {
            let range = self
                .flags
                .cgroups_net_cls_secondary_handles
                .unwrap_or((1, 0xffff));
            net_cls::assign(root.path(), &cg, primary, range)
                .map_err(|e| self.fail("cgroups/net_cls", id, e))?;
        }
        if self.has(Subsystem::Devices)
            && let Some(cg) = devices
        {
            if !(devices_written && config.hardening.devices.is_empty()) {
                apply_devices(&cg, &config.hardening.devices)
                    .map_err(|e| self.fail("cgroups/devices", id, e))?;
            }
        } else if let Some(cg) = self.device_program_cgroup(id) {
            crate::security::devices::attach_program(cg.path(), &config.hardening.devices)
                .map_err(|e| self.fail("cgroups/devices", id, e))?;
        }
        let oom_watch = if self.has(Subsystem::Mem) {
            self.cgroup(id, Controller::Memory).map(|cg| OomWatch {
                cgroup: CgroupPath::from_cgroup(&cg),
            })
        } else {
            None
        };
        // oom_score_adj is inherited from init by the command (Mesos sets it
        // in isolate for command tasks whose soft limit is below the hard).
        Ok(Some(Contribution {
            oom_watch,
            ..Contribution::default()
        }))
    }

    fn join_files(&self, id: &ContainerId, own_memory: bool) -> super::JoinFiles {
        // A cpuset only for a joiner with memory of its own: its attach
        // rebinds the memory policy of the joining task's mm, which a
        // vfork-style child shares with the face.
        let mut files = super::JoinFiles::default();
        for (cg, controllers) in self.cgroups(id) {
            if cg.version() != Version::V1 {
                continue;
            }
            let list = match controllers.contains(&Controller::Cpuset) {
                false => &mut files.any,
                true if own_memory => &mut files.own_memory,
                true => continue,
            };
            list.extend(cg.open_tasks_to_join().ok());
        }
        files
    }

    fn isolate(&self, id: &ContainerId, pid: i32) -> Result<(), IsolatorError> {
        // Init may be in some of its cgroups already: created in the
        // cgroup2 one (CLONE_INTO_CGROUP), or moved into the v1 ones by
        // itself or its spawner (`join_files`). A needless migration still
        // takes the kernel's global threadgroup lock, so skip those.
        let cgroups = self.cgroups(id);
        let procs = match cgroups.is_empty() {
            false => u32::try_from(pid)
                .ok()
                .and_then(|pid| ProcCgroups::read(Path::new("/proc"), pid).ok()),
            true => None,
        };
        let total = cgroups.len();
        let mut moved = 0;
        for (cg, controllers) in cgroups {
            // On cgroup2 the processes go to the cgroup's leaf, so that it
            // can give controllers to nested containers (see
            // `phobos_cgroups::LEAF`); the limits stay on the cgroup.
            let home = match cg.version() {
                Version::V2 => cg.leaf(),
                Version::V1 => cg.clone(),
            };
            let now = procs.as_ref().and_then(|p| match cg.version() {
                Version::V2 => p.unified_path(),
                Version::V1 => controllers.first().and_then(|c| p.v1_path(*c)),
            });
            let already = now == Some(format!("/{}", home.rel().display()).as_str());
            if !already {
                // Prepare made it: join first, and make it again only if
                // it is gone (one write instead of a walk of the path).
                home.add_process(pid)
                    .or_else(|e| match e.is_not_found() {
                        true => home.create().and_then(|()| home.add_process(pid)),
                        false => Err(e),
                    })
                    .map_err(|e| self.fail("cgroups", id, e))?;
                moved += 1;
            }
        }
        tracing::debug!(container = %id, pid, "init moved into {moved} of its {total} cgroups");
        if self.has(Subsystem::Mem)
            && let Some(soft) = self.resources.mem_bytes()
        {
            let soft = memory::soft_limit(soft);
            let hard = memory::hard_limit(soft, self.resources.mem_limit_bytes());
            set_oom_score_adj(pid, soft, hard).map_err(|e| self.fail("cgroups/mem", id, e))?;
        }
        Ok(())
    }

    fn update(&self, id: &ContainerId, r: &Resources, force: bool) -> Result<(), IsolatorError> {
        if let Some((cg, _)) = self.cgroups(id).into_iter().find(|(cg, _)| !cg.exists()) {
            return Err(self.fail(
                "cgroups",
                id,
                format!("cgroup {} does not exist", cg.path().display()),
            ));
        }
        self.apply_all(id, r, force, false)
    }

    fn usage(
        &self,
        id: &ContainerId,
        ctx: &super::UsageContext<'_>,
    ) -> Result<Option<ResourceStatistics>, IsolatorError> {
        let mut out = ResourceStatistics::default();
        let mut files = ctx.cgroup_files.borrow_mut();
        let parts: [(Subsystem, UsageReader); 4] = [
            (Subsystem::Cpu, Self::cpu_usage),
            (Subsystem::Mem, Self::mem_usage),
            (Subsystem::Pids, Self::pids_usage),
            (Subsystem::Blkio, Self::blkio_usage),
        ];
        // The container's path below each hierarchy, made once.
        let rel = self.rel(id);
        for (sub, read) in parts {
            if self.has(sub) {
                read(self, &rel, &mut files, &mut out)
                    .map_err(|m| self.fail(sub.isolator_name(), id, m))?;
            }
        }
        if self.has(Subsystem::PerfEvent) && !self.flags.perf_events.is_empty() {
            self.perf_usage(id, &mut out)
                .map_err(|m| self.fail(Subsystem::PerfEvent.isolator_name(), id, m))?;
        }
        Ok(Some(out))
    }

    /// An OOM kill counted by the memory cgroup (a fallback for when init
    /// could not record it).
    fn limitation(&self, id: &ContainerId) -> Result<Option<Limitation>, IsolatorError> {
        if !self.has(Subsystem::Mem) {
            return Ok(None);
        }
        let Some(cg) = self.cgroup(id, Controller::Memory).filter(Cgroup::exists) else {
            return Ok(None);
        };
        match phobos_cgroups::oom::own_oom_kill_count(&cg) {
            Ok(n) if n > 0 => Ok(Some(oom_limitation(&cg))),
            _ => Ok(None),
        }
    }

    /// Kills whatever is left (the posix launcher does not use cgroups, so
    /// something may have escaped it) and removes every cgroup, continuing
    /// past failures.
    fn cleanup(&self, id: &ContainerId) -> Result<(), IsolatorError> {
        let mut errors = Vec::new();
        for (cg, _) in self.cgroups(id) {
            // After the launcher's kill these are empty: one rmdir each,
            // and the kill and the listing only when the kernel refuses.
            let result = cg.remove_if_empty().and_then(|gone| match gone {
                true => Ok(()),
                false => cg
                    .kill_all(CLEANUP_TIMEOUT)
                    .and_then(|()| cg.remove(CLEANUP_TIMEOUT)),
            });
            if let Err(e) = result {
                errors.push(e.to_string());
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(self.fail("cgroups", id, errors.join("; ")))
        }
    }
}

/// The agent's spare-cgroup preparer (`phobos_cgroups::spare::Preparer`):
/// a spare of a v1 hierarchy that holds the devices controller alone (its
/// mount named `devices`) gets the default device list every container's
/// devices cgroup starts with (deny all, then `DEFAULT_ALLOW`), so a
/// launch that takes it has nothing left to write there unless it allows
/// more devices. Other spares are left as they are (`false`).
pub fn prepare_spare(cg: &phobos_cgroups::Cgroup) -> Result<bool, phobos_cgroups::Error> {
    if cg.version() != Version::V1
        || cg.mount().file_name() != Some(std::ffi::OsStr::new("devices"))
        || !cg.has_file("devices.deny")
    {
        return Ok(false);
    }
    apply_devices(cg, &[])?;
    Ok(true)
}

/// Denies every device, then allows the default list and `extra`
/// (cgroup v1 `devices.deny`, `devices.allow`).
fn apply_devices(
    cg: &phobos_cgroups::Cgroup,
    extra: &[String],
) -> Result<(), phobos_cgroups::Error> {
    cg.write("devices.deny", "a")?;
    // One open of devices.allow for the whole list (one rule per write).
    cg.write_each(
        "devices.allow",
        crate::security::devices::DEFAULT_ALLOW
            .iter()
            .copied()
            .chain(extra.iter().map(String::as_str)),
    )
}

/// Writes `oom_score_adj` of `pid` for memory request `soft` and hard
/// limit `hard`, when the soft limit is below the hard one.
pub fn set_oom_score_adj(pid: i32, soft: u64, hard: memory::Limit) -> std::io::Result<()> {
    let below = match hard {
        memory::Limit::Unlimited => true,
        memory::Limit::Bytes(h) => soft < h,
    };
    if !below {
        return Ok(());
    }
    let path = Path::new("/proc")
        .join(pid.to_string())
        .join("oom_score_adj");
    std::fs::write(path, oom_score_adj(soft, host_memory()).to_string())
}

#[cfg(test)]
mod tests;
