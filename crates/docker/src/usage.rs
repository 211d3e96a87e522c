//! Cpu and memory usage of a Docker container, read from its cgroups.
//!
//! Like Mesos's `DockerContainerizer::usage()` (reference §4.5) we do not ask
//! the engine's stats endpoint (which samples for a second) but read the
//! kernel's accounting for the container's init process directly, with
//! phobos-cgroups:
//!
//! 1. `/proc/<pid>/cgroup` and `/proc/self/mountinfo` give the process's
//!    cgroup directory per controller ([`Hierarchies::process_cgroup`]): a v1
//!    hierarchy where one carries the controller, else the unified one — so
//!    pure v1, pure v2 and hybrid hosts all work;
//! 2. the statistics files there ([`phobos_cgroups::stats`]):
//!    - cgroup v1: `cpuacct.stat` `user`/`system` in clock ticks
//!      (÷ `sysconf(_SC_CLK_TCK)`), the cpu controller's `cpu.stat`
//!      throttling counters, `memory.stat` `total_rss` (hierarchical; `rss`
//!      when absent) and `memory.usage_in_bytes`;
//!    - cgroup v2: `cpu.stat` `user_usec`/`system_usec` and throttling,
//!      `memory.stat` `anon` and `memory.current`.
//!
//! A process in a root cgroup is refused, as Mesos does: the container is
//! gone or being destroyed.
//!
//! The proc and filesystem roots are injectable so tests run on fixture trees.

use std::path::PathBuf;

use phobos_cgroups::{Cgroup, Controller, Hierarchies, ProcCgroups, ProcessCgroup, Version, stats};

/// A container's resource usage, named after Mesos's `ResourceStatistics`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerUsage {
    /// User cpu time in seconds.
    pub cpus_user_time_secs: f64,
    /// System cpu time in seconds.
    pub cpus_system_time_secs: f64,
    /// CFS periods elapsed, when the kernel reports them.
    pub cpus_nr_periods: Option<u64>,
    /// CFS periods throttled.
    pub cpus_nr_throttled: Option<u64>,
    /// Time throttled, in seconds.
    pub cpus_throttled_time_secs: Option<f64>,
    /// Resident anonymous memory: v1 `total_rss` (or `rss`), v2 `anon`.
    pub mem_rss_bytes: u64,
    /// Total memory charged to the cgroup (v1 `memory.usage_in_bytes`, v2 `memory.current`).
    pub mem_total_bytes: Option<u64>,
    /// `cpu.shares / 1024`, filled in from the engine's view of the container.
    pub cpus_soft_limit: Option<f64>,
    /// `quota / period`, filled in from the engine's view of the container.
    pub cpus_limit: Option<f64>,
    /// Memory reservation in bytes, from the engine.
    pub mem_soft_limit_bytes: Option<u64>,
    /// Memory limit in bytes, from the engine.
    pub mem_limit_bytes: Option<u64>,
    /// Where the cpu figures came from.
    pub cpu_cgroup_version: Option<Version>,
    /// Where the memory figures came from.
    pub mem_cgroup_version: Option<Version>,
}

/// Why usage could not be read.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// A proc or cgroup file could not be read or parsed (the error names
    /// the file).
    #[error(transparent)]
    Cgroups(#[from] phobos_cgroups::Error),
    /// No mounted hierarchy gives the process's cgroup for a resource.
    #[error("no mounted cgroup hierarchy for {resource} of pid {pid}")]
    NoCgroup {
        /// The process.
        pid: u32,
        /// `cpu` or `memory`.
        resource: &'static str,
    },
    /// The process sits in a root cgroup.
    #[error("pid {pid} is in the root {resource} cgroup (is the container being destroyed?)")]
    RootCgroup {
        /// The process.
        pid: u32,
        /// `cpu` or `memory`.
        resource: &'static str,
    },
}

/// Reads container usage from a proc tree and cgroup mounts under injectable roots.
#[derive(Debug, Clone)]
pub struct UsageReader {
    proc_root: PathBuf,
    fs_root: PathBuf,
    clock_ticks: u64,
}

impl Default for UsageReader {
    fn default() -> Self {
        Self::new("/proc", "/")
    }
}

