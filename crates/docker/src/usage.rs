//! Cpu and memory usage of a Docker container, read from its cgroups.
//!
//! Like Mesos's `DockerContainerizer::usage()` (reference §4.5) we do not ask
//! the engine's stats endpoint (which samples for a second) but read the
//! kernel's accounting for the container's init process directly:
//!
//! 1. `/proc/<pid>/cgroup` gives the process's cgroup path per hierarchy
//!    (`<id>:<controllers>:<path>`; `0::<path>` is the unified hierarchy);
//! 2. `/proc/self/mountinfo` gives where each hierarchy is mounted (fs type
//!    `cgroup` with the controllers in the super options, or `cgroup2`) and the
//!    mount's root, which is stripped from the process's path;
//! 3. the statistics files under `<mount point>/<path>`:
//!    - cgroup v1: `cpuacct.stat` `user`/`system` in clock ticks
//!      (÷ `sysconf(_SC_CLK_TCK)`), `cpu.stat` throttling counters,
//!      `memory.stat` `total_rss` (hierarchical; `rss` when absent) and
//!      `memory.usage_in_bytes`;
//!    - cgroup v2: `cpu.stat` `user_usec`/`system_usec` and throttling,
//!      `memory.stat` `anon` and `memory.current`.
//!
//! Each resource is read from a v1 hierarchy when the process is in one that
//! carries the controller and it is mounted, and from the unified hierarchy
//! otherwise — so pure v1, pure v2 and hybrid hosts (v1 controllers plus a
//! cgroup2 mount holding few or none) all work. A process in a root cgroup is
//! refused, as Mesos does: the container is gone or being destroyed.
//!
//! The proc and filesystem roots are injectable so tests run on fixture trees.

use std::path::{Path, PathBuf};

/// Which cgroup version a statistic came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// A v1 hierarchy.
    V1,
    /// The unified (v2) hierarchy.
    V2,
}

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
    pub cpu_cgroup_version: Option<CgroupVersion>,
    /// Where the memory figures came from.
    pub mem_cgroup_version: Option<CgroupVersion>,
}

/// Why usage could not be read.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// A file could not be read.
    #[error("failed to read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file had unexpected content.
    #[error("failed to parse {path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
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

/// One line of `/proc/<pid>/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcCgroup {
    /// Hierarchy id (0 for the unified hierarchy).
    pub hierarchy: u32,
    /// Controllers (empty for the unified hierarchy; `name=systemd` kept as is).
    pub controllers: Vec<String>,
    /// The cgroup path, relative to the hierarchy's root.
    pub path: String,
}

/// Parse `/proc/<pid>/cgroup`; malformed lines are skipped.
pub fn parse_proc_cgroup(text: &str) -> Vec<ProcCgroup> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let hierarchy = parts.next()?.parse().ok()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            Some(ProcCgroup {
                hierarchy,
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                path: path.to_owned(),
            })
        })
        .collect()
}

/// A cgroup filesystem mount from `mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// The mount's root within the hierarchy (usually `/`).
    pub root: String,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// `None` for cgroup2; the v1 controllers otherwise.
    pub v1_controllers: Option<Vec<String>>,
}

fn unescape_mountinfo(field: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo octal.
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 4 <= bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup v1 controllers; other super options (`rw`, `xattr`,
/// `name=systemd`, `release_agent=…`) are not controllers.
const V1_CONTROLLERS: &[&str] = &[
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "hugetlb",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
];

/// Parse the cgroup mounts out of `/proc/self/mountinfo`.
pub fn parse_cgroup_mounts(mountinfo: &str) -> Vec<CgroupMount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let mut post = post.split(' ');
            let fstype = post.next()?;
            let _source = post.next()?;
            let super_opts = post.next().unwrap_or("");
            let root = unescape_mountinfo(pre.get(3)?);
            let mount_point = PathBuf::from(unescape_mountinfo(pre.get(4)?));
            let v1_controllers = match fstype {
                "cgroup2" => None,
                "cgroup" => Some(
                    super_opts
                        .split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o))
                        .map(str::to_owned)
                        .collect(),
                ),
                _ => return None,
            };
            Some(CgroupMount {
                root,
                mount_point,
                v1_controllers,
            })
        })
        .collect()
}

fn join_cgroup(fs_root: &Path, mount: &CgroupMount, path: &str) -> Option<PathBuf> {
    // The process's path is relative to the hierarchy root; the mount shows
    // the subtree at `mount.root`.
    let rel = if mount.root == "/" {
        path
    } else {
        let stripped = path.strip_prefix(mount.root.as_str())?;
        if !(stripped.is_empty() || stripped.starts_with('/')) {
            return None;
        }
        stripped
    };
    let mp = mount
        .mount_point
        .strip_prefix("/")
        .unwrap_or(&mount.mount_point);
    Some(fs_root.join(mp).join(rel.trim_start_matches('/')))
}

/// Where a resource's statistics live for a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The cgroup directory.
    pub dir: PathBuf,
    /// Its version.
    pub version: CgroupVersion,
    /// The process's path in that hierarchy.
    pub path: String,
}

/// Find the cgroup directory holding `controller`'s statistics (v1 first, then unified).
pub fn locate(
    procs: &[ProcCgroup],
    mounts: &[CgroupMount],
    fs_root: &Path,
    controller: &str,
) -> Option<Located> {
    for p in procs
        .iter()
        .filter(|p| p.controllers.iter().any(|c| c == controller))
    {
        for m in mounts {
            let carries = m
                .v1_controllers
                .as_ref()
                .is_some_and(|cs| cs.iter().any(|c| c == controller));
            if carries && let Some(dir) = join_cgroup(fs_root, m, &p.path) {
                return Some(Located {
                    dir,
                    version: CgroupVersion::V1,
                    path: p.path.clone(),
                });
            }
        }
    }
    let unified = procs
        .iter()
        .find(|p| p.hierarchy == 0 && p.controllers.is_empty())?;
    let mount = mounts.iter().find(|m| m.v1_controllers.is_none())?;
    Some(Located {
        dir: join_cgroup(fs_root, mount, &unified.path)?,
        version: CgroupVersion::V2,
        path: unified.path.clone(),
    })
}

/// Parse a flat-keyed file (`cpuacct.stat`, `cpu.stat`, `memory.stat`) into (key, value) pairs.
pub fn parse_flat_keyed(text: &str) -> Vec<(&str, u64)> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k, v.trim().parse().ok()?))
        })
        .collect()
}