/// The cgroups of one process, for finding its cgroup per controller.
struct ProcessCgroups {
    pid: u32,
    hierarchies: Hierarchies,
    procs: ProcCgroups,
}

impl ProcessCgroups {
    /// The process's cgroup of `controller`, if the host has one.
    fn find(&self, controller: Controller) -> Option<ProcessCgroup> {
        self.hierarchies.process_cgroup(&self.procs, controller)
    }

    /// The process's cgroup of `controller`, which holds `resource`'s
    /// figures; a root cgroup is refused.
    fn require(
        &self,
        controller: Controller,
        resource: &'static str,
    ) -> Result<Cgroup, UsageError> {
        let pid = self.pid;
        let found = self
            .find(controller)
            .ok_or(UsageError::NoCgroup { pid, resource })?;
        if found.is_root() {
            return Err(UsageError::RootCgroup { pid, resource });
        }
        Ok(found.cgroup)
    }
}

impl UsageReader {
    /// A reader on `proc_root` (normally `/proc`) whose mountinfo paths are
    /// resolved under `fs_root` (normally `/`).
    pub fn new(proc_root: impl Into<PathBuf>, fs_root: impl Into<PathBuf>) -> Self {
        Self {
            proc_root: proc_root.into(),
            fs_root: fs_root.into(),
            clock_ticks: stats::clock_ticks_per_second(),
        }
    }

    /// Override the clock-tick rate (for fixtures).
    pub fn with_clock_ticks(mut self, ticks: u64) -> Self {
        self.clock_ticks = ticks.max(1);
        self
    }

    /// Read cpu and memory usage of `pid`'s cgroups.
    pub fn read(&self, pid: u32) -> Result<ContainerUsage, UsageError> {
        let procs = ProcCgroups::read(&self.proc_root, pid)?;
        let hierarchies = Hierarchies::detect_at(&self.proc_root, &self.fs_root)?;
        let cgroups = ProcessCgroups {
            pid,
            hierarchies,
            procs,
        };
        let mut usage = ContainerUsage::default();

        // Cpu: v1 cpuacct, else unified cpu.stat.
        let cpu = cgroups.require(Controller::Cpuacct, "cpu")?;
        let throttling = match cpu.version() {
            Version::V1 => {
                let times = stats::cpuacct_stat(&cpu)?;
                usage.cpus_user_time_secs = times.user_secs(self.clock_ticks);
                usage.cpus_system_time_secs = times.system_secs(self.clock_ticks);
                // Throttling lives in the (separately mountable) cpu
                // controller, and only when it is there.
                cgroups
                    .find(Controller::Cpu)
                    .and_then(|found| stats::cpu_stat(&found.cgroup).ok())
            }
            Version::V2 => {
                // v2 parsing requires `user_usec` and `system_usec`.
                let stat = stats::cpu_stat(&cpu)?;
                usage.cpus_user_time_secs = stat.user.unwrap_or_default().as_secs_f64();
                usage.cpus_system_time_secs = stat.system.unwrap_or_default().as_secs_f64();
                Some(stat)
            }
        };
        if let Some(stat) = throttling {
            usage.cpus_nr_periods = stat.nr_periods;
            usage.cpus_nr_throttled = stat.nr_throttled;
            usage.cpus_throttled_time_secs = stat.throttled.map(|t| t.as_secs_f64());
        }
        usage.cpu_cgroup_version = Some(cpu.version());

        // Memory: v1 memory, else unified.
        let memory = cgroups.require(Controller::Memory, "memory")?;
        usage.mem_rss_bytes = stats::memory_anon(&memory)?;
        usage.mem_total_bytes = stats::memory_usage(&memory).ok();
        usage.mem_cgroup_version = Some(memory.version());
        Ok(usage)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::*;

    /// This host's layout: v1 controllers each mounted separately (cpu and
    /// cpuacct too), cgroup2 at /sys/fs/cgroup/unified.
    const HYBRID_MOUNTINFO: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 25 0:24 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
27 26 0:25 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
28 26 0:26 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,name=systemd
31 26 0:29 / /sys/fs/cgroup/cpu rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu
32 26 0:30 / /sys/fs/cgroup/cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpuacct
33 26 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
";

    const HYBRID_PROC_CGROUP: &str = "\
9:name=systemd:/docker/abc
4:memory:/docker/abc
2:cpuacct:/docker/abc
1:cpu:/docker/abc
0::/docker/abc
";

    const V2_MOUNTINFO: &str = "\
30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    const V2_PROC_CGROUP: &str = "0::/system.slice/docker-abc.scope\n";

    /// A pure v1 host with cpu and cpuacct on one hierarchy.
    const LEGACY_MOUNTINFO: &str = "\
31 26 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
33 26 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
";

    const LEGACY_PROC_CGROUP: &str = "3:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n";

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write");
    }