fn key(pairs: &[(&str, u64)], name: &str) -> Option<u64> {
    pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf only reads a configuration value; it has no
    // preconditions and does not touch memory we own.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|t| *t > 0).unwrap_or(100)
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

impl UsageReader {
    /// A reader on `proc_root` (normally `/proc`) whose mountinfo paths are
    /// resolved under `fs_root` (normally `/`).
    pub fn new(proc_root: impl Into<PathBuf>, fs_root: impl Into<PathBuf>) -> Self {
        Self {
            proc_root: proc_root.into(),
            fs_root: fs_root.into(),
            clock_ticks: clock_ticks(),
        }
    }

    /// Override the clock-tick rate (for fixtures).
    pub fn with_clock_ticks(mut self, ticks: u64) -> Self {
        self.clock_ticks = ticks.max(1);
        self
    }

    fn read_file(&self, path: PathBuf) -> Result<String, UsageError> {
        std::fs::read_to_string(&path).map_err(|source| UsageError::Read { path, source })
    }

    fn read_optional_u64(&self, path: PathBuf) -> Option<u64> {
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }

    /// Read cpu and memory usage of `pid`'s cgroups.
    pub fn read(&self, pid: u32) -> Result<ContainerUsage, UsageError> {
        let procs = parse_proc_cgroup(
            &self.read_file(self.proc_root.join(pid.to_string()).join("cgroup"))?,
        );
        let mounts =
            parse_cgroup_mounts(&self.read_file(self.proc_root.join("self").join("mountinfo"))?);
        let mut usage = ContainerUsage::default();

        // Cpu: v1 cpuacct, else unified cpu.stat.
        let cpu =
            locate(&procs, &mounts, &self.fs_root, "cpuacct").ok_or(UsageError::NoCgroup {
                pid,
                resource: "cpu",
            })?;
        if cpu.path == "/" {
            return Err(UsageError::RootCgroup {
                pid,
                resource: "cpu",
            });
        }
        match cpu.version {
            CgroupVersion::V1 => {
                let path = cpu.dir.join("cpuacct.stat");
                let text = self.read_file(path.clone())?;
                let pairs = parse_flat_keyed(&text);
                let (Some(user), Some(system)) = (key(&pairs, "user"), key(&pairs, "system"))
                else {
                    return Err(UsageError::Parse {
                        path,
                        reason: "missing user or system".into(),
                    });
                };
                let ticks = self.clock_ticks as f64;
                usage.cpus_user_time_secs = user as f64 / ticks;
                usage.cpus_system_time_secs = system as f64 / ticks;
                // Throttling lives in the (separately mountable) cpu controller.
                if let Some(cpu_ctl) = locate(&procs, &mounts, &self.fs_root, "cpu")
                    && let Ok(text) = std::fs::read_to_string(cpu_ctl.dir.join("cpu.stat"))
                {
                    let pairs = parse_flat_keyed(&text);
                    usage.cpus_nr_periods = key(&pairs, "nr_periods");
                    usage.cpus_nr_throttled = key(&pairs, "nr_throttled");
                    usage.cpus_throttled_time_secs =
                        key(&pairs, "throttled_time").map(|ns| ns as f64 / 1e9);
                }
            }
            CgroupVersion::V2 => {
                let path = cpu.dir.join("cpu.stat");
                let text = self.read_file(path.clone())?;
                let pairs = parse_flat_keyed(&text);
                let (Some(user), Some(system)) =
                    (key(&pairs, "user_usec"), key(&pairs, "system_usec"))
                else {
                    return Err(UsageError::Parse {
                        path,
                        reason: "missing user_usec or system_usec".into(),
                    });
                };
                usage.cpus_user_time_secs = user as f64 / 1e6;
                usage.cpus_system_time_secs = system as f64 / 1e6;
                usage.cpus_nr_periods = key(&pairs, "nr_periods");
                usage.cpus_nr_throttled = key(&pairs, "nr_throttled");
                usage.cpus_throttled_time_secs =
                    key(&pairs, "throttled_usec").map(|us| us as f64 / 1e6);
            }
        }
        usage.cpu_cgroup_version = Some(cpu.version);

        // Memory: v1 memory, else unified.
        let mem = locate(&procs, &mounts, &self.fs_root, "memory").ok_or(UsageError::NoCgroup {
            pid,
            resource: "memory",
        })?;
        if mem.path == "/" {
            return Err(UsageError::RootCgroup {
                pid,
                resource: "memory",
            });
        }
        let path = mem.dir.join("memory.stat");
        let text = self.read_file(path.clone())?;
        let pairs = parse_flat_keyed(&text);
        let rss = match mem.version {
            CgroupVersion::V1 => key(&pairs, "total_rss").or_else(|| key(&pairs, "rss")),
            CgroupVersion::V2 => key(&pairs, "anon"),
        };
        usage.mem_rss_bytes = rss.ok_or_else(|| UsageError::Parse {
            path,
            reason: "missing rss/total_rss/anon".into(),
        })?;
        usage.mem_total_bytes = match mem.version {
            CgroupVersion::V1 => self.read_optional_u64(mem.dir.join("memory.usage_in_bytes")),
            CgroupVersion::V2 => self.read_optional_u64(mem.dir.join("memory.current")),
        };
        usage.mem_cgroup_version = Some(mem.version);
        Ok(usage)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

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

    #[test]
    fn parses_proc_cgroup_lines() {
        let lines = parse_proc_cgroup("4:memory:/a\n3:cpu,cpuacct:/b:c\n0::/d\ngarbage\n");
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(lines[1].path, "/b:c");
        assert_eq!(lines[2].hierarchy, 0);
        assert!(lines[2].controllers.is_empty());
    }

    #[test]
    fn parses_cgroup_mounts_of_the_hybrid_host() {
        let mounts = parse_cgroup_mounts(HYBRID_MOUNTINFO);
        assert_eq!(mounts.len(), 5);
        assert_eq!(mounts[0].v1_controllers, None);
        assert_eq!(
            mounts[0].mount_point,
            PathBuf::from("/sys/fs/cgroup/unified")
        );
        assert_eq!(mounts[1].v1_controllers, Some(vec![]));
        assert_eq!(mounts[2].v1_controllers, Some(vec!["cpu".to_owned()]));
    }

    #[test]
    fn mountinfo_octal_escapes_are_decoded() {
        let mounts =
            parse_cgroup_mounts("1 0 0:1 / /cg\\040root rw - cgroup cgroup rw,cpu,cpuacct\n");
        assert_eq!(mounts[0].mount_point, PathBuf::from("/cg root"));
        assert_eq!(
            mounts[0].v1_controllers,
            Some(vec!["cpu".to_owned(), "cpuacct".to_owned()])
        );
    }

    #[test]
    fn locate_strips_a_non_root_mount_root() {
        let mounts = parse_cgroup_mounts(
            "1 0 0:1 /docker /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        );
        let procs = parse_proc_cgroup("4:memory:/docker/abc\n");
        let loc = locate(&procs, &mounts, Path::new("/"), "memory").expect("located");
        assert_eq!(loc.dir, PathBuf::from("/sys/fs/cgroup/memory/abc"));
        let other = parse_proc_cgroup("4:memory:/elsewhere\n");
        assert_eq!(locate(&other, &mounts, Path::new("/"), "memory"), None);
    }

    #[test]
    fn reads_v1_statistics_on_the_hybrid_layout() {
        let dir = fixture(HYBRID_MOUNTINFO, HYBRID_PROC_CGROUP);
        let root = dir.path();
        write(
            &root.join("sys/fs/cgroup/cpuacct/docker/abc/cpuacct.stat"),
            "user 250\nsystem 50\n",
        );
        write(
            &root.join("sys/fs/cgroup/cpu/docker/abc/cpu.stat"),
            "nr_periods 10\nnr_throttled 2\nthrottled_time 1500000000\n",
        );
        write(
            &root.join("sys/fs/cgroup/memory/docker/abc/memory.stat"),
            "cache 4096\nrss 1000\ntotal_cache 4096\ntotal_rss 2000\n",
        );
        write(
            &root.join("sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes"),
            "8192\n",
        );
        let usage = UsageReader::new(root.join("proc"), root)
            .with_clock_ticks(100)
            .read(42)
            .expect("usage");
        assert_eq!(usage.cpus_user_time_secs, 2.5);
        assert_eq!(usage.cpus_system_time_secs, 0.5);
        assert_eq!(usage.cpus_nr_periods, Some(10));
        assert_eq!(usage.cpus_nr_throttled, Some(2));
        assert_eq!(usage.cpus_throttled_time_secs, Some(1.5));
        assert_eq!(usage.mem_rss_bytes, 2000);
        assert_eq!(usage.mem_total_bytes, Some(8192));
        assert_eq!(usage.cpu_cgroup_version, Some(CgroupVersion::V1));
        assert_eq!(usage.mem_cgroup_version, Some(CgroupVersion::V1));
    }

    #[test]
    fn reads_v2_statistics_on_a_pure_v2_host() {
        let dir = fixture(V2_MOUNTINFO, V2_PROC_CGROUP);
        let root = dir.path();
        let cg = root.join("sys/fs/cgroup/system.slice/docker-abc.scope");
        write(
            &cg.join("cpu.stat"),
            "usage_usec 3000000\nuser_usec 2000000\nsystem_usec 1000000\nnr_periods 4\nnr_throttled 1\nthrottled_usec 500000\n",
        );
        write(&cg.join("memory.stat"), "anon 123456\nfile 4096\n");
        write(&cg.join("memory.current"), "200000\n");
        let usage = UsageReader::new(root.join("proc"), root)
            .read(42)
            .expect("usage");
        assert_eq!(usage.cpus_user_time_secs, 2.0);
        assert_eq!(usage.cpus_system_time_secs, 1.0);
        assert_eq!(usage.cpus_nr_periods, Some(4));
        assert_eq!(usage.cpus_throttled_time_secs, Some(0.5));
        assert_eq!(usage.mem_rss_bytes, 123456);
        assert_eq!(usage.mem_total_bytes, Some(200000));
        assert_eq!(usage.cpu_cgroup_version, Some(CgroupVersion::V2));
    }

    #[test]
    fn v1_rss_is_used_when_total_rss_is_absent() {
        let dir = fixture(HYBRID_MOUNTINFO, HYBRID_PROC_CGROUP);
        let root = dir.path();
        write(
            &root.join("sys/fs/cgroup/cpuacct/docker/abc/cpuacct.stat"),
            "user 1\nsystem 1\n",
        );
        write(
            &root.join("sys/fs/cgroup/memory/docker/abc/memory.stat"),
            "rss 777\n",
        );
        let usage = UsageReader::new(root.join("proc"), root)
            .read(42)
            .expect("usage");
        assert_eq!(usage.mem_rss_bytes, 777);
        assert_eq!(usage.cpus_nr_periods, None);
    }

    #[test]
    fn root_cgroup_is_refused() {
        let dir = fixture(HYBRID_MOUNTINFO, "2:cpuacct:/\n4:memory:/\n0::/\n");
        let err = UsageReader::new(dir.path().join("proc"), dir.path())
            .read(42)
            .unwrap_err();
        assert!(
            matches!(
                err,
                UsageError::RootCgroup {
                    pid: 42,
                    resource: "cpu"
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn missing_files_and_garbage_are_errors_naming_the_path() {
        let dir = fixture(HYBRID_MOUNTINFO, HYBRID_PROC_CGROUP);
        let root = dir.path();
        let err = UsageReader::new(root.join("proc"), root)
            .read(42)
            .unwrap_err();
        assert!(
            err.to_string().contains("cpuacct/docker/abc/cpuacct.stat"),
            "{err}"
        );
        write(
            &root.join("sys/fs/cgroup/cpuacct/docker/abc/cpuacct.stat"),
            "nonsense\n",
        );
        let err = UsageReader::new(root.join("proc"), root)
            .read(42)
            .unwrap_err();
        assert!(matches!(err, UsageError::Parse { .. }), "{err}");
        let err = UsageReader::new(root.join("proc"), root)
            .read(7)
            .unwrap_err();
        assert!(err.to_string().contains("proc/7/cgroup"), "{err}");
    }

    #[test]
    fn flat_keyed_parser_skips_garbage() {
        assert_eq!(
            parse_flat_keyed("a 1\nb x\nc\n d 2\ne 3 \n"),
            vec![("a", 1), ("e", 3)]
        );
    }
}