    fn fixture(mountinfo: &str, proc_cgroup: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        write(&dir.path().join("proc/self/mountinfo"), mountinfo);
        write(&dir.path().join("proc/42/cgroup"), proc_cgroup);
        dir
    }

    /// The usage of pid 42 on a fixture host with `mountinfo`, its
    /// `/proc/42/cgroup` and `files` (paths relative to the host's root),
    /// at 100 clock ticks a second.
    fn usage_on(
        mountinfo: &str,
        proc_cgroup: &str,
        files: &[(&str, &str)],
    ) -> Result<ContainerUsage, UsageError> {
        let dir = fixture(mountinfo, proc_cgroup);
        for (path, text) in files {
            write(&dir.path().join(path), text);
        }
        UsageReader::new(dir.path().join("proc"), dir.path())
            .with_clock_ticks(100)
            .read(42)
    }

    /// The usage with every cgroup figure read from `version`: cpu
    /// `(user, system)` seconds, throttling `(periods, throttled periods,
    /// seconds throttled)`, memory `(rss, total)` bytes.
    fn from_cgroups(
        version: Version,
        (user, system): (f64, f64),
        (periods, throttled, throttled_secs): (u64, u64, f64),
        (rss, total): (u64, Option<u64>),
    ) -> ContainerUsage {
        ContainerUsage {
            cpus_user_time_secs: user,
            cpus_system_time_secs: system,
            cpus_nr_periods: Some(periods),
            cpus_nr_throttled: Some(throttled),
            cpus_throttled_time_secs: Some(throttled_secs),
            mem_rss_bytes: rss,
            mem_total_bytes: total,
            cpu_cgroup_version: Some(version),
            mem_cgroup_version: Some(version),
            ..ContainerUsage::default()
        }
    }

    #[test]
    fn reads_v1_statistics_on_the_hybrid_layout() {
        let files = [
            (
                "sys/fs/cgroup/cpuacct/docker/abc/cpuacct.stat",
                "user 250\nsystem 50\n",
            ),
            (
                "sys/fs/cgroup/cpu/docker/abc/cpu.stat",
                "nr_periods 10\nnr_throttled 2\nthrottled_time 1500000000\n",
            ),
            (
                "sys/fs/cgroup/memory/docker/abc/memory.stat",
                "cache 4096\nrss 1000\ntotal_cache 4096\ntotal_rss 2000\n",
            ),
            (
                "sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes",
                "8192\n",
            ),
        ];
        let usage = usage_on(HYBRID_MOUNTINFO, HYBRID_PROC_CGROUP, &files).expect("usage");
        let expected = from_cgroups(Version::V1, (2.5, 0.5), (10, 2, 1.5), (2000, Some(8192)));
        assert_eq!(usage, expected);
    }

    #[test]
    fn reads_v2_statistics_on_a_pure_v2_host() {
        let cg = "sys/fs/cgroup/system.slice/docker-abc.scope";
        let files = [
            (
                "sys/fs/cgroup/cgroup.controllers",
                "cpuset cpu io memory pids\n",
            ),
            (
                &format!("{cg}/cpu.stat"),
                "usage_usec 3000000\nuser_usec 2000000\nsystem_usec 1000000\n\
                 nr_periods 4\nnr_throttled 1\nthrottled_usec 500000\n",
            ),
            (&format!("{cg}/memory.stat"), "anon 123456\nfile 4096\n"),
            (&format!("{cg}/memory.current"), "200000\n"),
        ];
        let usage = usage_on(V2_MOUNTINFO, V2_PROC_CGROUP, &files).expect("usage");
        let expected = from_cgroups(Version::V2, (2.0, 1.0), (4, 1, 0.5), (123456, Some(200000)));
        assert_eq!(usage, expected);
    }

    #[test]
    fn reads_v1_statistics_with_cpu_and_cpuacct_comounted() {
        let cpu = "sys/fs/cgroup/cpu,cpuacct/docker/abc";
        let files: [(&str, &str); 3] = [
            (&format!("{cpu}/cpuacct.stat"), "user 100\nsystem 300\n"),
            (
                &format!("{cpu}/cpu.stat"),
                "nr_periods 7\nnr_throttled 0\nthrottled_time 0\n",
            ),
            (
                "sys/fs/cgroup/memory/docker/abc/memory.stat",
                "total_rss 5\n",
            ),
        ];
        let usage = usage_on(LEGACY_MOUNTINFO, LEGACY_PROC_CGROUP, &files).expect("usage");
        // memory.usage_in_bytes is optional.
        let expected = from_cgroups(Version::V1, (1.0, 3.0), (7, 0, 0.0), (5, None));
        assert_eq!(usage, expected);
    }

    #[test]
    fn v1_rss_is_used_when_total_rss_is_absent() {
        let files = [
            (
                "sys/fs/cgroup/cpuacct/docker/abc/cpuacct.stat",
                "user 1\nsystem 1\n",
            ),
            ("sys/fs/cgroup/memory/docker/abc/memory.stat", "rss 777\n"),
        ];
        let usage = usage_on(HYBRID_MOUNTINFO, HYBRID_PROC_CGROUP, &files).expect("usage");
        assert_eq!(usage.mem_rss_bytes, 777);
        // No cpu.stat: no throttling figures.
        assert_eq!(usage.cpus_nr_periods, None);
    }

    #[test]
    fn a_missing_hierarchy_or_a_root_cgroup_is_refused() {
        let comounted_cpuacct = [(
            "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpuacct.stat",
            "user 1\nsystem 1\n",
        )];
        // (mountinfo, /proc/42/cgroup, why refused, for which resource)
        let cases = [
            (
                HYBRID_MOUNTINFO,
                "2:cpuacct:/\n4:memory:/\n0::/\n",
                ("root", "cpu"),
            ),
            (
                LEGACY_MOUNTINFO,
                "3:cpu,cpuacct:/docker/abc\n4:memory:/\n",
                ("root", "memory"),
            ),
            (
                LEGACY_MOUNTINFO.lines().next().expect("the cpu mount"),
                LEGACY_PROC_CGROUP,
                ("no cgroup", "memory"),
            ),
        ];
        for (mountinfo, proc_cgroup, expected) in cases {
            let refused = match usage_on(mountinfo, proc_cgroup, &comounted_cpuacct) {
                Err(UsageError::RootCgroup { pid: 42, resource }) => ("root", resource),
                Err(UsageError::NoCgroup { pid: 42, resource }) => ("no cgroup", resource),
                other => panic!("{proc_cgroup}: unexpected {other:?}"),
            };
            assert_eq!(refused, expected, "{proc_cgroup}");
        }
    }

    #[test]
    fn missing_files_and_garbage_are_errors_naming_the_path() {
        let err = usage_on(HYBRID_MOUNTINFO, HYBRID_PROC_CGROUP, &[]).unwrap_err();
        assert!(
            err.to_string().contains("cpuacct/docker/abc/cpuacct.stat"),
            "{err}"
        );
        let garbage = [(
            "sys/fs/cgroup/cpuacct/docker/abc/cpuacct.stat",
            "nonsense\n",
        )];
        let err = usage_on(HYBRID_MOUNTINFO, HYBRID_PROC_CGROUP, &garbage).unwrap_err();
        assert!(
            matches!(
                err,
                UsageError::Cgroups(phobos_cgroups::Error::Parse { .. })
            ),
            "{err}"
        );
        let dir = fixture(HYBRID_MOUNTINFO, HYBRID_PROC_CGROUP);
        let err = UsageReader::new(dir.path().join("proc"), dir.path())
            .read(7)
            .unwrap_err();
        assert!(err.to_string().contains("proc/7/cgroup"), "{err}");
    }
}
